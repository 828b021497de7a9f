"""Window stages: the :class:`Window` a window stage receives, and the temporal
denoisers built on it, ``temporal`` (offline, frames before and after) and
``temporal_live`` (causal, recursive, no added latency).

The kind itself (:class:`~edgerestore.runtime.stages.base.WindowStage`) is in ``base``;
the worker that buffers the frames is :mod:`edgerestore.runtime.window_worker`.
``docs/runtime.md`` documents the protocol, ``docs/temporal.md`` the filters.

Why one module: the offline and the live stage are two uses of one filter family: they
share the flow guides (``luma_guide``), the way the noise level and the per-pixel map
reach the NLM pass, and the parameter checks, and each change to one (as the round-5
residual map) is measured against the other; apart they would import each other's
helpers, which is why they stay in one. The filters are in :mod:`edgerestore.kernels.temporal`.
"""

from __future__ import annotations

import functools

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


def luma_guide(nlm, img: np.ndarray, sigma: float, search_size: int) -> np.ndarray:
    """What the flow is computed on: the luminance of ``img`` (channel mean: white noise
    of ``sigma / sqrt(3)`` for independent channels; 0-255 scale) denoised by ``nlm``
    pixelwise with a small search window; float32 H x W in [0, 1]. At 640x360 with an
    11x11 search it costs about a tenth of ``nlm()`` on the colour frame."""
    luma = img.mean(axis=2, dtype=np.float32) if img.ndim == 3 else img
    level = sigma / np.sqrt(3.0) if img.ndim == 3 else sigma
    return nlm(luma, sigma=max(level, 0.5), search_size=search_size, aggregation="pixel")


OUTPUT_LEVEL = 0.12
"""``temporal(recursive=True)``: the error left in an output, as a fraction of the
input's noise level, against which its match with the previous output is judged."""
OUTPUT_MIN_VAR = 1.0
"""``temporal(recursive=True)``: the floor of the memory's variance in the gain (1: the
previous output counts at most as much as the new one)."""


def _check_radius(radius) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int) or not 0 <= radius <= 7:
        raise PipelineSpecError(f"temporal(radius=...) must be an integer from 0 to 7, got {radius!r}")
    return radius


