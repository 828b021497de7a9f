"""Training data: grayscale images, a held-out split and random augmented noisy patches.

Two noise models (the recipe's ``noise`` field picks one):

* ``gaussian`` (:class:`PatchSampler`): white Gaussian noise, not clipped, constant
  noise-level map (the published tables' convention; the recipe of the first runs);
* ``camera`` (:class:`CameraPatchSampler`): what the runtime feeds: 8-bit frames with
  Gaussian or Poisson-Gaussian noise, clipped to [0, 255] and rounded, a share of them
  through H.264 (:func:`h264_roundtrip`), and a share still in the old float convention;
  the map holds the true per-pixel sigma before clipping and coding.

Everything random is drawn from one :class:`numpy.random.Generator` whose state is saved
in the checkpoint, so a resumed run draws exactly the patches the uninterrupted run
would have drawn (libx264 runs single-threaded, so its output is a function of its input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.imageio import to_float, to_uint8

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


def pg_sigma(clean: np.ndarray, a: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """Per-pixel sigma (0-255 scale) of Poisson-Gaussian noise ``sigma^2 = a*I + b`` at the
    clean intensity ``I`` (``clean`` in [0, 1], ``I = 255 * clean``); float32. ``a``, ``b``
    broadcast against ``clean`` (one pair per patch: shape N x 1 x 1 x 1)."""
    return np.sqrt(np.maximum(a * (255.0 * clean) + b, 0.0)).astype(np.float32)


#: Contrast (patch standard deviation relative to the original) and mean offset from
#: mid-gray of :func:`chroma_like` patches: the chrominance planes a gray model sees of a
#: colour frame (``restorer.opponent_units``) have 64-pixel patch standard deviations of
#: 0.001-0.06 on the real clips, against ~0.12 for Train400 patches, and means 0.45-0.50.
CHROMA_CONTRAST = (0.01, 0.4)
CHROMA_OFFSET = 0.06


def chroma_like(clean: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` patches (N x 1 x H x W, [0, 1]) with about ``share`` of them replaced by
    what a gray model sees of a colour frame's chrominance: the same patch at a contrast
    drawn log-uniformly from :data:`CHROMA_CONTRAST`, around mid-gray plus an offset of at
    most :data:`CHROMA_OFFSET`. ``share`` 0 returns ``clean`` without drawing from ``rng``
    (a resumed run stays bit-exact)."""
    if share <= 0:
        return clean
    pick = rng.random(clean.shape[0]) < share
    n = int(pick.sum())
    if not n:
        return clean
    lo, hi = np.log(CHROMA_CONTRAST[0]), np.log(CHROMA_CONTRAST[1])
    c = np.exp(rng.uniform(lo, hi, n)).astype(np.float32).reshape(-1, 1, 1, 1)
    d = rng.uniform(-CHROMA_OFFSET, CHROMA_OFFSET, n).astype(np.float32).reshape(-1, 1, 1, 1)
    sel = clean[pick]
    out = clean.copy()
    out[pick] = np.clip(0.5 + d + c * (sel - sel.mean(axis=(1, 2, 3), keepdims=True)), 0.0, 1.0)
    return out


def quantize8(x: np.ndarray) -> np.ndarray:
    """``x`` (float, [0, 1] scale, any range) as an 8-bit frame would hold it: clipped to
    [0, 1] and rounded to a multiple of 1/255 (the runtime's :func:`to_uint8` rule)."""
    return to_float(to_uint8(x))


