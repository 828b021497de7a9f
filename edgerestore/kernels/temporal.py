"""Motion-compensated temporal denoising: neighbours warped onto a frame by optical flow
and averaged with per-pixel confidence (offline, :class:`TemporalFilter`), or the
previous output warped and blended recursively (live, :class:`RecursiveFilter`).

Conventions: images float32 ``H x W`` or ``H x W x 3`` (BGR) in [0, 1]; sigma on the
0-255 scale; flows float32 ``H x W x 2`` (dx, dy in pixels, see
:mod:`edgerestore.kernels.flow`). Both filters return the filtered frame and the
per-pixel **residual noise level** (0-255 scale): where more neighbours matched, less
noise is left, and a spatial denoiser after them should take that level as its sigma.

A neighbour's weight at a pixel is ``valid * exp(-max(d - 2 sigma**2, 0) / (h sigma)**2)``
with ``d`` the patch-mean squared difference between the warped neighbour and the frame
(``2 sigma**2`` is what two noisy copies of the same scene give) and ``valid`` 0 where
the flow leaves the frame or fails the forward-backward check (occlusions, uncovered
background). The algorithm and the measurements: ``docs/temporal.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgerestore.errors import InputError
from edgerestore.kernels.flow import dis_flow, flow_guide
from edgerestore.kernels.threads import PARALLEL_CPU_KERNEL

DEVICES = ("cpu", "cuda")


def _as3(img: np.ndarray) -> np.ndarray:
    return img[:, :, None] if img.ndim == 2 else img


def _backend(device: str):
    if device == "cpu":
        from edgerestore.kernels import _temporal_cpu as k
    elif device == "cuda":
        from edgerestore.kernels import _temporal_cuda as k
    else:
        raise InputError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return k


def warp(img: np.ndarray, flow: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``img`` sampled at ``x + flow(x)`` (bilinear, border clamped): ``(warped, valid)``,
    ``valid`` float32 ``H x W``, 0 where the sample falls outside ``img``."""
    x = np.ascontiguousarray(_as3(img), dtype=np.float32)
    f = np.ascontiguousarray(flow, dtype=np.float32)
    if f.shape != x.shape[:2] + (2,):
        raise InputError(f"flow of shape {f.shape} does not match an image of {x.shape[:2]}")
    out = np.empty_like(x)
    valid = np.empty(x.shape[:2], np.float32)
    k = _backend(device)
    with PARALLEL_CPU_KERNEL:
        k.warp_bilinear(x, f, out, valid)
    return (out[:, :, 0] if img.ndim == 2 else out), valid


def consistency(fwd: np.ndarray, bwd: np.ndarray, tol_abs: float = 1.0, tol_rel: float = 0.1,
                device: str = "cpu") -> np.ndarray:
    """Forward-backward check: 1 where ``fwd`` followed by ``bwd`` returns within
    ``tol_abs + tol_rel * |fwd|`` pixels, else 0 (occluded or unreliable); float32 H x W."""
    out = np.empty(fwd.shape[:2], np.float32)
    k = _backend(device)
    with PARALLEL_CPU_KERNEL:
        k.fb_consistent(np.ascontiguousarray(fwd, np.float32), np.ascontiguousarray(bwd, np.float32),
                        float(tol_abs), float(tol_rel), out)
    return out


