"""Calibration samples: clean frames, the degraded inputs a model sees, and the feeds.

A restoration model never sees clean frames at run time, so calibrating on clean ones
would measure the wrong activation ranges. :func:`make_samples` degrades each clean
frame the way the model's task implies, from the model's metadata:

* ``denoise``: white Gaussian noise, clipped to [0, 1] as a camera's 8-bit frames are,
  with noise levels spread evenly over the ``noise_level_range`` the model was trained
  for (or :data:`BLIND_SIGMAS` for a model without a noise-level input); the true sigma
  is passed to the runtime as a user would with ``--sigma``;
* ``super_resolution``: the frame shrunk by ``scale`` (area interpolation);
* ``repair``: random 16-pixel blocks lost (zeroed) and marked in the damage mask.

The model inputs themselves are never built here: :class:`RecordingRunner` wraps the
FP32 runner inside a :class:`~edgerestore.restorer.ModelRestorer` and records the feeds
the restorer gives it (colour transform, noise-level map, value range, padding and
tiling all included), so calibration data is pre-processed exactly as the runtime does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.model_spec import ModelSpec

BLIND_SIGMAS = (5.0, 50.0)  # sigma range (0-255) for denoisers without a noise-level input
REPAIR_BLOCK = 16
REPAIR_FRACTION = 0.1


@dataclass(frozen=True)
class Sample:
    """One calibration or gate sample.

    clean: the reference, float32 [0, 1], at the model's output size.
    degraded: what the model is given (float32 [0, 1]).
    sigma: the noise level (0-255) passed to the restorer, or None.
    mask: the damage mask passed to the restorer, or None.
    """

    clean: np.ndarray
    degraded: np.ndarray
    sigma: float | None = None
    mask: np.ndarray | None = None

    def restorer_kwargs(self) -> dict:
        kwargs = {}
        if self.sigma is not None:
            kwargs["sigma"] = self.sigma
        if self.mask is not None:
            kwargs["mask"] = self.mask
        return kwargs


def check_frames_for_model(frames: Sequence[np.ndarray], spec: ModelSpec, *, where: str) -> None:
    """Refuse frames whose channel count the model cannot be calibrated on.

    A 3-channel model (bgr/rgb) needs colour frames: gray frames would calibrate it on
    three identical channels, a distribution it never sees on a colour camera. A 1-channel
    model (gray/luma) accepts both: the runtime feeds it gray frames directly and colour
    frames channel by channel (opponent transform or luma), and calibration does the same.
    """
    if spec.channels == 3 and frames and frames[0].ndim == 2:
        raise InputError(
            f"{where}: model {spec.name!r} takes {spec.color} colour frames but the "
            "calibration frames are gray; calibrate it on colour images or a colour video"
        )


def mix_gray(frames: Sequence[np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    """For a 1-channel model calibrated on colour frames: every other frame as gray.

    The runtime runs a gray model on a colour frame plane by plane in an opponent space
    where the noise of each plane is 0.58-0.71 times the frame's sigma, so colour frames
    alone never show the model a noise amplitude in the top third of its trained range;
    a gray camera's frames (or a gray test set such as BSD68) do, and their activations
    then saturate the calibrated ranges (measured: docs/calibration.md). Half the frames
    as gray (BT.601 luma) covers both. Frames of other models are returned unchanged.
    """
    import cv2

    if spec.channels != 1:
        return list(frames)
    return [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if (i % 2 and f.ndim == 3) else f
            for i, f in enumerate(frames)]


CROP_CANDIDATES = 8  # random windows looked at per frame when choosing a flat or textured one


def crop_window(frame: np.ndarray, size: int, multiple: int, rng: np.random.Generator,
                prefer: str = "any") -> np.ndarray:
    """A ``size x size`` window of ``frame`` (rounded down to ``multiple``).

    prefer: ``any`` (one random window), ``textured`` or ``flat``: of
    :data:`CROP_CANDIDATES` random windows, the one with the most (least) detail, measured
    as the mean absolute difference between neighbouring pixels. Footage is mostly flat
    (road, sky, walls) with a little texture; alternating the two makes sure calibration
    sees both the small activations of flat areas and the large ones of edges.
    """
    h, w = frame.shape[:2]
    ch = min(h, size) // multiple * multiple
    cw = min(w, size) // multiple * multiple
    if ch < multiple or cw < multiple:
        raise InputError(f"a calibration frame of {h}x{w} pixels is too small")
    tries = 1 if prefer == "any" else CROP_CANDIDATES
    corners = [(int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)))
               for _ in range(tries)]
    if tries > 1:
        def detail(c):
            win = frame[c[0]:c[0] + ch, c[1]:c[1] + cw]
            return float(np.abs(np.diff(win, axis=0)).mean() + np.abs(np.diff(win, axis=1)).mean())
        pick = max if prefer == "textured" else min
        corners = [pick(corners, key=detail)]
    y, x = corners[0]
    return np.ascontiguousarray(frame[y:y + ch, x:x + cw])


def sigma_schedule(spec: ModelSpec, n: int) -> list[float]:
    """``n`` noise levels spread evenly over the range the model was trained for."""
    lo, hi = spec.noise_level_range or BLIND_SIGMAS
    lo = max(lo, 1.0)
    if n == 1:
        return [float((lo + hi) / 2)]
    return [float(s) for s in np.linspace(lo, hi, n)]


def make_samples(frames: Sequence[np.ndarray], spec: ModelSpec, *, crop: int = 0,
                 seed: int = 0, sigmas: Sequence[float] | None = None, clip_noise: bool = True,
                 crops: str = "any") -> list[Sample]:
    """Degrade clean ``frames`` for ``spec``'s task (see the module docstring).

    crop: cut a random ``crop x crop`` window from each frame first (0 = whole frame);
    bounds the memory ONNX Runtime's calibrators use (they keep every activation).
    crops: ``any`` (random windows) or ``mixed`` (textured and flat windows in turn, see
    :func:`crop_window`).
    sigmas: noise levels for denoisers, used in turn over the frames; default: spread
    over the trained range, in an order shuffled by ``seed``.
    clip_noise: clip noisy frames to [0, 1] as a camera delivers them (default); False
    keeps the unclipped float noise of the published denoising tables.
    """
    import cv2

    rng = np.random.default_rng(seed)
    scale = spec.scale if spec.task == "super_resolution" else 1
    multiple = max(scale, 1)
    if spec.task == "denoise":
        if sigmas is None:
            sched = sigma_schedule(spec, len(frames))
            sigmas = [sched[i] for i in rng.permutation(len(sched))]
        else:  # given levels are used in turn
            if not sigmas:
                raise InputError("an empty list of noise levels was given")
            sigmas = [sigmas[i % len(sigmas)] for i in range(len(frames))]
    samples = []
    for i, frame in enumerate(frames):
        prefer = "any" if crops == "any" else ("textured", "flat")[i % 2]
        clean = crop_window(frame, crop, multiple, rng, prefer) if crop else np.ascontiguousarray(
            frame[: frame.shape[0] // multiple * multiple, : frame.shape[1] // multiple * multiple])
        clean = clean.astype(np.float32)
        if spec.task == "denoise":
            s = float(sigmas[i])
            noise = rng.standard_normal(clean.shape).astype(np.float32) * np.float32(s / 255.0)
            noisy = np.clip(clean + noise, 0.0, 1.0) if clip_noise else clean + noise
            keep_sigma = s if spec.input_for("noise_level") else None
            samples.append(Sample(clean=clean, degraded=noisy, sigma=keep_sigma))
        elif spec.task == "super_resolution":
            h, w = clean.shape[:2]
            small = cv2.resize(clean, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
            samples.append(Sample(clean=clean, degraded=np.clip(small, 0.0, 1.0)))
        else:  # repair
            h, w = clean.shape[:2]
            bh, bw = max(1, h // REPAIR_BLOCK), max(1, w // REPAIR_BLOCK)
            lost = rng.random((bh, bw)) < REPAIR_FRACTION
            mask = np.kron(lost, np.ones((REPAIR_BLOCK, REPAIR_BLOCK), bool))
            mask = np.pad(mask, ((0, h - mask.shape[0]), (0, w - mask.shape[1])))
            damaged = clean.copy()
            damaged[mask] = 0.0
            samples.append(Sample(clean=clean, degraded=damaged, mask=mask))
    return samples


class RecordingRunner:
    """A runner that passes every feed to ``inner`` and keeps a copy of it in ``feeds``.

    Put it inside a :class:`~edgerestore.restorer.ModelRestorer` to collect the exact
    tensors the runtime feeds a model (see :func:`record_feeds`). Activating and
    deactivating it does the same to ``inner``.
    """

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.feeds: list[dict[str, np.ndarray]] = []

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.inner.input_names

    def activate(self) -> None:
        self.inner.activate()

    def infer(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        self.feeds.append({k: np.array(v, dtype=np.float32, copy=True) for k, v in feed.items()})
        return self.inner.infer(feed)

    def deactivate(self) -> None:
        self.inner.deactivate()

    def __enter__(self) -> "RecordingRunner":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()


def record_feeds(spec: ModelSpec, runner, reason: str, samples: Sequence[Sample], *,
                 range_check: bool = True) -> list[dict[str, np.ndarray]]:
    """The feeds a model sees when :class:`~edgerestore.restorer.ModelRestorer` restores
    each sample's degraded frame on ``runner`` (an active runner, left active).

    ``range_check=False`` lets unclipped noisy frames (values outside [0, 1]) through,
    for calibrating on the noise a camera really delivers.
    """
    from edgerestore.restorer import ModelRestorer

    recorder = RecordingRunner(runner)
    run_restorer(ModelRestorer(spec, recorder, reason, range_check=range_check), samples)
    return recorder.feeds


def run_restorer(restorer, samples: Sequence[Sample]) -> list[np.ndarray]:
    """The restorer's output for each sample's degraded frame."""
    return [restorer(s.degraded, **s.restorer_kwargs()) for s in samples]


def synthetic_frames(count: int, *, channels: int = 1, size: tuple[int, int] = (128, 160),
                     seed: int = 0) -> list[np.ndarray]:
    """Seeded stand-in frames (smooth shading, edges, texture) when none are given.

    Only for the FP16 gate, whose error barely depends on content; INT8 calibration
    always needs real frames.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for _ in range(count):
        planes = []
        for _ in range(channels):
            img = np.zeros((h, w), np.float32)
            for _ in range(4):
                fy, fx = rng.uniform(0.002, 0.03, 2)
                ph = rng.uniform(0, 2 * np.pi)
                img += np.cos(2 * np.pi * (fy * yy + fx * xx) + ph).astype(np.float32)
            img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
            for _ in range(3):
                y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
                img[y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform(0, 1)
            img += rng.standard_normal((h, w)).astype(np.float32) * 0.02
            planes.append(np.clip(img, 0, 1))
        frames.append(planes[0] if channels == 1 else np.dstack(planes).astype(np.float32))
    return frames
