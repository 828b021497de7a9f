"""numba.cuda kernels of one BM3D stage (private: use ``bm3d(..., device="cuda")``).

One thread block per reference block, ``bs * bs`` threads (one per pixel/coefficient of
a block), everything of a group in shared memory:

1. matching: the threads share the candidates of the search window (distance on
   channel 0 of the pilot, ``d > tau`` -> +inf, the reference -> -1), then a bitonic
   sort by ``(d, scan order)`` in shared memory; the first ``nmax`` finite entries,
   rounded down to a power of two, form the group - the same selection as the CPU
   kernel and the reference;
2. per channel: gather, separable 2D transform (two passes through shared memory),
   then each thread runs the 1D Haar transform and the shrinkage of its coefficient
   across the group in local memory; the weight is a block-wide sum;
3. inverse transforms and Kaiser-weighted accumulation with ``cuda.atomic.add`` into
   global numerator/denominator arrays (so the summation order, hence the last bits,
   may vary from run to run).

Limits: blocks up to 8x8, groups up to 32, search windows up to 45x45 (the default
profile uses 8, 16/32, 39). Works under ``NUMBA_ENABLE_CUDASIM=1`` (slowly: tiny
inputs only).
"""

from __future__ import annotations


import functools

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import BackendError, InputError

MAX_BS = 8
MAX_T = MAX_BS * MAX_BS
MAX_K = 32
MAX_SORT = 2048

# numba.cuda is imported on first use (`_load`), not with this module (importing
# edgerestore must stay light). The kernels must see `cuda`, `float32` and the device
# functions as module globals: the CUDA simulator swaps `cuda` there for its fake module.
cuda = None
float32 = None
int32 = None
haar_fwd = haar_inv = transform2d = None
inf = np.float32(np.inf)


def _haar_fwd(v, n, s):
    r = float32(0.7071067811865476)
    length = n
    while length > 1:
        half = length // 2
        for m in range(half):
            a = v[2 * m]
            b = v[2 * m + 1]
            s[m] = (a + b) * r
            s[half + m] = (a - b) * r
        for m in range(length):
            v[m] = s[m]
        length = half

def _haar_inv(v, n, s):
    r = float32(0.7071067811865476)
    length = 2
    while length <= n:
        half = length // 2
        for m in range(half):
            a = v[m]
            d = v[half + m]
            s[2 * m] = (a + d) * r
            s[2 * m + 1] = (a - d) * r
        for m in range(length):
            v[m] = s[m]
        length *= 2

def _transform2d(src, dst, tmp, n, mat, bs, ti_, tj, t):
    """dst[k] = mat @ src[k] @ mat.T for k < n (blocks flattened row-major)."""
    for k in range(n):
        s = float32(0.0)
        for m in range(bs):
            s += mat[ti_, m] * src[k, m * bs + tj]
        tmp[k, t] = s
    cuda.syncthreads()
    for k in range(n):
        s = float32(0.0)
        for m in range(bs):
            s += tmp[k, ti_ * bs + m] * mat[tj, m]
        dst[k, t] = s
    cuda.syncthreads()

