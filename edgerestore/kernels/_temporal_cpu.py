"""Numba CPU kernels of the temporal filter: bilinear warp by a flow field, the
forward-backward consistency mask, and the confidence-weighted aggregation.

Private: called by :mod:`edgerestore.kernels.temporal`, which checks the inputs.
Images are float32 ``H x W x C`` (C = 1 or 3), flows float32 ``H x W x 2`` (dx, dy in
pixels), masks float32 in {0, 1}. The float64 NumPy references are in
``tests/kernels/temporal_reference.py``.
"""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, parallel=True, fastmath=False)
def warp_bilinear(img, flow, out, valid):
    """``out[y, x] = img(x + flow[y, x, 0], y + flow[y, x, 1])``, bilinear; positions
    outside the image are clamped to the border and marked ``valid = 0``."""
    H, W, C = img.shape
    for y in numba.prange(H):
        for x in range(W):
            sx = x + flow[y, x, 0]
            sy = y + flow[y, x, 1]
            inside = sx >= -0.5 and sx <= W - 0.5 and sy >= -0.5 and sy <= H - 0.5
            valid[y, x] = 1.0 if inside else 0.0
            sx = min(max(sx, 0.0), W - 1.0)
            sy = min(max(sy, 0.0), H - 1.0)
            x0 = int(math.floor(sx))
            y0 = int(math.floor(sy))
            x1 = min(x0 + 1, W - 1)
            y1 = min(y0 + 1, H - 1)
            fx = sx - x0
            fy = sy - y0
            for c in range(C):
                top = img[y0, x0, c] * (1.0 - fx) + img[y0, x1, c] * fx
                bot = img[y1, x0, c] * (1.0 - fx) + img[y1, x1, c] * fx
                out[y, x, c] = top * (1.0 - fy) + bot * fy


@numba.njit(cache=True, parallel=True)
def fb_consistent(fwd, bwd, tol_abs, tol_rel, out):
    """``out[y, x] = 1`` where the round trip ``fwd`` then ``bwd`` (sampled bilinearly at
    ``x + fwd``) returns within ``tol_abs + tol_rel * |fwd|`` pixels, else 0."""
    H, W, _ = fwd.shape
    for y in numba.prange(H):
        for x in range(W):
            u = fwd[y, x, 0]
            v = fwd[y, x, 1]
            sx = min(max(x + u, 0.0), W - 1.0)
            sy = min(max(y + v, 0.0), H - 1.0)
            x0 = int(math.floor(sx))
            y0 = int(math.floor(sy))
            x1 = min(x0 + 1, W - 1)
            y1 = min(y0 + 1, H - 1)
            fx = sx - x0
            fy = sy - y0
            bu = ((bwd[y0, x0, 0] * (1 - fx) + bwd[y0, x1, 0] * fx) * (1 - fy)
                  + (bwd[y1, x0, 0] * (1 - fx) + bwd[y1, x1, 0] * fx) * fy)
            bv = ((bwd[y0, x0, 1] * (1 - fx) + bwd[y0, x1, 1] * fx) * (1 - fy)
                  + (bwd[y1, x0, 1] * (1 - fx) + bwd[y1, x1, 1] * fx) * fy)
            err2 = (u + bu) * (u + bu) + (v + bv) * (v + bv)
            tol = tol_abs + tol_rel * math.sqrt(u * u + v * v)
            out[y, x] = 1.0 if err2 <= tol * tol else 0.0


@numba.njit(cache=True, parallel=True)
def aggregate(center, warped, dist, valid, noise2, h2, out, resvar):
    """Confidence-weighted mean of the centre frame (weight 1) and K warped neighbours.

    ``warped``: K x H x W x C; ``dist``: K x H x W, the patch-mean squared difference to
    the centre; ``valid``: K x H x W in {0, 1}. Weight of neighbour k at a pixel:
    ``valid * exp(-max(dist - noise2, 0) / h2)`` (``noise2``: the distance pure noise
    gives, ``2 sigma**2``). ``resvar[y, x] = (1 + sum w**2) / (1 + sum w)**2``: the
    residual noise variance as a fraction of the input's (independent noise)."""
    K, H, W, C = warped.shape
    for y in numba.prange(H):
        for x in range(W):
            sw = 1.0
            sw2 = 1.0
            for c in range(C):
                out[y, x, c] = center[y, x, c]
            for k in range(K):
                if valid[k, y, x] == 0.0:
                    continue
                d = dist[k, y, x] - noise2
                if d < 0.0:
                    d = 0.0
                w = math.exp(-d / h2)
                if w < 1e-4:
                    continue
                sw += w
                sw2 += w * w
                for c in range(C):
                    out[y, x, c] += w * warped[k, y, x, c]
            inv = 1.0 / sw
            for c in range(C):
                out[y, x, c] *= inv
            resvar[y, x] = sw2 * inv * inv


@numba.njit(cache=True, parallel=True)
def kalman_blend(current, predicted, pred_var, dist, valid, noise2, h2, min_var, out, out_var):
    """One recursive (Kalman-style) step per pixel: the prediction (previous output warped
    here, variance ``pred_var`` as a fraction of the noise's) is trusted by its match
    ``conf = valid * exp(-max(dist - noise2, 0) / h2)``: a poor match inflates its
    variance to ``pred_var / conf``. ``out = current + g * (predicted - current)`` with
    ``g = 1 / (1 + P)``, ``P = max(pred_var, min_var) / conf`` (the noise variance is 1:
    ``min_var`` bounds the gain, so the memory averages about ``1 / min_var`` frames and a
    mismatch cannot linger). ``out_var``: the variance the blend leaves,
    ``(1 - g)**2 + g**2 pred_var / conf`` (independent noise), which may fall below
    ``min_var`` (the gain's floor is not the noise left)."""
    H, W, C = current.shape
    for y in numba.prange(H):
        for x in range(W):
            conf = 0.0
            if valid[y, x] != 0.0:
                d = dist[y, x] - noise2
                if d < 0.0:
                    d = 0.0
                conf = math.exp(-d / h2)
            if conf < 1e-4:
                for c in range(C):
                    out[y, x, c] = current[y, x, c]
                out_var[y, x] = 1.0
                continue
            pv = pred_var[y, x]
            g = 1.0 / (1.0 + (pv if pv > min_var else min_var) / conf)  # R = 1: the noise variance
            for c in range(C):
                out[y, x, c] = current[y, x, c] + g * (predicted[y, x, c] - current[y, x, c])
            out_var[y, x] = (1.0 - g) * (1.0 - g) + g * g * pv / conf