class TemporalStage(WindowStage):
    """Motion-compensated temporal denoising, offline: the ``radius`` frames before and
    after are warped onto each frame (OpenCV DIS flow on guides denoised one by one,
    forward-backward checked) and averaged with per-pixel confidence; then one ``nlm``
    pass removes the residual noise with the per-pixel residual level as its sigma: full
    strength where no neighbour matched, less where many did.

    ``sigma`` (0-255 scale): the noise level; None estimates it per frame as ``nlm()``
    does (each frame from itself alone, so chunked runs equal whole ones). ``preset``:
    DIS preset (``ultrafast``, ``fast``, ``medium``); ``search_size``: the search window
    of the ``nlm`` pass after the average; ``scene_cut``: histogram distance above which
    two frames are different shots (never neighbours). ``model='dn-gray'`` (a zoo name
    or an ``.onnx`` path, run by :class:`~edgerestore.restorer.ModelRestorer` on
    ``backend``) replaces that ``nlm`` pass: the model gets the per-pixel residual noise
    level as its noise map. ``spatial=None`` returns the average alone (residual noise
    left for a stage after it). ``flow_scale``: the flow is computed at this scale;
    ``h_factor``: width of the match weights (in sigma); ``level_scale``: the ``nlm``
    pass after the average runs at this times the residual level (the computed residual
    overestimates what is left: bilinear warping already smooths the neighbours; default
    0.8 with ``sigma_map``, 0.9 without, by measurement).

    ``sigma_map=True`` (default): the flow guides are the frames' luminance denoised by
    a cheap ``nlm`` (pixelwise, ``alone_search``, default 11), and the ``nlm`` pass takes
    the residual map as a per-pixel sigma. ``sigma_map=False``: the round-3 path, kept to
    compare: each frame denoised alone by ``nlm()`` (``alone_search``; None: its own)
    is the guide and the fallback, the ``nlm`` pass runs at the median residual level,
    and the two are blended by the residual map (:func:`~edgerestore.kernels.temporal.fuse_by_residual`).
    Either way a frame with no usable neighbour is ``nlm()`` alone. Defaults chosen by
    measurement (``docs/temporal.md``).

    ``recursive=True`` (radius 1 or more): each output is then blended with the stage's
    output for the frame before, warped onto it by the flow the average computed, where
    the two match within the error denoising leaves (less frame-to-frame flicker in
    static, well-matched areas). The output then depends on every earlier frame of the
    shot, so the stage keeps one more frame behind than ahead (``radius`` + 1), which
    tells batch runs not to cut the video into chunks.
    """

    def __init__(self, radius: int = 2, sigma: float | None = None, preset: str = "medium",
                 spatial: str | None = "nlm", search_size: int = 11, scene_cut: float = 0.3,
                 model: str | None = None, backend: str = "auto", device: str = "cpu", threads: int | None = None,
                 alone_search: int | None = None, flow_scale: float = 1.0, h_factor: float = 0.7,
                 level_scale: float | None = None, sigma_map: bool = True, recursive: bool = False):
        from edgerestore.kernels.flow import PRESETS

        self.radius = self.filter_radius = _check_radius(radius)
        if not isinstance(recursive, bool):
            raise PipelineSpecError(f"temporal(recursive=...) must be True or False, got {recursive!r}")
        if recursive and radius < 1:
            raise PipelineSpecError("temporal(recursive=True) needs radius=1 or more (the flow to the frame before)")
        self.recursive = recursive
        if recursive:
            # one frame more behind than ahead: the runtime then treats the stage as carrying
            # state over the whole video (batch runs never cut it into chunks)
            self.radius, self.lookahead = radius + 1, radius
        if alone_search is not None and (isinstance(alone_search, bool) or not isinstance(alone_search, int)
                                         or alone_search < 3 or alone_search % 2 == 0):
            raise PipelineSpecError(f"temporal(alone_search=...) must be an odd integer of at least 3, got {alone_search!r}")
        if not isinstance(flow_scale, (int, float)) or isinstance(flow_scale, bool) or not 0.1 <= flow_scale <= 1.0:
            raise PipelineSpecError(f"temporal(flow_scale=...) must be a number from 0.1 to 1, got {flow_scale!r}")
        self.alone_search, self.flow_scale = alone_search, float(flow_scale)
        if not isinstance(sigma_map, bool):
            raise PipelineSpecError(f"temporal(sigma_map=...) must be True or False, got {sigma_map!r}")
        self.h_factor = float(h_factor)
        self.level_scale = float(level_scale) if level_scale is not None else (0.8 if sigma_map else 0.9)
        self.sigma_map = sigma_map
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
            h_factor=None if h_factor == 0.7 else h_factor, level_scale=level_scale,
            sigma_map=None if sigma_map else False, recursive=recursive or None,
            device=None if device == "cpu" else device) + (", spatial=None" if spatial is None else "") + ")"
        self._cache: dict[int, tuple] = {}
        self._out_var: dict[int, np.ndarray] = {}  # recursive: the variance map of each output kept
        self.frames_alone = 0

    def open(self) -> None:
        from edgerestore.kernels import nlm
        from edgerestore.kernels.temporal import TemporalFilter

        self._nlm = functools.partial(nlm, device=self.device)  # the NLM passes run where the flow does
        self._filter = TemporalFilter(self.filter_radius, preset=self.preset, flow_scale=self.flow_scale,
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
        self._out_var.clear()
        if hasattr(self, "_filter"):
            self._filter.reset()

    def _denoise(self, img: np.ndarray, sigma: float, **kw) -> np.ndarray:
        from edgerestore.kernels.threads import numba_threads

        with numba_threads(self.threads):
            return self._nlm(img, sigma=sigma, **kw)

    def _prepared(self, index: int, img: np.ndarray) -> tuple:
        """(sigma, the frame denoised on its own or None, the flow guide's source, the
        guide for scene cuts), cached by index; everything from this frame alone."""
        from edgerestore.kernels.flow import flow_guide

        hit = self._cache.get(index)
        if hit is None:
            sigma = float(self.sigma) if self.sigma is not None else estimate_video_sigma(img)
            alone, source = None, img
            if self.spatial and sigma >= 0.5:
                if self.sigma_map:
                    source = self._luma_guide(img, sigma)
                else:
                    alone = source = self._denoise(img, sigma, search_size=self.alone_search)
            hit = self._cache[index] = (sigma, alone, source, flow_guide(source, sigma))
        return hit

    def _luma_guide(self, img: np.ndarray, sigma: float) -> np.ndarray:
        from edgerestore.kernels.threads import numba_threads

        with numba_threads(self.threads):
            return luma_guide(self._nlm, img, sigma, self.alone_search or 11)

    def process_window(self, window: Window) -> np.ndarray:
        if window.center > self.filter_radius:  # recursive: the extra frame behind is no neighbour
            cut = window.center - self.filter_radius
            window = Window(window.images[cut:], window.center - cut, window.indices[cut:],
                            window.timestamps[cut:], window.outputs[cut:])
        out = self._restore(window)
        return self._recurse(window, out) if self.recursive else out

    def _recurse(self, window: Window, out: np.ndarray) -> np.ndarray:
        """``recursive=True``: ``out`` blended with this stage's output for the frame
        before, warped onto it by the flow the average already computed, by a Kalman-style
        gain at most 1/2 (``OUTPUT_MIN_VAR``) that trusts it only where the two match
        within the error left after denoising (``OUTPUT_LEVEL`` times sigma): static,
        well-matched areas stop changing from frame to frame with the noise."""
        from edgerestore.kernels.temporal import consistency, kalman_step, warp

        c, kc = window.center, window.indices[window.center]
        for k in [k for k in self._out_var if k not in window.indices]:
            del self._out_var[k]
        flat = out[:, :, None] if out.ndim == 2 else out
        self._out_var[kc] = np.ones(flat.shape[:2], np.float32)
        kp = window.indices[c - 1] if c > 0 else None
        flows = self._filter.cached_flows(kc, kp) if kp in self._out_var else None
        if flows is None or window.outputs[c - 1] is None:
            return out
        fwd, bwd = flows
        f = self._filter
        if consistency(fwd, bwd, 1.0, 0.1, self.device).mean() < f.min_valid:  # as the average: a whip pan
            return out
        prev = window.outputs[c - 1]
        prev = prev[:, :, None] if prev.ndim == 2 else prev
        both, inside = warp(np.concatenate([prev, self._out_var[kp][:, :, None]], axis=2), fwd, self.device)
        valid = inside * consistency(fwd, bwd, f.tol_abs, f.tol_rel, self.device)
        sigma = self._prepared(kc, window.image)[0]
        blended, var = kalman_step(flat, both[:, :, :-1], both[:, :, -1], valid, OUTPUT_LEVEL * sigma,
                                   min_var=OUTPUT_MIN_VAR, device=self.device)
        self._out_var[kc] = var
        return blended[:, :, 0] if out.ndim == 2 else blended

    def _restore(self, window: Window) -> np.ndarray:
        from edgerestore.kernels.temporal import fuse_by_residual, scene_cut, spatial_level_map

        for k in [k for k in self._cache if k not in window.indices]:
            del self._cache[k]
        prepared = [self._prepared(i, img) for i, img in zip(window.indices, window.images)]
        lo = hi = window.center  # the neighbours in the centre frame's shot
        while lo > 0 and not scene_cut(prepared[lo - 1][3], prepared[lo][3], self.scene_cut):
            lo -= 1
        while hi < len(prepared) - 1 and not scene_cut(prepared[hi][3], prepared[hi + 1][3], self.scene_cut):
            hi += 1
        sigma, alone, _, _ = prepared[window.center]
        if hi == lo or sigma < 0.5:
            self.frames_alone += 1
            return self._alone(window.image, alone, sigma)
        shot = prepared[lo:hi + 1]
        # each guide smoothed for its own frame's level: a cached guide must not depend
        # on which centre frame asked for it first
        res = self._filter.filter(window.images[lo:hi + 1], window.center - lo, sigma,
                                  keys=window.indices[lo:hi + 1], guides=[p[2] for p in shot],
                                  guide_sigma=[p[0] * (0.25 if self.spatial else 1.0) for p in shot])
        if res.neighbours == 0:  # every neighbour's flow failed (a whip pan)
            self.frames_alone += 1
            return self._alone(window.image, alone, sigma)
        if not self.spatial:
            return res.image
        if self._restorer is not None:
            return self._restorer(res.image, sigma=res.residual_sigma)
        if self.sigma_map:
            level_map = spatial_level_map(res.residual_sigma, sigma, self.level_scale)
            return self._denoise(res.image, level_map, search_size=self.search_size)
        level = float(np.median(res.residual_sigma))
        filtered = self._denoise(res.image, max(level * self.level_scale, 0.5), search_size=self.search_size)
        return fuse_by_residual(filtered, alone, res.residual_sigma, level, sigma)

    def _alone(self, img: np.ndarray, alone: np.ndarray | None, sigma: float) -> np.ndarray:
        """A frame that time cannot help: the spatial denoiser alone (``nlm()`` with its
        defaults when ``alone`` was not computed ahead)."""
        if self._restorer is not None and sigma >= 0.5:
            return self._restorer(img, sigma=sigma)
        if alone is None:
            return self._denoise(img, sigma) if (self.spatial and sigma >= 0.5) else img
        return alone

    def held_bytes(self) -> int:
        """Bytes this stage holds between frames (frames denoised alone or the denoised
        luminance guides, scene-cut guides, flows and flow guides; not the window's frames)."""
        own = 0
        for _, alone, source, cut_guide in self._cache.values():
            own += cut_guide.nbytes + (alone.nbytes if alone is not None else 0)
            if source is not alone and self.spatial and self.sigma_map:
                own += source.nbytes  # the luminance guide (otherwise the frame or `alone`)
        own += sum(v.nbytes for v in self._out_var.values())  # recursive: the outputs' variance maps
        return own + (self._filter.held_bytes() if hasattr(self, "_filter") else 0)

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "temporal filter",
                "frames_without_neighbours": self.frames_alone}


