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
    """Motion-compensated temporal denoising, offline: the ``radius`` frames before and
    after are warped onto each frame (OpenCV DIS flow on the frames denoised one by one,
    forward-backward checked) and averaged with per-pixel confidence; then ``nlm`` removes
    the residual noise, and where no neighbour matched the frame's own ``nlm`` result is
    kept (so time never makes a frame worse than ``nlm()`` alone).

    ``sigma`` (0-255 scale): the noise level; None estimates it per frame as ``nlm()``
    does. ``preset``: DIS preset (``ultrafast``, ``fast``, ``medium``); ``search_size``:
    the search window of the ``nlm`` pass after the average; ``scene_cut``: histogram
    distance above which two frames are different shots (never neighbours).
    ``model='dn-gray'`` (a zoo name or an ``.onnx`` path, run by
    :class:`~edgerestore.restorer.ModelRestorer` on ``backend``) replaces that ``nlm``
    pass: the model gets the per-pixel residual noise level as its noise map.
    ``spatial=None`` returns the average alone (residual noise left for a stage after it).
    ``alone_search``: search window of the per-frame ``nlm`` (the flow guide and the
    fallback; None: ``nlm()``'s own, 11 is about 2.5x cheaper for about -0.1 dB);
    ``flow_scale``: the flow is computed at this scale; ``h_factor``: width of the match
    weights (in sigma); ``level_scale``: the ``nlm`` pass after the average runs at this
    times the median residual level (the computed residual overestimates what is left:
    bilinear warping already smooths the neighbours). Defaults chosen by measurement
    (``docs/temporal.md``).
    """

    def __init__(self, radius: int = 2, sigma: float | None = None, preset: str = "medium",
                 spatial: str | None = "nlm", search_size: int = 11, scene_cut: float = 0.3,
                 model: str | None = None, backend: str = "auto", device: str = "cpu", threads: int | None = None,
                 alone_search: int | None = None, flow_scale: float = 1.0, h_factor: float = 0.7,
                 level_scale: float = 0.9):
        from edgerestore.kernels.flow import PRESETS

        self.radius = _check_radius(radius)
        if alone_search is not None and (isinstance(alone_search, bool) or not isinstance(alone_search, int)
                                         or alone_search < 3 or alone_search % 2 == 0):
            raise PipelineSpecError(f"temporal(alone_search=...) must be an odd integer of at least 3, got {alone_search!r}")
        if not isinstance(flow_scale, (int, float)) or isinstance(flow_scale, bool) or not 0.1 <= flow_scale <= 1.0:
            raise PipelineSpecError(f"temporal(flow_scale=...) must be a number from 0.1 to 1, got {flow_scale!r}")
        self.alone_search, self.flow_scale = alone_search, float(flow_scale)
        self.h_factor, self.level_scale = float(h_factor), float(level_scale)
        if preset not in PRESETS:
            raise PipelineSpecError(f"temporal(preset=...) must be one of {', '.join(PRESETS)}, got {preset!r}")
        if spatial not in ("nlm", None):
            raise PipelineSpecError(f"temporal(spatial=...) must be 'nlm' or None, got {spatial!r}")
        self.sigma, self.preset, self.spatial, self.search_size = sigma, preset, spatial, int(search_size)
        self.scene_cut, self.device, self.threads = float(scene_cut), device, threads
        self.model, self.backend, self._restorer = model, backend, None
        self.name = "temporal(" + format_args(
            radius=radius, sigma=sigma, preset=None if preset == "medium" else preset,
            search_size=None if search_size == 11 else search_size, model=model,
            alone_search=alone_search, flow_scale=None if flow_scale == 1.0 else flow_scale,
            h_factor=None if h_factor == 0.7 else h_factor, level_scale=None if level_scale == 0.9 else level_scale,
            device=None if device == "cpu" else device) + (", spatial=None" if spatial is None else "") + ")"
        self._cache: dict[int, tuple] = {}
        self.frames_alone = 0

    def open(self) -> None:
        from edgerestore.kernels import nlm
        from edgerestore.kernels.temporal import TemporalFilter

        self._nlm = nlm
        self._filter = TemporalFilter(self.radius, preset=self.preset, flow_scale=self.flow_scale,
                                      h_factor=self.h_factor, device=self.device)
        if self.model is not None and self.spatial:
            from edgerestore.restorer import ModelRestorer

            self._restorer = ModelRestorer.open(self.model, backend=self.backend, threads=self.threads)
        warm = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        self.process_window(Window([warm, warm], 0, [-2, -1], [0.0, 0.0], [None, None]))
        self.reset()
        self.frames_alone = 0

    def close(self) -> None:
        if self._restorer is not None:
            self._restorer.close()
            self._restorer = None

    def reset(self) -> None:
        self._cache.clear()
        if hasattr(self, "_filter"):
            self._filter.reset()

    def _denoise(self, img: np.ndarray, sigma: float, **kw) -> np.ndarray:
        from edgerestore.kernels.threads import numba_threads

        with numba_threads(self.threads):
            return self._nlm(img, sigma=sigma, **kw)

    def _prepared(self, index: int, img: np.ndarray) -> tuple:
        """(sigma, the frame denoised on its own, its guide for scene cuts), cached by index."""
        from edgerestore.kernels.flow import flow_guide

        hit = self._cache.get(index)
        if hit is None:
            sigma = float(self.sigma) if self.sigma is not None else estimate_video_sigma(img)
            alone = (self._denoise(img, sigma, search_size=self.alone_search)
                     if (self.spatial and sigma >= 0.5) else img)
            hit = self._cache[index] = (sigma, alone, flow_guide(alone if self.spatial else img, sigma))
        return hit

    def process_window(self, window: Window) -> np.ndarray:
        from edgerestore.kernels.temporal import fuse_by_residual, scene_cut

        for k in [k for k in self._cache if k not in window.indices]:
            del self._cache[k]
        prepared = [self._prepared(i, img) for i, img in zip(window.indices, window.images)]
        lo = hi = window.center  # the neighbours in the centre frame's shot
        while lo > 0 and not scene_cut(prepared[lo - 1][2], prepared[lo][2], self.scene_cut):
            lo -= 1
        while hi < len(prepared) - 1 and not scene_cut(prepared[hi][2], prepared[hi + 1][2], self.scene_cut):
            hi += 1
        sigma, alone, _ = prepared[window.center]
        if hi == lo or sigma < 0.5:
            self.frames_alone += 1
            return self._alone(window.image, alone, sigma)
        guides = [p[1] for p in prepared[lo:hi + 1]] if self.spatial else None
        res = self._filter.filter(window.images[lo:hi + 1], window.center - lo, sigma,
                                  keys=window.indices[lo:hi + 1], guides=guides,
                                  guide_sigma=sigma * 0.25 if self.spatial else sigma)
        if res.neighbours == 0:  # every neighbour's flow failed (a whip pan)
            self.frames_alone += 1
            return self._alone(window.image, alone, sigma)
        if not self.spatial:
            return res.image
        if self._restorer is not None:
            return self._restorer(res.image, sigma=res.residual_sigma)
        level = float(np.median(res.residual_sigma))
        filtered = self._denoise(res.image, max(level * self.level_scale, 0.5), search_size=self.search_size)
        return fuse_by_residual(filtered, alone, res.residual_sigma, level, sigma)

    def _alone(self, img: np.ndarray, alone: np.ndarray, sigma: float) -> np.ndarray:
        """A frame that time cannot help: the spatial denoiser alone."""
        if self._restorer is not None and sigma >= 0.5:
            return self._restorer(img, sigma=sigma)
        return alone

    def held_bytes(self) -> int:
        """Bytes this stage holds between frames (frames denoised alone, guides, flows)."""
        own = sum(a.nbytes + g.nbytes for _, a, g in self._cache.values())
        return own + (self._filter.held_bytes() if hasattr(self, "_filter") else 0)

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "temporal filter",
                "frames_without_neighbours": self.frames_alone}


