"""Window stages: the :class:`Window` a window stage receives, and the temporal
denoisers built on it, ``temporal`` (offline, frames before and after) and
``temporal_live`` (causal, recursive, no added latency).

The kind itself (:class:`~edgerestore.runtime.stages.base.WindowStage`) is in ``base``;
the worker that buffers the frames is :mod:`edgerestore.runtime.window_worker`.
``docs/runtime.md`` documents the protocol, ``docs/temporal.md`` the filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgerestore.kernels.noise import estimate_video_sigma
from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages.base import WindowStage, format_args


@dataclass
class Window:
    """What a window stage sees for one output frame.

    ``images``: float32 frames in [0, 1], oldest first, all of one size and one run
    (no gap, no clip edge inside); ``center``: the position in ``images`` of the frame
    to produce; ``indices``, ``timestamps``: those of the frames; ``outputs``: this
    stage's own earlier output for each frame (``None`` for the frame to produce and
    those after it).
    """

    images: list
    center: int
    indices: list
    timestamps: list
    outputs: list

    @property
    def image(self) -> np.ndarray:
        """The frame to produce."""
        return self.images[self.center]


def _check_radius(radius) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int) or not 0 <= radius <= 7:
        raise PipelineSpecError(f"temporal(radius=...) must be an integer from 0 to 7, got {radius!r}")
    return radius


class TemporalStage(WindowStage):
    """Motion-compensated temporal denoising, offline: each frame is first denoised on its
    own by ``nlm`` (once per frame), the ``radius`` frames before and after are warped onto
    it by optical flow on those denoised frames (OpenCV DIS, forward-backward checked) and
    averaged with per-pixel confidence.

    ``sigma`` (0-255 scale): the noise level; None estimates it per frame as ``nlm()``
    does. ``preset``: DIS preset; ``weight_sigma``: the noise level the match weights
    assume, as a fraction of ``sigma`` (what NLM leaves); ``scene_cut``: histogram
    distance above which two frames are different shots (never neighbours).
    ``prefilter=None`` averages the noisy frames instead (for ``temporal(prefilter=None)
    |nlm()`` or ``|model(...)``; the spatial stage then estimates the residual level).
    """

    def __init__(self, radius: int = 2, sigma: float | None = None, preset: str = "ultrafast",
                 prefilter: str | None = "nlm", weight_sigma: float = 0.7, scene_cut: float = 0.3,
                 device: str = "cpu", threads: int | None = None):
        from edgerestore.kernels.flow import PRESETS

        self.radius = _check_radius(radius)
        if preset not in PRESETS:
            raise PipelineSpecError(f"temporal(preset=...) must be one of {', '.join(PRESETS)}, got {preset!r}")
        if prefilter not in ("nlm", None):
            raise PipelineSpecError(f"temporal(prefilter=...) must be 'nlm' or None, got {prefilter!r}")
        self.sigma, self.preset, self.prefilter = sigma, preset, prefilter
        self.weight_sigma, self.scene_cut, self.device, self.threads = float(weight_sigma), float(scene_cut), device, threads
        self.name = "temporal(" + format_args(radius=radius, sigma=sigma, preset=None if preset == "ultrafast" else preset,
                                              device=None if device == "cpu" else device) + (
            ", prefilter=None" if prefilter is None else "") + ")"
        self._cache: dict[int, tuple] = {}
        self.frames_alone = 0
        self.frames = 0

    def open(self) -> None:
        from edgerestore.kernels import nlm
        from edgerestore.kernels.temporal import TemporalFilter

        self._nlm = nlm
        self._filter = TemporalFilter(self.radius, preset=self.preset, device=self.device)
        warm = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        self.process_window(Window([warm, warm], 0, [-2, -1], [0.0, 0.0], [None, None]))
        self.reset()
        self.frames = self.frames_alone = 0

    def reset(self) -> None:
        self._cache.clear()
        if hasattr(self, "_filter"):
            self._filter.reset()

    def _prepared(self, index: int, img: np.ndarray) -> tuple:
        """(sigma, the frame to average, its flow guide) for the frame ``index``, cached."""
        from edgerestore.kernels.flow import flow_guide
        from edgerestore.kernels.threads import numba_threads

        hit = self._cache.get(index)
        if hit is None or hit[1].shape[:2] != img.shape[:2]:
            sigma = float(self.sigma) if self.sigma is not None else estimate_video_sigma(img)
            base = img
            if self.prefilter == "nlm" and sigma >= 0.5:
                with numba_threads(self.threads):
                    base = self._nlm(img, sigma=sigma)
            hit = self._cache[index] = (sigma, base, flow_guide(base, sigma * (self.weight_sigma if self.prefilter else 1.0)))
        return hit

    def process_window(self, window: Window) -> np.ndarray:
        from edgerestore.kernels.temporal import scene_cut

        self.frames += 1
        for k in [k for k in self._cache if k not in window.indices]:
            del self._cache[k]
        prepared = [self._prepared(i, img) for i, img in zip(window.indices, window.images)]
        # Keep only the neighbours in the centre frame's shot.
        lo = hi = window.center
        while lo > 0 and not scene_cut(prepared[lo - 1][2], prepared[lo][2], self.scene_cut):
            lo -= 1
        while hi < len(prepared) - 1 and not scene_cut(prepared[hi][2], prepared[hi + 1][2], self.scene_cut):
            hi += 1
        sigma = prepared[window.center][0]
        if hi == lo or sigma < 0.5:
            self.frames_alone += 1
            return prepared[window.center][1]
        level = sigma * self.weight_sigma if self.prefilter else sigma
        res = self._filter.filter([p[1] for p in prepared[lo:hi + 1]], window.center - lo, level,
                                  keys=window.indices[lo:hi + 1])
        return res.image

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "temporal filter",
                "frames_without_neighbours": self.frames_alone}


class TemporalLiveStage(WindowStage):
    """Motion-compensated temporal denoising, live (causal, no added latency): each frame
    is denoised on its own by a fast ``nlm`` (``search_size``), then blended per pixel
    with the previous output warped onto it (a Kalman-style recursive update; a poor
    match or a failed flow falls back to the frame). A gap in the frames (dropped in live
    mode), a change of size or a scene cut resets the memory.

    ``sigma``: as ``temporal``; ``estimate_every``: estimate the noise level on every
    N-th frame only (as ``nlm``); ``min_var``: bounds the memory to about ``1/min_var``
    frames.
    """

    radius = 1
    lookahead = 0

    def __init__(self, sigma: float | None = None, search_size: int = 11, estimate_every: int = 10,
                 preset: str = "ultrafast", weight_sigma: float = 0.7, min_var: float = 0.25,
                 scene_cut: float = 0.3, device: str = "cpu", threads: int | None = None):
        from edgerestore.kernels.flow import PRESETS

        if preset not in PRESETS:
            raise PipelineSpecError(f"temporal_live(preset=...) must be one of {', '.join(PRESETS)}, got {preset!r}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise PipelineSpecError(f"temporal_live(estimate_every=...) must be a positive integer, got {estimate_every!r}")
        self.sigma, self.search_size, self.estimate_every = sigma, int(search_size), estimate_every
        self.preset, self.weight_sigma, self.min_var = preset, float(weight_sigma), float(min_var)
        self.scene_cut, self.device, self.threads = float(scene_cut), device, threads
        self.name = "temporal_live(" + format_args(sigma=sigma, search_size=None if search_size == 11 else search_size,
                                                   device=None if device == "cpu" else device) + ")"
        self._sigma: float | None = None
        self._since = 0
        self.resets = 0

    def open(self) -> None:
        from edgerestore.kernels import nlm
        from edgerestore.kernels.temporal import RecursiveFilter

        self._nlm = nlm
        self._filter = RecursiveFilter(preset=self.preset, min_var=self.min_var, device=self.device)
        warm = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        for _ in range(2):
            self.process_window(Window([warm], 0, [0], [0.0], [None]))
        self.reset()
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        if hasattr(self, "_filter"):
            self._filter.reset()

    def _noise_level(self, img: np.ndarray) -> float:
        if self.sigma is not None:
            return float(self.sigma)
        if self._sigma is None or self._since >= self.estimate_every - 1:
            self._sigma, self._since = estimate_video_sigma(img), 0
        else:
            self._since += 1
        return self._sigma

    def process_window(self, window: Window) -> np.ndarray:
        from edgerestore.kernels.temporal import scene_cut
        from edgerestore.kernels.threads import numba_threads

        img = window.image
        sigma = self._noise_level(img)
        if sigma < 0.5:
            self._filter.reset()
            return img
        with numba_threads(self.threads):
            base = self._nlm(img, sigma=sigma, search_size=self.search_size)
        prev = self._filter.last_guide
        if prev is not None and scene_cut(prev, self._filter.guide(base, sigma * self.weight_sigma), self.scene_cut):
            self.resets += 1
            self._filter.reset()
        return self._filter.step(base, sigma * self.weight_sigma).image

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "recursive temporal filter",
                "memory_resets": self.resets}
