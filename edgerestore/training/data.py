"""Training data: grayscale images, a held-out split and random augmented noisy patches.

Everything random is drawn from one :class:`numpy.random.Generator` whose state is saved
in the checkpoint, so a resumed run draws exactly the patches the uninterrupted run
would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.imageio import to_float

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder``, sorted by name (the order defines the split)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_gray(path: str | Path) -> np.ndarray:
    """An image file as HxW float32 gray in [0, 1]."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError(f"cannot read image {path}")
    return to_float(img)


def split_holdout(files: Sequence[Path], every: int) -> tuple[list[Path], list[Path]]:
    """(train, held out): every ``every``-th file (1-based: the every-th, 2*every-th...) is held out."""
    if every <= 0:
        return list(files), []
    held = [f for i, f in enumerate(files) if (i + 1) % every == 0]
    train = [f for i, f in enumerate(files) if (i + 1) % every != 0]
    return train, held


def augment(patch: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of a square patch (mode 0 is the identity)."""
    out = np.rot90(patch, k=mode % 4)
    if mode >= 4:
        out = out[:, ::-1]
    return out


@dataclass
class PatchSampler:
    """Batches of (clean, noisy, noise_level) patches, N x 1 x P x P float32.

    Each patch: a random image, a random position, one of 8 flips/rotations, a sigma
    drawn uniformly from ``sigma_range`` (0-255 scale), white Gaussian noise of that
    sigma added without clipping (the convention of the published tables), and a
    constant noise-level map sigma/255.
    """

    images: list[np.ndarray]
    patch: int
    batch: int
    sigma_range: tuple[float, float]
    rng: np.random.Generator

    def __post_init__(self) -> None:
        small = [i for i, im in enumerate(self.images) if min(im.shape) < self.patch]
        if small:
            raise InputError(f"{len(small)} training images are smaller than the patch size {self.patch}")

    def draw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where the next batch comes from: (image index, top row, left column,
        augmentation mode 0-7, sigma/255), one entry per patch. Consumes the RNG in the
        order :meth:`next` always has, so checkpoints resume onto the same stream."""
        p, n, rng = self.patch, self.batch, self.rng
        idx = rng.integers(0, len(self.images), size=n)
        modes = rng.integers(0, 8, size=n)
        ys = np.empty(n, np.int64)
        xs = np.empty(n, np.int64)
        for k in range(n):
            h, w = self.images[idx[k]].shape
            ys[k] = rng.integers(0, h - p + 1)
            xs[k] = rng.integers(0, w - p + 1)
        lo, hi = self.sigma_range
        sigma = rng.uniform(lo, hi, size=n).astype(np.float32) / 255.0
        return idx, ys, xs, modes, sigma

    def next(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, n = self.patch, self.batch
        idx, ys, xs, modes, sigma = self.draw()
        clean = np.empty((n, 1, p, p), np.float32)
        for k in range(n):
            y, x = ys[k], xs[k]
            clean[k, 0] = augment(self.images[idx[k]][y:y + p, x:x + p], int(modes[k]))
        noise = self.rng.standard_normal(clean.shape, dtype=np.float32) * sigma[:, None, None, None]
        noisy = clean + noise
        level = np.broadcast_to(sigma[:, None, None, None], clean.shape).astype(np.float32)
        return clean, noisy, level

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


class DevicePatchSampler(PatchSampler):
    """The batches of :class:`PatchSampler`, made on the training device (a GPU).

    On a GPU the NumPy sampler, one CPU core cropping and drawing Gaussian noise, caps a
    step at about 6,000 patches/s, well below what the GPU trains on. Here the training
    images live on the device as one flat tensor; a batch is a single gather (the crop
    and the flip/rotation are both folded into the gather's index) plus noise drawn by
    ``torch.randn`` on the device. Positions, modes and sigmas come from the same NumPy
    generator in the same order as :class:`PatchSampler` (so the clean patches and noise
    levels are identical for the same state, and checkpoints are interchangeable); the
    noise itself is drawn from a torch generator seeded from that NumPy generator once
    per batch, so a resumed run still draws exactly what the uninterrupted one would.

    Returns torch tensors on ``device``: (clean, noisy, noise_level), N x 1 x P x P
    float32, noisy not clipped, noise_level = sigma/255.
    """

    def __init__(self, images: list[np.ndarray], patch: int, batch: int,
                 sigma_range: tuple[float, float], rng: np.random.Generator, *, torch, device: str) -> None:
        super().__init__(images, patch, batch, sigma_range, rng)
        self.torch, self.device = torch, device
        sizes = np.array([im.size for im in images], np.int64)
        self._flat = torch.from_numpy(np.concatenate([im.ravel() for im in images]).astype(np.float32)).to(device)
        self._offset = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)[:-1]])).to(device)
        self._width = torch.from_numpy(np.array([im.shape[1] for im in images], np.int64)).to(device)
        # (8, P, P): for each mode, the source row/column inside the crop of every output pixel
        rows, cols = np.indices((patch, patch))
        self._src_row = torch.from_numpy(np.stack([augment(rows, m).copy() for m in range(8)])).to(device)
        self._src_col = torch.from_numpy(np.stack([augment(cols, m).copy() for m in range(8)])).to(device)
        self._gen = torch.Generator(device=device)

    def next(self):
        torch = self.torch
        idx, ys, xs, modes, sigma = self.draw()
        self._gen.manual_seed(int(self.rng.integers(0, 2**63 - 1)))
        where = torch.from_numpy(np.stack([idx, ys, xs, modes])).to(self.device)
        i, y, x, m = where
        row = y[:, None, None] + self._src_row[m]  # N x P x P rows inside image i
        col = x[:, None, None] + self._src_col[m]
        flat_index = self._offset[i][:, None, None] + row * self._width[i][:, None, None] + col
        clean = self._flat[flat_index].unsqueeze(1)
        sig = torch.from_numpy(sigma).to(self.device).view(-1, 1, 1, 1)
        noise = torch.randn(clean.shape, generator=self._gen, device=self.device, dtype=torch.float32)
        noisy = clean + noise * sig
        level = sig.expand_as(clean).contiguous()
        return clean, noisy, level


def noisy_validation_set(images: Sequence[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    """Fixed noisy copies of ``images`` (seeded per image and sigma, not clipped)."""
    out = []
    for i, im in enumerate(images):
        rng = np.random.default_rng([seed, int(round(sigma * 100)), i])
        out.append((im + rng.standard_normal(im.shape, dtype=np.float32) * (sigma / 255.0)).astype(np.float32))
    return out
