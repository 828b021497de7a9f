"""Stages that run the classical kernels: NLM and BM3D (``edgerestore.kernels``), and
OpenCV's NLM as the usual anchor."""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any

import numpy as np

from edgerestore.imageio import to_float, to_uint8
from edgerestore.kernels.noise import estimate_sigma, estimate_video_sigma
from edgerestore.kernels.threads import numba_threads
from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.report import sigma_summary
from edgerestore.runtime.stages.base import Stage, format_args

SIGMA_ESTIMATORS = ("video", "white")
"""Values of ``nlm(estimate=...)``: :func:`~edgerestore.kernels.noise.estimate_video_sigma`
or the kernel's own white-noise :func:`~edgerestore.kernels.noise.estimate_sigma`."""

_NUMBA_CPU = {"backend": "numba-cpu", "backend_reason": "classical kernel, CPU (Numba parallel)"}

PASS_THROUGH_SIGMA = 0.5
"""A frame whose estimated noise level (0-255) is below this passes through a kernel stage
unchanged (``estimate="video"``): there is nothing to remove, and filtering would only blur."""


class NoiseLog:
    """The noise level a kernel stage estimated for each frame (0-255; the last 100 000
    frames) and how many frames it passed through unchanged; :meth:`describe` gives the
    report fields ``sigma_estimated`` (frames, min, median, max), ``passed_through`` and
    ``pass_threshold``."""

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=100_000)
        self.passed_through = 0

    def add(self, sigma: float, passed: bool) -> None:
        self.values.append(float(sigma))
        self.passed_through += int(passed)

    def describe(self) -> dict[str, Any]:
        if not self.values:
            return {}
        return {"sigma_estimated": sigma_summary(list(self.values)), "passed_through": self.passed_through,
                "pass_threshold": PASS_THROUGH_SIGMA}


def kernel_parameters(kernel) -> list[str]:
    """The keyword parameters of a kernel a stage passes on (all but ``img`` and ``sigma``)."""
    return [p for p in inspect.signature(kernel).parameters if p not in ("img", "sigma")]


def check_kernel_args(kernel, stage: str, kwargs: dict) -> None:
    """Fail at open() (before any work) on a keyword the kernel does not take."""
    params = inspect.signature(kernel).parameters
    unknown = [k for k in kwargs if k not in params or k in ("img", "sigma")]
    if unknown:
        accepted = [p for p in params if p not in ("img",)]
        raise PipelineSpecError(
            f"stage {stage}: unknown parameter {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
        )