class TemporalLiveStage(WindowStage):
    """Motion-compensated temporal denoising, live (causal, no added latency). Up to 3
    dropped frames are bridged (the memory is warped over the gap, and the flow's
    whole-frame check resets it when the motion was too much); a longer gap, a change of
    size or a scene cut resets it.

    ``sigma_map=True`` (default): the recursion runs on the *noisy* frames (the previous
    state warped onto the frame by DIS flow on the smoothed luminance, or on the luminance
    denoised by a small ``nlm`` with ``guide_search`` >= 3; blended per pixel by a
    Kalman-style gain, ``min_var`` (default 0.8) bounding the memory to about
    ``1/min_var`` frames), then one ``nlm`` pass (``search_size``, default 9) with the
    recursion's per-pixel residual level as its sigma (``level_scale`` as in
    ``temporal``): full strength where the memory did not match. ``sigma_map=False``:
    the earlier order, each frame denoised alone by ``nlm(search_size=11)``, then blended
    with the previous output warped onto it (``min_var`` default 0.4).

    ``sigma``: as ``temporal``; ``estimate_every``: estimate the noise level on every
    N-th frame only (as ``nlm``). Defaults chosen by measurement (``docs/temporal.md``).
    """

    radius = 1
    lookahead = 0
    bridge = 3  # up to 3 dropped frames: the flow's whole-frame check decides whether the memory still fits

    def __init__(self, sigma: float | None = None, search_size: int | None = None, estimate_every: int = 10,
                 preset: str = "ultrafast", weight_sigma: float = 0.5, min_var: float | None = None,
                 scene_cut: float = 0.3, device: str = "cpu", threads: int | None = None,
                 sigma_map: bool = True, guide_search: int = 0, level_scale: float = 0.9):
        from edgerestore.kernels.flow import PRESETS

        if preset not in PRESETS:
            raise PipelineSpecError(f"temporal_live(preset=...) must be one of {', '.join(PRESETS)}, got {preset!r}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise PipelineSpecError(f"temporal_live(estimate_every=...) must be a positive integer, got {estimate_every!r}")
        if not isinstance(sigma_map, bool):
            raise PipelineSpecError(f"temporal_live(sigma_map=...) must be True or False, got {sigma_map!r}")
        default_search, default_min_var = (9, 0.8) if sigma_map else (11, 0.4)
        self.sigma, self.estimate_every = sigma, estimate_every
        self.search_size = int(search_size) if search_size is not None else default_search
        self.preset, self.weight_sigma = preset, float(weight_sigma)
        self.min_var = float(min_var) if min_var is not None else default_min_var
        self.scene_cut, self.device, self.threads = float(scene_cut), device, threads
        if (isinstance(guide_search, bool) or not isinstance(guide_search, int)
                or (guide_search != 0 and (guide_search < 3 or guide_search % 2 == 0))):
            raise PipelineSpecError("temporal_live(guide_search=...) must be 0 (no nlm for the flow guide) or an odd "
                                    f"integer of at least 3, got {guide_search!r}")
        self.sigma_map, self.guide_search, self.level_scale = sigma_map, guide_search, float(level_scale)
        self.name = "temporal_live(" + format_args(
            sigma=sigma, search_size=search_size, min_var=min_var, sigma_map=None if sigma_map else False,
            guide_search=guide_search or None,
            level_scale=None if level_scale == 0.9 else level_scale,
            device=None if device == "cpu" else device) + ")"
        self._sigma: float | None = None
        self._last_guide = None
        self._since = 0
        self.resets = 0

    def open(self) -> None:
        from edgerestore.kernels import nlm
        from edgerestore.kernels.temporal import RecursiveFilter

        self._nlm = functools.partial(nlm, device=self.device)  # the NLM passes run where the flow does
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
        if self.sigma_map:
            return self._denoise_after(img)
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

    def _guide(self, img: np.ndarray, sigma: float) -> np.ndarray:
        """The flow guide of ``img``: its luminance denoised by a small ``nlm``
        (``guide_search``), or with ``guide_search=0`` only smoothed for ``sigma``."""
        if not self.guide_search:
            return self._filter.guide(img, sigma)
        from edgerestore.kernels.threads import numba_threads

        with numba_threads(self.threads):
            return self._filter.guide(luma_guide(self._nlm, img, sigma, self.guide_search), sigma * 0.25)

    def _denoise_after(self, img: np.ndarray) -> np.ndarray:
        """``sigma_map=True``: the recursion on the noisy frame, then one ``nlm`` pass with
        its residual map; the flow guide also serves the scene-cut check."""
        from edgerestore.kernels.temporal import scene_cut, spatial_level_map
        from edgerestore.kernels.threads import numba_threads

        sigma = self._noise_level(img)
        guide = self._guide(img, sigma) if sigma >= 0.5 else self._filter.guide(img, 25.0)
        if self._last_guide is not None and scene_cut(self._last_guide, guide, self.scene_cut):
            self.reset()
            shot_sigma = self._noise_level(img)  # a new shot: its own level, and the guide made for it
            if shot_sigma != sigma:
                sigma = shot_sigma
                guide = self._guide(img, sigma) if sigma >= 0.5 else self._filter.guide(img, 25.0)
        self._last_guide = guide
        if sigma < 0.5:
            self._filter.reset()
            return img
        res = self._filter.step(img, sigma, guide=guide)
        level = spatial_level_map(res.residual_sigma, sigma, self.level_scale)
        with numba_threads(self.threads):
            return self._nlm(res.image, sigma=level, search_size=self.search_size)

    def describe(self) -> dict[str, Any]:
        return {"backend": f"numba-{self.device} + opencv DIS", "backend_reason": "recursive temporal filter",
                "memory_resets": self.resets}