def h264_roundtrip(frames: np.ndarray, crf: int, *, gop: int = 8) -> np.ndarray:
    """``frames`` (N x H x W uint8 gray, H and W even) encoded with libx264 as the luma of
    one yuv420p sequence (constant grey chroma, CRF ``crf``, preset veryfast, tune
    zerolatency, one thread, a key frame every ``gop`` frames) and decoded again.

    Raw codec contexts of PyAV (no container): the frames go in and come out in order.
    Returns N x H x W uint8.
    """
    import fractions

    import av

    n, h, w = frames.shape
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.gop_size = gop
    enc.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency", "threads": "1"}
    dec = av.CodecContext.create("h264", "r")
    plane = np.full((h * 3 // 2, w), 128, np.uint8)
    out: list[np.ndarray] = []

    def decode(packets) -> None:
        for packet in packets:
            for frame in dec.decode(packet):
                out.append(frame.to_ndarray(format="yuv420p")[:h].copy())

    for i in range(n):
        plane[:h] = frames[i]
        frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
        frame.pts = i
        decode(enc.encode(frame))
    decode(enc.encode(None))
    for frame in dec.decode(None):
        out.append(frame.to_ndarray(format="yuv420p")[:h].copy())
    if len(out) != n:
        raise RuntimeError(f"libx264 round trip returned {len(out)} frames for {n}")
    return np.stack(out)


@dataclass
class CameraPatchSampler(PatchSampler):
    """Batches of (clean, noisy, noise_level) patches, N x 1 x P x P float32, with the
    noise the runtime sees (the ``camera`` recipe).

    Positions, flips and a sigma in ``sigma_range`` are drawn as by
    :class:`PatchSampler` (same stream); then per patch:

    * with probability ``float_share``: the old convention (Gaussian, float, not clipped);
    * otherwise 8-bit: Poisson-Gaussian with probability ``pg_share`` (``a*I + b``, drawn
      so that the sigma at mid-grey, I = 128, is 0.7 times the drawn sigma and a share ``s`` in
      [0.3, 1] of its variance is signal-dependent; the Poisson part is approximated by
      its heteroscedastic Gaussian, as in Foi et al. 2008), else Gaussian; clipped to
      [0, 255] and rounded; and with probability ``h264_share`` (of the 8-bit ones) the
      patches go through :func:`h264_roundtrip` at a CRF drawn in [crf_min, crf_max].

    The map is the true per-pixel sigma of the noise before clipping and coding (what a
    user who knows the camera gives, and what the runtime's noise level function and
    video estimator try to recover), ``sqrt(a*I + b)/255`` at the clean intensity.
    """

    float_share: float = 0.2
    pg_share: float = 0.5
    h264_share: float = 0.2
    crf_min: int = 18
    crf_max: int = 36

    def next(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, n, rng = self.patch, self.batch, self.rng
        idx, ys, xs, modes, sigma = self.draw()
        clean = np.empty((n, 1, p, p), np.float32)
        for k in range(n):
            y, x = ys[k], xs[k]
            clean[k, 0] = augment(self.images[idx[k]][y:y + p, x:x + p], int(modes[k]))
        kind = rng.random(n)
        is_float = kind < self.float_share
        is_pg = ~is_float & (rng.random(n) < self.pg_share)
        is_h264 = ~is_float & (rng.random(n) < self.h264_share)
        share = rng.uniform(0.3, 1.0, size=n)
        var = (255.0 * sigma.astype(np.float64)) ** 2
        # Poisson-Gaussian: the drawn sigma scaled by 0.7 at mid-grey keeps the sigma at
        # white (up to ~1.4x the mid-grey one) inside the drawn range
        pg_var = 0.49 * var
        a = np.where(is_pg, share * pg_var / 128.0, 0.0)[:, None, None, None]
        b = np.where(is_pg, (1.0 - share) * pg_var, var)[:, None, None, None]
        crf = rng.integers(self.crf_min, self.crf_max + 1)
        level = pg_sigma(clean, a, b)
        noisy = clean + self.rng.standard_normal(clean.shape, dtype=np.float32) * (level / 255.0)
        level /= 255.0
        eight = ~is_float
        noisy[eight] = quantize8(noisy[eight])
        if is_h264.any():
            coded = h264_roundtrip(to_uint8(noisy[is_h264, 0]), int(crf))
            noisy[is_h264, 0] = to_float(coded)
        return clean, noisy, level


def sampler_for(recipe_noise: str, images: list[np.ndarray], patch: int, batch: int,
                sigma_range: tuple[float, float], rng: np.random.Generator, **camera: Any) -> PatchSampler:
    """The NumPy sampler of the recipe's ``noise`` model (``gaussian`` or ``camera``;
    ``camera`` takes the :class:`CameraPatchSampler` shares as keywords)."""
    if recipe_noise == "gaussian":
        return PatchSampler(images, patch, batch, sigma_range, rng)
    if recipe_noise == "camera":
        return CameraPatchSampler(images, patch, batch, sigma_range, rng, **camera)
    raise InputError(f"noise must be 'gaussian' or 'camera', got {recipe_noise!r}")


#: The Poisson-Gaussian validation setting of the ``camera`` recipe: (a, b) of
#: sigma^2 = a*I + b on the 0-255 scale (sigma 6 at black, 17 at white).
VAL_PG = (1.0, 36.0)


def noisy_validation_set(images: Sequence[np.ndarray], sigma: float, seed: int, *,
                         clipped: bool = False) -> list[np.ndarray]:
    """Fixed noisy copies of ``images`` (seeded per image and sigma): white Gaussian noise,
    not clipped, or with ``clipped`` clipped to [0, 1] and rounded to 8 bits."""
    out = []
    for i, im in enumerate(images):
        rng = np.random.default_rng([seed, int(round(sigma * 100)), i])
        noisy = (im + rng.standard_normal(im.shape, dtype=np.float32) * (sigma / 255.0)).astype(np.float32)
        out.append(quantize8(noisy) if clipped else noisy)
    return out


def pg_validation_set(images: Sequence[np.ndarray], a: float, b: float,
                      seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (noisy, sigma map / 255) pairs of ``images`` with 8-bit clipped
    Poisson-Gaussian noise ``sigma^2 = a*I + b`` (0-255 scale), seeded per image."""
    out = []
    for i, im in enumerate(images):
        rng = np.random.default_rng([seed, 7919, int(round(a * 1000)), int(round(b * 100)), i])
        level = pg_sigma(im, a, b)
        noisy = quantize8(im + rng.standard_normal(im.shape, dtype=np.float32) * (level / 255.0))
        out.append((noisy, level / 255.0))
    return out
