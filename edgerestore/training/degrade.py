"""The super-resolution training degradations: from clean high-resolution (HR) luma to
the low-resolution (LR) input a real frame would be.

Images are float32 gray in [0, 1] (HxW); noise sigmas are on the 0-255 scale. Every
LR image leaves here clipped and rounded to 8 bits, as the runtime's frames are.

One draw (:meth:`Degrader.plan`) picks, per image:

* with probability ``clean_share``: MATLAB-style antialiased bicubic
  (:func:`edgerestore.resize.downscale`) and nothing else, the classic SR degradation,
  so the model keeps its quality there;
* otherwise a downscaling kernel (MATLAB antialiased bicubic; OpenCV ``INTER_CUBIC``,
  ``INTER_LINEAR``, ``INTER_LANCZOS4`` and ``INTER_NEAREST_EXACT``, which sample
  without antialiasing, i.e. alias, as most code does; ``INTER_AREA``, a box filter),
  optionally a mild blur (anisotropic Gaussian or a short motion line) applied before
  the downscale (optics, on HR) or after it (on LR: the order is random), optionally
  sensor noise after the downscale (Gaussian, or Poisson-Gaussian: variance
  ``a * x + b``), then optionally one codec: JPEG (OpenCV ``imencode``) or H.264
  (PyAV/libx264 at a random CRF and preset).

H.264 is encoded once per call of :meth:`Degrader.degrade_batch` for all the images of
the batch that drew it (same shape), as the frames of one small clip: opening an
encoder costs more than coding a few 44x44 frames, and H.264 on the fly costs ~5% of a
training step (``benchmarks/results/sr_degrade_speed.md``), so there is no pre-degraded pool.
Run with ``OPENBLAS_NUM_THREADS=1`` on a shared CPU: the MATLAB-style resize is a small
matrix product that two contended OpenBLAS threads slow down 20-30x (``training/README.md``).

Every random draw comes from one :class:`numpy.random.Generator` (``state()`` /
``set_state()`` for resumable training); x264 runs single-threaded, so a seed gives
the same LR images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from edgerestore.errors import InputError
from edgerestore.resize import downscale

KERNELS = ("matlab", "cubic", "linear", "lanczos", "nearest", "area")
_CV2_FLAGS = {"cubic": "INTER_CUBIC", "linear": "INTER_LINEAR", "lanczos": "INTER_LANCZOS4",
              "nearest": "INTER_NEAREST_EXACT", "area": "INTER_AREA"}


@dataclass(frozen=True)
class DegradationMix:
    """Probabilities and ranges of the degradations (see the module docstring).

    ``kernel_weights``: relative weights of :data:`KERNELS` for the non-clean images;
    ``blur_p``/``motion_p``: chance of a Gaussian / motion blur; ``gauss_sigma_hr``:
    range of the Gaussian's sigmas, times ``scale / 2`` in HR pixels when it blurs HR
    (70%), times 0.5 in LR pixels (at least 0.2) when it blurs LR;
    ``noise_p`` (``poisson_share`` of it Poisson-Gaussian), ``noise_sigma`` (0-255);
    ``jpeg_p``/``jpeg_quality``; ``h264_p``/``h264_crf``.
    """

    clean_share: float = 0.3
    kernel_weights: tuple[float, ...] = (0.3, 0.3, 0.1, 0.05, 0.03, 0.22)
    blur_p: float = 0.2
    gauss_sigma_hr: tuple[float, float] = (0.3, 1.2)
    motion_p: float = 0.06
    noise_p: float = 0.25
    poisson_share: float = 0.5
    noise_sigma: tuple[float, float] = (1.0, 8.0)
    jpeg_p: float = 0.35
    jpeg_quality: tuple[int, int] = (30, 95)
    h264_p: float = 0.2
    h264_crf: tuple[int, int] = (18, 38)

    def __post_init__(self) -> None:
        if len(self.kernel_weights) != len(KERNELS) or min(self.kernel_weights) < 0 or sum(self.kernel_weights) <= 0:
            raise InputError(f"kernel_weights: {len(KERNELS)} non-negative weights for {KERNELS}, "
                             f"got {self.kernel_weights}")
        if self.jpeg_p + self.h264_p > 1:
            raise InputError("jpeg_p + h264_p must be <= 1 (one codec per image)")


@dataclass
class Plan:
    """What one image gets (drawn by :meth:`Degrader.plan`)."""

    kernel: str = "matlab"
    blur: np.ndarray | None = None      # normalised 2-D kernel, or None
    blur_on_hr: bool = True
    noise: tuple[str, float, float] | None = None  # ("gauss", sigma01, 0) | ("poisson", a, b)
    codec: tuple[str, int, str] | None = None      # ("jpeg", quality, "") | ("h264", crf, preset)
    steps: list[str] = field(default_factory=list)  # what was applied, in order (for tests and logs)


def gaussian_kernel(sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """Normalised anisotropic Gaussian (sigmas in pixels, angle in radians), odd size."""
    r = int(np.ceil(3 * max(sigma_x, sigma_y)))
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised line of ``length`` pixels at ``angle`` radians (anti-aliased by
    supersampling), odd size."""
    r = length // 2 + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 8 * length):
        x, y = r + t * np.cos(angle), r + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return (k / k.sum()).astype(np.float32)