def patch_distance(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size x size`` box and the channels of ``(a - b)**2``; float32 H x W."""
    diff = cv2.subtract(np.asarray(a, np.float32), np.asarray(b, np.float32))
    d = cv2.multiply(diff, diff)
    if d.ndim == 3:  # the channel mean (cv2.transform: several times numpy's speed)
        d = cv2.transform(d, np.full((1, d.shape[2]), 1.0 / d.shape[2], np.float32))
    return cv2.boxFilter(d, -1, (size, size), borderType=cv2.BORDER_REFLECT)


def aggregate(center: np.ndarray, warped: list[np.ndarray], valid: list[np.ndarray], sigma: float,
              *, patch_size: int = 5, h_factor: float = 1.0, device: str = "cpu"
              ) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted mean of ``center`` and its ``warped`` neighbours (weights in
    the module docstring). Returns ``(out, residual_sigma)``: the residual noise level
    per pixel (0-255 scale) for independent noise of level ``sigma``."""
    c = np.ascontiguousarray(_as3(center), np.float32)
    H, W, C = c.shape
    out = np.empty_like(c)
    resvar = np.empty((H, W), np.float32)
    s = max(float(sigma), 0.5) / 255.0
    if warped:
        stack = np.ascontiguousarray(np.stack([_as3(w) for w in warped]), np.float32)
        dist = np.ascontiguousarray(np.stack([patch_distance(c, _as3(w), patch_size) for w in warped]))
        vstack = np.ascontiguousarray(np.stack(valid), np.float32)
    else:
        stack = np.zeros((0, H, W, C), np.float32)
        dist = vstack = np.zeros((0, H, W), np.float32)
    k = _backend(device)
    with PARALLEL_CPU_KERNEL:
        k.aggregate(c, stack, dist, vstack, 2.0 * s * s, (h_factor * s) ** 2, out, resvar)
    residual = np.sqrt(resvar) * float(sigma)
    return (out[:, :, 0] if center.ndim == 2 else out), residual


def scene_cut(guide_a: np.ndarray, guide_b: np.ndarray, threshold: float = 0.3) -> bool:
    """True when two guides (uint8 gray) look like different shots: the Bhattacharyya
    distance of their 32-bin histograms is above ``threshold``, or they differ in size."""
    if guide_a.shape != guide_b.shape:
        return True
    ha = cv2.calcHist([guide_a], [0], None, [32], [0, 256])
    hb = cv2.calcHist([guide_b], [0], None, [32], [0, 256])
    return cv2.compareHist(ha, hb, cv2.HISTCMP_BHATTACHARYYA) > threshold


@dataclass
class TemporalResult:
    """What a temporal filter returns for one frame: the filtered ``image``, the
    ``residual_sigma`` map (0-255 scale, H x W) and how many neighbours were used
    (those left out whole by the flow check do not count)."""

    image: np.ndarray
    residual_sigma: np.ndarray
    neighbours: int


class TemporalFilter:
    """Offline: warps up to ``radius`` frames before and after onto the centre frame and
    aggregates them (:func:`aggregate`).

    ``preset``: DIS preset (:data:`edgerestore.kernels.flow.PRESETS`); ``tol_abs``,
    ``tol_rel``: the forward-backward check (loose by default: it removes gross failures,
    occlusions and flow that went astray, and the match weights do the rest; a 1 px
    tolerance cost 1.1 dB on the dash-cam clip, ``docs/temporal.md``); ``patch_size``, ``h_factor``: the match
    weights; ``flow_scale``: the flow is computed at this scale
    (:func:`~edgerestore.kernels.flow.dis_flow`); ``min_valid``: a neighbour whose flow
    passes a strict check (1 px + 10 %) on less than this fraction of the frame is left
    out whole (a whip pan: the few pixels that pass are
    chance matches). Flows between frame pairs are cached by the keys the caller gives (frame
    indices), so a sliding window computes each pair once.
    """

    def __init__(self, radius: int = 2, preset: str = "fast", patch_size: int = 5,
                 h_factor: float = 1.0, tol_abs: float = 5.0, tol_rel: float = 0.5,
                 min_valid: float = 0.4, flow_scale: float = 1.0, device: str = "cpu"):
        self.radius, self.preset, self.device = int(radius), preset, device
        self.flow_scale = float(flow_scale)
        self.min_valid = float(min_valid)
        self.patch_size, self.h_factor = int(patch_size), float(h_factor)
        self.tol_abs, self.tol_rel = float(tol_abs), float(tol_rel)
        self._guides: dict = {}
        self._flows: dict = {}

    def reset(self) -> None:
        self._guides.clear()
        self._flows.clear()

    def held_bytes(self) -> int:
        """Bytes of the cached flows and flow guides."""
        return sum(a.nbytes for d in (self._guides, self._flows) for a in d.values())

    def cached_flows(self, ka, kb) -> tuple[np.ndarray, np.ndarray] | None:
        """The flows ``(ka -> kb, kb -> ka)`` computed by an earlier :meth:`filter` call and
        still cached (both frames still in the window), else None."""
        fwd, bwd = self._flows.get((ka, kb)), self._flows.get((kb, ka))
        return None if fwd is None or bwd is None else (fwd, bwd)

    def _guide(self, key, img, sigma):
        g = self._guides.get(key)
        if g is None:
            g = self._guides[key] = flow_guide(img, sigma)
        return g

    def _flow(self, ka, kb, ga, gb):
        f = self._flows.get((ka, kb))
        if f is None:
            f = self._flows[(ka, kb)] = dis_flow(ga, gb, self.preset, self.flow_scale)
        return f

    def filter(self, images: list[np.ndarray], center: int, sigma: float, keys: list | None = None,
               guides: list[np.ndarray] | None = None, guide_sigma=None) -> TemporalResult:
        """Filter ``images[center]`` with the other ``images`` (its neighbours, same size,
        same shot), noise level ``sigma``. ``guides``: the frames the flow is computed on
        (e.g. the frames denoised one by one; default ``images``), whose remaining noise
        level is ``guide_sigma`` (it sets each guide's smoothing): one number for all, or
        one per image (default ``sigma``). A guide is cached by its key with the level it
        was made with, so give each image's own level (not the centre's) when the result
        must not depend on which centre came first (chunked runs). ``keys``: a hashable
        per image (frame index) for the flow cache."""
        keys = list(range(len(images))) if keys is None else list(keys)
        guides = images if guides is None else guides
        if guide_sigma is None:
            guide_sigma = sigma
        gs = list(guide_sigma) if np.ndim(guide_sigma) else [guide_sigma] * len(images)
        live = set(keys)
        for k in [k for k in self._guides if k not in live]:
            del self._guides[k]
        for k in [k for k in self._flows if k[0] not in live or k[1] not in live]:
            del self._flows[k]
        kc, x = keys[center], images[center]
        gc = self._guide(kc, guides[center], gs[center])
        warped, valid = [], []
        for j, (kn, img) in enumerate(zip(keys, images)):
            if j == center:
                continue
            gn = self._guide(kn, guides[j], gs[j])
            fwd = self._flow(kc, kn, gc, gn)
            bwd = self._flow(kn, kc, gn, gc)
            w, inside = warp(img, fwd, self.device)
            strict = inside * consistency(fwd, bwd, 1.0, 0.1, self.device)
            if strict.mean() < self.min_valid:
                continue
            ok = inside * consistency(fwd, bwd, self.tol_abs, self.tol_rel, self.device)
            warped.append(w)
            valid.append(ok)
        out, residual = aggregate(x, warped, valid, sigma, patch_size=self.patch_size,
                                  h_factor=self.h_factor, device=self.device)
        return TemporalResult(out, residual, len(warped))


def fuse_by_residual(filtered: np.ndarray, fallback: np.ndarray, residual_sigma: np.ndarray,
                     level: float, sigma: float) -> np.ndarray:
    """Per-pixel choice between two spatial results, in place of a spatial denoiser that
    takes a per-pixel noise level: ``filtered`` was denoised for the residual ``level``,
    ``fallback`` for the full ``sigma``. Where the residual map (0-255 scale) is at
    ``level`` or below, ``filtered``; at ``sigma`` (no neighbour matched), ``fallback``;
    linear in between."""
    a = np.clip((residual_sigma - level) / max(sigma - level, 1e-6), 0.0, 1.0).astype(np.float32)
    if filtered.ndim == 3:
        a = a[:, :, None]
    return filtered + a * (fallback - filtered)


def spatial_level_map(residual_sigma: np.ndarray, sigma: float, level_scale: float) -> np.ndarray:
    """The per-pixel noise level (0-255 scale, H x W) for the spatial pass after the
    average, from its residual map: ``level_scale`` times the residual up to the map's
    median (the formula overestimates the noise left where warped neighbours were
    averaged: bilinear warping already smooths them), rising linearly to 1 times at
    ``sigma`` (nothing was averaged there, so nothing was smoothed). Clipped to
    [0.5, 255] as ``nlm`` takes it."""
    med = float(np.median(residual_sigma))
    a = np.clip((residual_sigma - med) / max(float(sigma) - med, 1e-6), 0.0, 1.0)
    return np.clip(residual_sigma * (level_scale + (1.0 - level_scale) * a), 0.5, 255.0)


def kalman_step(current: np.ndarray, predicted: np.ndarray, pred_var: np.ndarray, valid: np.ndarray,
                sigma: float, *, h_factor: float = 1.0, min_var: float = 0.4, patch_size: int = 5,
                device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """One recursive step per pixel (the ``kalman_blend`` kernel): ``current`` (float32
    ``H x W x C``, noise level ``sigma`` on the 0-255 scale) blended with ``predicted``
    (the memory warped onto it, variance ``pred_var`` as a fraction of ``sigma**2``),
    trusted by ``valid`` and by their ``patch_size`` patch distance against
    ``1.5 sigma**2`` with width ``h_factor sigma``; ``min_var`` bounds the gain. Returns
    ``(out, out_var)``, ``out_var`` the variance left (fraction of ``sigma**2``)."""
    x = np.ascontiguousarray(current, np.float32)
    pred = np.ascontiguousarray(predicted, np.float32)
    s = max(float(sigma), 0.5) / 255.0
    dist = patch_distance(x, pred, patch_size)
    out = np.empty_like(x)
    var = np.empty(x.shape[:2], np.float32)
    k = _backend(device)
    with PARALLEL_CPU_KERNEL:
        k.kalman_blend(x, pred, np.ascontiguousarray(pred_var, np.float32), dist,
                       np.ascontiguousarray(valid, np.float32), s * s * 1.5, (h_factor * s) ** 2, float(min_var),
                       out, var)
    return out, var


class RecursiveFilter:
    """Live, causal: the previous output, warped onto the current frame, is blended with
    it per pixel by a Kalman-style gain (its variance against the noise's, inflated where
    the match is poor); :meth:`reset` forgets it (gaps, scene cuts).

    ``min_var``: the floor of the memory's variance (fraction of the noise's) in the
    gain, which bounds how many frames it averages (about ``1 / min_var``) and so how
    long a mismatch can linger; the residual map :meth:`step` returns is the noise the
    blend actually leaves, which falls below that floor. The flow is checked forward-backward (per pixel with
    ``tol_abs + tol_rel |flow|``, loose as in :class:`TemporalFilter`); when it passes a
    strict check (1 px + 10 %) on less than ``min_valid`` of the frame (a whip pan) the
    frame starts afresh. Other parameters as :class:`TemporalFilter`.
    """

    def __init__(self, preset: str = "ultrafast", patch_size: int = 5, h_factor: float = 1.0,
                 min_var: float = 0.15, min_valid: float = 0.4, tol_abs: float = 5.0, tol_rel: float = 0.5,
                 device: str = "cpu"):
        self.min_valid, self.tol_abs, self.tol_rel = float(min_valid), float(tol_abs), float(tol_rel)
        self.preset, self.patch_size, self.h_factor = preset, int(patch_size), float(h_factor)
        self.min_var, self.device = float(min_var), device
        self.reset()

    def reset(self) -> None:
        """Forget the previous output (gap, scene cut)."""
        self._prev = self._prev_var = self._prev_guide = None

    @property
    def last_guide(self) -> np.ndarray | None:
        """The flow guide of the previous frame (None after a reset)."""
        return self._prev_guide

    @staticmethod
    def guide(img: np.ndarray, sigma: float) -> np.ndarray:
        """The flow guide :meth:`step` uses for ``img``."""
        return flow_guide(img, sigma)

    def step(self, img: np.ndarray, sigma: float, guide_source: np.ndarray | None = None,
             guide_sigma: float | None = None, guide: np.ndarray | None = None) -> TemporalResult:
        """Filter the next frame ``img`` (noise level ``sigma``); a frame of another size
        than the last starts afresh. ``guide_source``: what the flow guide is made from
        (e.g. the frame's luminance denoised; default ``img``), whose remaining noise
        level is ``guide_sigma`` (default ``sigma``); ``guide``: the flow guide itself,
        made ahead by :meth:`guide` (then the two before are not used)."""
        x = np.ascontiguousarray(_as3(img), np.float32)
        if guide is None:
            guide = flow_guide(img if guide_source is None else guide_source,
                               sigma if guide_sigma is None else guide_sigma)
        inside = None
        if self._prev is not None and self._prev.shape == x.shape:
            fwd = dis_flow(guide, self._prev_guide, self.preset)
            bwd = dis_flow(self._prev_guide, guide, self.preset)
            # the memory and its variance warped in one call (one more channel)
            both, inside = warp(np.concatenate([self._prev, self._prev_var[:, :, None]], axis=2), fwd, self.device)
            pred, pvar = np.ascontiguousarray(both[:, :, :-1]), np.ascontiguousarray(both[:, :, -1])
            strict = inside * consistency(fwd, bwd, device=self.device)
            if strict.mean() < self.min_valid:
                inside = None
            elif (self.tol_abs, self.tol_rel) == (1.0, 0.1):  # the per-pixel check is the strict one
                inside = strict
            else:
                inside = inside * consistency(fwd, bwd, self.tol_abs, self.tol_rel, device=self.device)
        if inside is None:
            out, var, used = x.copy(), np.ones(x.shape[:2], np.float32), 0
        else:
            out, var = kalman_step(x, pred, pvar, inside, sigma, h_factor=self.h_factor, min_var=self.min_var,
                                   patch_size=self.patch_size, device=self.device)
            used = 1
        self._prev, self._prev_var, self._prev_guide = out, var, guide
        image = out[:, :, 0] if img.ndim == 2 else out
        return TemporalResult(image.copy(), np.sqrt(var) * float(sigma), used)
