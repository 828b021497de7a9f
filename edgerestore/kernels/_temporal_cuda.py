"""The temporal filter's kernels on NVIDIA GPUs with ``numba.cuda``: the same functions,
arguments and arithmetic as ``_temporal_cpu`` (host arrays in, results written into the
``out`` arrays), one CUDA thread per pixel.

Private: used by :mod:`edgerestore.kernels.temporal` with ``device="cuda"``. Checked
against the float64 references under ``NUMBA_ENABLE_CUDASIM=1`` on tiny inputs
(``tests/kernels/test_temporal.py``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import BackendError

# numba.cuda is imported on first use; the kernels must see `cuda` as a module global
# (the CUDA simulator swaps it there).
cuda = None
BLOCK = (16, 16)


def _load():
    global cuda
    if cuda is None:
        cuda = require("numba.cuda", purpose="temporal filter with device='cuda'")
    try:
        ok = cuda.is_available()
    except Exception as exc:  # a driver that is present but broken
        raise BackendError(f"temporal filter, device='cuda': CUDA is not usable here ({exc}); use device='cpu'") from exc
    if not ok:
        raise BackendError("temporal filter, device='cuda': no NVIDIA GPU with a working driver; use device='cpu'")
    return cuda


def _grid(H: int, W: int):
    return ((W + BLOCK[0] - 1) // BLOCK[0], (H + BLOCK[1] - 1) // BLOCK[1])


@functools.lru_cache(maxsize=None)
def _kernels():
    _load()

    @cuda.jit
    def warp_k(img, flow, out, valid):
        x, y = cuda.grid(2)
        H, W, C = img.shape
        if y >= H or x >= W:
            return
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

    @cuda.jit
    def fb_k(fwd, bwd, tol_abs, tol_rel, out):
        x, y = cuda.grid(2)
        H, W, _ = fwd.shape
        if y >= H or x >= W:
            return
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

    @cuda.jit
    def aggregate_k(center, warped, dist, valid, noise2, h2, out, resvar):
        x, y = cuda.grid(2)
        K, H, W, C = warped.shape
        if y >= H or x >= W:
            return
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

    @cuda.jit
    def kalman_k(current, predicted, pred_var, dist, valid, noise2, h2, min_var, out, out_var):
        x, y = cuda.grid(2)
        H, W, C = current.shape
        if y >= H or x >= W:
            return
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
            return
        pv = pred_var[y, x]
        g = 1.0 / (1.0 + (pv if pv > min_var else min_var) / conf)
        for c in range(C):
            out[y, x, c] = current[y, x, c] + g * (predicted[y, x, c] - current[y, x, c])
        out_var[y, x] = (1.0 - g) * (1.0 - g) + g * g * pv / conf

    return warp_k, fb_k, aggregate_k, kalman_k


def _run(kernel, H, W, args, outs):
    """Copy ``args`` and ``outs`` to the device, launch, copy the outputs back in place."""
    dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
    dout = [cuda.to_device(o) for o in outs]
    kernel[_grid(H, W), BLOCK](*dev, *dout)
    for o, d in zip(outs, dout):
        o[...] = d.copy_to_host()


def warp_bilinear(img, flow, out, valid):
    """As ``_temporal_cpu.warp_bilinear``."""
    _run(_kernels()[0], img.shape[0], img.shape[1], (img, flow), (out, valid))


def fb_consistent(fwd, bwd, tol_abs, tol_rel, out):
    """As ``_temporal_cpu.fb_consistent``."""
    _run(_kernels()[1], fwd.shape[0], fwd.shape[1], (fwd, bwd, np.float32(tol_abs), np.float32(tol_rel)), (out,))


def aggregate(center, warped, dist, valid, noise2, h2, out, resvar):
    """As ``_temporal_cpu.aggregate``."""
    H, W = center.shape[:2]
    if warped.shape[0] == 0:  # no neighbour: a zero-sized array cannot go to the device
        out[...] = center
        resvar[...] = 1.0
        return
    _run(_kernels()[2], H, W, (center, warped, dist, valid, np.float32(noise2), np.float32(h2)), (out, resvar))


def kalman_blend(current, predicted, pred_var, dist, valid, noise2, h2, min_var, out, out_var):
    """As ``_temporal_cpu.kalman_blend``."""
    H, W = current.shape[:2]
    _run(_kernels()[3], H, W, (current, predicted, pred_var, dist, valid, np.float32(noise2), np.float32(h2),
                               np.float32(min_var)), (out, out_var))