class NLMStage(Stage):
    """Non-local means (``edgerestore.kernels.nlm``); colour frames are filtered jointly.

    ``sigma`` (0-255 scale): the noise level; None estimates it on every frame with
    ``estimate``: ``video`` (default; also sees noise that a codec has reshaped, see
    :func:`~edgerestore.kernels.noise.estimate_video_sigma`) or ``white`` (the kernel's
    own fine-scale estimate, right for raw sensor frames and synthetic white noise).
    ``estimate_every``: estimate on every N-th frame only and keep the level in between
    (default 1: every frame; a camera's noise level changes slowly, and the estimate
    costs a good part of a fast NLM's time, see ``docs/runtime.md``). ``threads``: CPU
    threads the kernel may use (default: all; fewer leaves cores to decoding, encoding
    and other stages). Other keyword arguments (``patch_size``, ``search_size``, ``h``,
    ...) go to the kernel unchanged.
    """

    def __init__(self, sigma: float | None = None, estimate: str = "video", threads: int | None = None,
                 estimate_every: int = 1, **kernel_args):
        if estimate not in SIGMA_ESTIMATORS:
            raise PipelineSpecError(f"nlm(estimate=...) must be one of {', '.join(SIGMA_ESTIMATORS)}, got {estimate!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise PipelineSpecError(f"nlm(threads=...) must be a positive integer, got {threads!r}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise PipelineSpecError(f"nlm(estimate_every=...) must be a positive integer, got {estimate_every!r}")
        self.sigma = sigma
        self.estimate = estimate
        self.threads = threads
        self.estimate_every = estimate_every
        self.kernel_args = kernel_args
        shown = {"sigma": sigma, "threads": threads, **kernel_args}
        if sigma is None and estimate != "video":
            shown["estimate"] = estimate
        if sigma is None and estimate_every != 1:
            shown["estimate_every"] = estimate_every
        self.name = f"nlm({format_args(**shown)})"
        self._nlm = None
        self.last_sigma: float | None = None
        self._since_estimate = 0
        self.noise = NoiseLog()

    @classmethod
    def parameters(cls) -> list[str]:
        from edgerestore import kernels

        return super().parameters() + kernel_parameters(kernels.nlm)

    def open(self) -> None:
        from edgerestore import kernels

        check_kernel_args(kernels.nlm, self.name, self.kernel_args)
        self._nlm = kernels.nlm
        self.noise = NoiseLog()
        # Load (or compile) the kernel now, so the first frame's time and latency are real.
        warm = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        self._nlm(warm, sigma=10.0 if self.sigma is None else self.sigma, **self.kernel_args)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        with numba_threads(self.threads):
            sigma = self.sigma
            if sigma is None:
                sigma = self._estimate(img)
                passed = sigma < PASS_THROUGH_SIGMA and self.estimate == "video"
                self.noise.add(sigma, passed)
                if passed:
                    return img  # a clean frame: nothing to remove
            return self._nlm(img, sigma=sigma, **self.kernel_args)

    def _estimate(self, img: np.ndarray) -> float:
        """The frame's noise level, or the last one when it is reused (``estimate_every``)."""
        if self.last_sigma is None or self._since_estimate >= self.estimate_every - 1:
            if self.estimate == "video":
                self.last_sigma = estimate_video_sigma(img)
            else:
                self.last_sigma = max(float(estimate_sigma(img)), 0.01)  # as kernels.nlm does
            self._since_estimate = 0
        else:
            self._since_estimate += 1
        return self.last_sigma

    def describe(self) -> dict[str, Any]:
        return {**_NUMBA_CPU, **self.noise.describe()}


class BM3DStage(Stage):
    """BM3D (``edgerestore.kernels.bm3d``; CBM3D for colour). ``sigma`` None: estimated on
    every frame as for ``nlm`` (:func:`~edgerestore.kernels.noise.estimate_video_sigma`).
    Other keyword arguments go to the kernel unchanged."""

    def __init__(self, sigma: float | None = None, **kernel_args):
        self.sigma = sigma
        self.kernel_args = kernel_args
        self.name = f"bm3d({format_args(sigma=sigma, **kernel_args)})"
        self.noise = NoiseLog()

    @classmethod
    def parameters(cls) -> list[str]:
        from edgerestore import kernels

        return super().parameters() + kernel_parameters(kernels.bm3d)

    def open(self) -> None:
        from edgerestore import kernels

        check_kernel_args(kernels.bm3d, self.name, self.kernel_args)
        self._bm3d = kernels.bm3d
        self.noise = NoiseLog()

    def __call__(self, img: np.ndarray) -> np.ndarray:
        sigma = self.sigma
        if sigma is None:
            sigma = estimate_video_sigma(img)
            self.noise.add(sigma, sigma < PASS_THROUGH_SIGMA)
        if sigma < PASS_THROUGH_SIGMA:
            return img  # a clean frame: nothing to remove
        return self._bm3d(img, sigma=float(sigma), **self.kernel_args)

    def describe(self) -> dict[str, Any]:
        return {**_NUMBA_CPU, **self.noise.describe()}


class OpenCVNLMStage(Stage):
    """OpenCV's ``fastNlMeansDenoisingColored`` (or the gray variant): the usual anchor.

    ``h`` is OpenCV's filter strength (0-255 scale); None uses ``h = sigma`` with
    ``sigma`` (default 15). ``template``/``search``: patch and search window sizes.
    Works on 8-bit data internally.
    """

    def __init__(self, h: float | None = None, sigma: float = 15.0, template: int = 7, search: int = 21):
        self.h = float(h if h is not None else sigma)
        self.template, self.search = int(template), int(search)
        self.name = f"opencv_nlm(h={self.h:g})"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        u8 = to_uint8(img)
        if u8.ndim == 3:
            out = cv2.fastNlMeansDenoisingColored(u8, None, self.h, self.h, self.template, self.search)
        else:
            out = cv2.fastNlMeansDenoising(u8, None, self.h, self.template, self.search)
        return to_float(out)

    def describe(self) -> dict[str, Any]:
        return {"backend": "opencv-cpu", "backend_reason": "OpenCV fastNlMeans (8-bit)"}