class TemporalLiveStage(WindowStage):
    """Motion-compensated temporal denoising, live (causal, no added latency): each frame
    is denoised on its own by a fast ``nlm`` (``search_size``), then blended per pixel
    with the previous output warped onto it (a Kalman-style recursive update; a poor
    match or a failed flow falls back to the frame). Up to 3 dropped frames are bridged
    (the previous output is warped over the gap, and the flow's whole-frame check resets
    the memory when the motion was too much); a longer gap, a change of size or a scene
    cut resets it.

    ``sigma``: as ``temporal``; ``estimate_every``: estimate the noise level on every
    N-th frame only (as ``nlm``); ``min_var``: bounds the memory to about ``1/min_var``
    frames.
    """

    radius = 1
    lookahead = 0
    bridge = 3  # up to 3 dropped frames: the flow's whole-frame check decides whether the memory still fits

    def __init__(self, sigma: float | None = None, search_size: int = 11, estimate_every: int = 10,
                 preset: str = "ultrafast", weight_sigma: float = 0.5, min_var: float = 0.4,
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
        self._last_guide = None
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
        self._sigma = self._last_guide = None  # a new run or shot: estimate the noise level again
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

        from edgerestore.kernels.flow import flow_guide

        img = window.image
        guide = flow_guide(img, 25.0)  # for scene cuts only: compared with the last frame's
        if self._last_guide is not None and scene_cut(self._last_guide, guide, self.scene_cut):
            self.reset()
        self._last_guide = guide
        sigma = self._noise_level(img)
        if sigma < 0.5:
            self._filter.reset()
            return img
        with numba_threads(self.threads):
            base = self._nlm(img, sigma=sigma, search_size=self.search_size)
        return self._filter.step(base, sigma * self.weight_sigma).image

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "recursive temporal filter",
                "memory_resets": self.resets}