def resize_down(img: np.ndarray, scale: int, kernel: str) -> np.ndarray:
    """``img`` (HxW, multiple of ``scale``) shrunk by ``scale`` with one of :data:`KERNELS`; float32."""
    if kernel == "matlab":
        return downscale(img, scale).astype(np.float32)
    import cv2

    h, w = img.shape
    return cv2.resize(np.ascontiguousarray(img, np.float32), (w // scale, h // scale),
                      interpolation=getattr(cv2, _CV2_FLAGS[kernel]))


def filter_image(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate with ``kernel``, mirrored borders (OpenCV ``BORDER_REFLECT_101``)."""
    import cv2

    return cv2.filter2D(np.ascontiguousarray(img, np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def quantize(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to 8-bit levels (float32)."""
    return (np.rint(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """8-bit JPEG round trip through OpenCV at ``quality`` (1-100)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode('.jpg') failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def h264(frames: list[np.ndarray], crf: int, preset: str = "veryfast") -> list[np.ndarray]:
    """Round trip of same-shape gray frames as one H.264 clip (libx264, yuv420p with
    neutral chroma, single-threaded, 25 fps); odd sizes are edge-padded to even and
    cropped back. Returns float32 luma in [0, 1]."""
    import av

    h, w = frames[0].shape
    hp, wp = h + h % 2, w + w % 2
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = wp, hp, "yuv420p"
    enc.options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}
    enc.time_base = Fraction(1, 25)
    enc.framerate = Fraction(25, 1)
    packets = []
    chroma = np.full((hp // 2, wp), 128, np.uint8)
    for i, f in enumerate(frames):
        y = np.rint(np.clip(f, 0, 1) * 255).astype(np.uint8)
        if (hp, wp) != (h, w):
            y = np.pad(y, ((0, hp - h), (0, wp - w)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
        vf.pts = i
        packets.extend(enc.encode(vf))
    packets.extend(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    dec.thread_count = 1
    out = []
    for p in packets:
        out.extend(dec.decode(p))
    out.extend(dec.decode(None))
    if len(out) != len(frames):
        raise RuntimeError(f"H.264 round trip returned {len(out)} frames for {len(frames)}")
    return [f.to_ndarray(format="yuv420p")[:h, :w].astype(np.float32) / 255.0 for f in out]


class Degrader:
    """Draws and applies degradations (see the module docstring) from one seeded
    generator; ``state()``/``set_state()`` save and restore it."""

    def __init__(self, mix: DegradationMix | None = None, seed: int = 0) -> None:
        self.mix = mix or DegradationMix()
        self.rng = np.random.default_rng(seed)
        w = np.asarray(self.mix.kernel_weights, np.float64)
        self._kernel_p = w / w.sum()

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def plan(self, scale: int) -> Plan:
        """Draw what one image at x``scale`` gets."""
        m, rng = self.mix, self.rng
        if rng.random() < m.clean_share:
            return Plan()
        p = Plan(kernel=KERNELS[int(rng.choice(len(KERNELS), p=self._kernel_p))])
        u, p.blur_on_hr, angle = rng.random(), bool(rng.random() < 0.7), float(rng.uniform(0, np.pi))
        if u < m.blur_p:
            lo, hi = m.gauss_sigma_hr
            # on LR pixels the same optics are `scale` times narrower
            per = scale / 2.0 if p.blur_on_hr else 0.5
            sx, sy = rng.uniform(lo, hi, size=2) * per
            p.blur = gaussian_kernel(max(float(sx), 0.2), max(float(sy), 0.2), angle)
        elif u < m.blur_p + m.motion_p:
            length = int(rng.integers(3, 2 * scale + 4)) if p.blur_on_hr else int(rng.integers(2, 4))
            p.blur = motion_kernel(length, angle)
        if rng.random() < m.noise_p:
            sigma = float(rng.uniform(*m.noise_sigma)) / 255.0
            if rng.random() < m.poisson_share:
                # variance a*x + b: half of sigma^2 at mid-gray from the signal-dependent part
                p.noise = ("poisson", float(sigma ** 2), float(0.5 * sigma ** 2 * rng.uniform(0.2, 1.0)))
            else:
                p.noise = ("gauss", sigma, 0.0)
        u = rng.random()
        if u < m.jpeg_p:
            p.codec = ("jpeg", int(rng.integers(m.jpeg_quality[0], m.jpeg_quality[1] + 1)), "")
        elif u < m.jpeg_p + m.h264_p:
            p.codec = ("h264", int(rng.integers(m.h264_crf[0], m.h264_crf[1] + 1)),
                       str(rng.choice(["ultrafast", "veryfast", "medium"])))
        return p

    def degrade_before_codec(self, hr: np.ndarray, scale: int, plan: Plan) -> np.ndarray:
        """Blur, downscale and noise of one HR image (a multiple of ``scale``), quantized to 8 bits."""
        img = hr
        if plan.blur is not None and plan.blur_on_hr:
            img = filter_image(img, plan.blur)
            plan.steps.append("blur_hr")
        img = resize_down(img, scale, plan.kernel)
        plan.steps.append(f"down_{plan.kernel}")
        if plan.blur is not None and not plan.blur_on_hr:
            img = filter_image(img, plan.blur)
            plan.steps.append("blur_lr")
        if plan.noise is not None:
            kind, a, b = plan.noise
            base = np.clip(img, 0.0, 1.0)
            sd = a if kind == "gauss" else np.sqrt(a * base + b)
            img = img + self.rng.standard_normal(img.shape).astype(np.float32) * sd
            plan.steps.append(f"noise_{kind}")
        return quantize(img)

    def degrade_batch(self, hrs: list[np.ndarray], scale: int,
                      plans: list[Plan] | None = None) -> tuple[list[np.ndarray], list[Plan]]:
        """LR images (8-bit float32) of the HR images ``hrs`` at x``scale``, and the plans
        used (drawn here unless given). The images that drew H.264 are coded together
        per shape, at the CRF and preset of the first of them."""
        plans = plans if plans is not None else [self.plan(scale) for _ in hrs]
        los = [self.degrade_before_codec(hr, scale, p) for hr, p in zip(hrs, plans)]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, p in enumerate(plans):
            if p.codec is None:
                continue
            if p.codec[0] == "jpeg":
                los[i] = jpeg(los[i], p.codec[1])
                p.steps.append("jpeg")
            else:
                groups.setdefault(los[i].shape, []).append(i)
        for idx in groups.values():
            _, crf, preset = plans[idx[0]].codec
            for i, lo in zip(idx, h264([los[i] for i in idx], crf, preset)):
                los[i] = lo
                plans[i].steps.append("h264")
        return los, plans