def _stage_kernel(z, pilot, wiener, ry, rx, bs, ns, nmax, tau, tf, ti, thr, var2d, win,
                 num, den):
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    yr = ry[cuda.blockIdx.y]
    xr = rx[cuda.blockIdx.x]
    nc = z.shape[0]
    h = z.shape[1]
    w = z.shape[2]
    sd = cuda.shared.array(MAX_SORT, float32)
    si = cuda.shared.array(MAX_SORT, int32)
    g = cuda.shared.array((MAX_K, MAX_T), float32)
    gp = cuda.shared.array((MAX_K, MAX_T), float32)
    tb = cuda.shared.array((MAX_K, MAX_T), float32)
    red = cuda.shared.array(MAX_T, float32)
    loc = cuda.local.array(MAX_K, float32)
    lp = cuda.local.array(MAX_K, float32)
    scr = cuda.local.array(MAX_K, float32)

    # 1. matching
    y0 = max(0, yr - ns)
    y1 = min(h - bs, yr + ns)
    x0 = max(0, xr - ns)
    x1 = min(w - bs, xr + ns)
    nx = x1 - x0 + 1
    ncand = (y1 - y0 + 1) * nx
    npow = 1
    while npow < ncand:
        npow *= 2
    q = t
    while q < npow:
        d = inf
        if q < ncand:
            y = y0 + q // nx
            x = x0 + q % nx
            if y == yr and x == xr:
                d = float32(-1.0)
            else:
                d = float32(0.0)
                for i in range(bs):
                    for j in range(bs):
                        v = pilot[0, yr + i, xr + j] - pilot[0, y + i, x + j]
                        d += v * v
                if d > tau:
                    d = inf
        sd[q] = d
        si[q] = q
        q += nt
    cuda.syncthreads()
    k2 = 2
    while k2 <= npow:
        j2 = k2 // 2
        while j2 > 0:
            q = t
            while q < npow:
                lq = q ^ j2
                if lq > q:
                    ad = sd[q]
                    bd = sd[lq]
                    ai = si[q]
                    bi = si[lq]
                    gt = (ad > bd) or (ad == bd and ai > bi)
                    if (q & k2) == 0:
                        swap = gt
                    else:
                        swap = not gt
                    if swap:
                        sd[q] = bd
                        sd[lq] = ad
                        si[q] = bi
                        si[lq] = ai
                q += nt
            cuda.syncthreads()
            j2 //= 2
        k2 *= 2
    cnt = 0
    for q in range(min(nmax, npow)):
        if sd[q] != inf:
            cnt += 1
    n = 1
    while n * 2 <= cnt:
        n *= 2

    # 2.-3. per channel: transform, shrink, inverse, aggregate
    ti_ = t // bs
    tj = t % bs
    for c in range(nc):
        for k in range(n):
            q = si[k]
            y = y0 + q // nx
            x = x0 + q % nx
            g[k, t] = z[c, y + ti_, x + tj]
            if wiener:
                gp[k, t] = pilot[c, y + ti_, x + tj]
        cuda.syncthreads()
        transform2d(g, g, tb, n, tf, bs, ti_, tj, t)
        if wiener:
            transform2d(gp, gp, tb, n, tf, bs, ti_, tj, t)
        for k in range(n):
            loc[k] = g[k, t]
        haar_fwd(loc, n, scr)
        acc = float32(0.0)
        th = thr[ti_, tj]
        var = var2d[ti_, tj]
        if wiener:
            for k in range(n):
                lp[k] = gp[k, t]
            haar_fwd(lp, n, scr)
            for k in range(n):
                p2 = lp[k] * lp[k]
                wf = p2 / (p2 + th)
                loc[k] *= wf
                acc += wf * wf * var
        else:
            for k in range(n):
                if abs(loc[k]) <= th:
                    loc[k] = float32(0.0)
                else:
                    acc += var
        haar_inv(loc, n, scr)
        red[t] = acc
        for k in range(n):
            g[k, t] = loc[k]
        cuda.syncthreads()
        tot = float32(0.0)
        for m in range(nt):
            tot += red[m]
        weight = float32(1.0) / tot if tot > 0 else float32(1.0)
        transform2d(g, g, tb, n, ti, bs, ti_, tj, t)
        ww = weight * win[ti_, tj]
        for k in range(n):
            q = si[k]
            y = y0 + q // nx + ti_
            x = x0 + q % nx + tj
            cuda.atomic.add(num, (c, y, x), ww * g[k, t])
            cuda.atomic.add(den, (c, y, x), ww)
        cuda.syncthreads()



@functools.lru_cache(maxsize=None)
def _load():
    """Import numba.cuda and compile the device functions; return the stage kernel."""
    global cuda, float32, int32, haar_fwd, haar_inv, transform2d
    cuda = require("numba.cuda", purpose="bm3d(device='cuda')")
    from numba import float32 as f32
    from numba import int32 as i32

    float32, int32 = f32, i32
    haar_fwd = cuda.jit(device=True)(_haar_fwd)
    haar_inv = cuda.jit(device=True)(_haar_inv)
    transform2d = cuda.jit(device=True)(_transform2d)
    return cuda.jit(_stage_kernel)


def bm3d_stage_cuda(z: np.ndarray, pilot: np.ndarray, p) -> np.ndarray:
    """Run one stage on the GPU; ``z``, ``pilot``: ``C x H x W`` float32. Returns the estimate."""
    if p.bs > MAX_BS or p.nmax > MAX_K or (2 * p.ns + 1) ** 2 > MAX_SORT:
        raise InputError(
            f"the CUDA BM3D kernel supports blocks up to {MAX_BS}, groups up to {MAX_K} and "
            f"search windows up to 45; got block {p.bs}, group {p.nmax}, window {2 * p.ns + 1}: "
            "use device='cpu' or a smaller profile"
        )
    kernel = _load()
    try:
        available = cuda.is_available()
    except Exception as exc:  # pragma: no cover - depends on the driver
        raise BackendError(f"BM3D device='cuda' cannot use numba.cuda: {exc}; use device='cpu'") from exc
    if not available:
        raise BackendError(
            "BM3D device='cuda' needs an NVIDIA GPU and driver visible to numba.cuda (none "
            "found); use device='cpu', or NUMBA_ENABLE_CUDASIM=1 to simulate (slow)"
        )
    from edgerestore.kernels.bm3d_filter import reference_positions

    nc, h, w = z.shape
    ry = reference_positions(h, p.bs, p.step).astype(np.int32)
    rx = reference_positions(w, p.bs, p.step).astype(np.int32)
    f32 = np.float32
    d_z = cuda.to_device(np.ascontiguousarray(z, dtype=f32))
    d_p = d_z if pilot is z else cuda.to_device(np.ascontiguousarray(pilot, dtype=f32))
    num = cuda.to_device(np.zeros((nc, h, w), dtype=f32))
    den = cuda.to_device(np.zeros((nc, h, w), dtype=f32))
    mats = [cuda.to_device(np.ascontiguousarray(m, dtype=f32)) for m in (p.tf, p.ti, p.thr, p.var2d, p.win)]
    kernel[(rx.size, ry.size), p.bs * p.bs](
        d_z, d_p, p.wiener, cuda.to_device(ry), cuda.to_device(rx), p.bs, p.ns, p.nmax,
        f32(p.tau), *mats, num, den,
    )
    return (num.copy_to_host() / den.copy_to_host()).astype(f32)


__all__ = ["bm3d_stage_cuda"]
