"""Numba CPU kernel of one BM3D stage (private: use :func:`edgerestore.kernels.bm3d`).

One call runs one stage over a ``C x H x W`` float32 image (``C`` = 1 for gray, 3 for
opponent colour) and returns the aggregation buffers; the wrapper divides them.

Per reference block (a grid with ``step``, last row/column always included), in
parallel over reference rows (``prange``), each thread accumulating into its own
numerator/denominator slice (indexed by ``numba.get_thread_id()``, so no races):

1. block matching on channel 0 of ``pilot`` (the noisy image in stage 1, the basic
   estimate in stage 2): sum of squared differences over the block, full search in a
   ``(2 ns + 1)^2`` window clipped to the image, keep the ``nmax`` best with
   ``d <= tau`` ordered by ``(d, scan order)``; the reference block is always first;
   the group size is rounded down to a power of two (for the Haar transform);
2. 2D block transform ``T B T'`` of each block in each channel, 1D orthonormal Haar
   across the group;
3. stage 1: hard thresholding ``|c| <= thr[i, j]`` -> 0, weight ``1 / sum(var of
   kept coefficients)``; stage 2: empirical Wiener ``W = P^2 / (P^2 + thr[i, j])`` with
   ``P`` the pilot's coefficient, weight ``1 / sum(W^2 var)``;
4. inverse transforms, Kaiser-windowed weighted accumulation.

Matching uses an early exit per block row once the partial distance exceeds the
current acceptance bound; it never changes which blocks are selected.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath=True, boundscheck=False)
def _match(p, yr, xr, bs, ns, nmax, tau, bd, by, bx):
    """Fill ``bd/by/bx`` with the best matches of the block at (yr, xr); return count."""
    h = p.shape[0]
    w = p.shape[1]
    bd[0] = 0.0
    by[0] = yr
    bx[0] = xr
    cnt = 1
    y0 = max(0, yr - ns)
    y1 = min(h - bs, yr + ns)
    x0 = max(0, xr - ns)
    x1 = min(w - bs, xr + ns)
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            if y == yr and x == xr:
                continue
            full = cnt == nmax
            bound = bd[cnt - 1] if full else tau
            d = np.float32(0.0)
            rejected = False
            for i in range(bs):
                for j in range(bs):
                    t = p[yr + i, xr + j] - p[y + i, x + j]
                    d += t * t
                if full:
                    if d >= bound:
                        rejected = True
                        break
                elif d > bound:
                    rejected = True
                    break
            if rejected:
                continue
            pos = nmax - 1 if full else cnt
            while pos > 0 and bd[pos - 1] > d:
                bd[pos] = bd[pos - 1]
                by[pos] = by[pos - 1]
                bx[pos] = bx[pos - 1]
                pos -= 1
            bd[pos] = d
            by[pos] = y
            bx[pos] = x
            if not full:
                cnt += 1
    return cnt


@njit(cache=True, fastmath=True, boundscheck=False)
def _fwd2d(img, c, y, x, tf, out, k, tmp):
    """out[c, k] = tf @ img[c, y:y+bs, x:x+bs] @ tf.T"""
    bs = tf.shape[0]
    for i in range(bs):
        for j in range(bs):
            s = np.float32(0.0)
            for m in range(bs):
                s += tf[i, m] * img[c, y + m, x + j]
            tmp[i, j] = s
    for i in range(bs):
        for j in range(bs):
            s = np.float32(0.0)
            for m in range(bs):
                s += tmp[i, m] * tf[j, m]
            out[c, k, i, j] = s


@njit(cache=True, fastmath=True, boundscheck=False)
def _haar(g, c, n, scratch, inverse):
    """In-place orthonormal Haar transform of g[c, :n] along the group axis."""
    r = np.float32(0.7071067811865476)
    bs = g.shape[2]
    if not inverse:
        length = n
        while length > 1:
            half = length // 2
            for m in range(half):
                for i in range(bs):
                    for j in range(bs):
                        a = g[c, 2 * m, i, j]
                        b = g[c, 2 * m + 1, i, j]
                        scratch[m, i, j] = (a + b) * r
                        scratch[half + m, i, j] = (a - b) * r
            for m in range(length):
                for i in range(bs):
                    for j in range(bs):
                        g[c, m, i, j] = scratch[m, i, j]
            length = half
    else:
        length = 2
        while length <= n:
            half = length // 2
            for m in range(half):
                for i in range(bs):
                    for j in range(bs):
                        a = g[c, m, i, j]
                        d = g[c, half + m, i, j]
                        scratch[2 * m, i, j] = (a + d) * r
                        scratch[2 * m + 1, i, j] = (a - d) * r
            for m in range(length):
                for i in range(bs):
                    for j in range(bs):
                        g[c, m, i, j] = scratch[m, i, j]
            length *= 2


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def bm3d_stage(z, pilot, wiener, ry, rx, bs, ns, nmax, tau, tf, ti, thr, var2d, win, nchunks):
    """Run one stage; return ``(num, den)`` of shape ``(nchunks, C, H, W)`` (float32).

    Reference rows are split into ``nchunks`` contiguous chunks (one per thread), each
    accumulating into its own slice of ``num``/``den``.

    ``z``, ``pilot``: ``C x H x W`` float32 (noisy image; matching/Wiener pilot).
    ``thr``: stage 1 threshold per 2D coefficient; stage 2 ``mu2 * var2d``.
    ``var2d``: noise variance per 2D coefficient. ``win``: aggregation window.
    """
    nc, h, w = z.shape
    num = np.zeros((nchunks, nc, h, w), dtype=np.float32)
    den = np.zeros((nchunks, nc, h, w), dtype=np.float32)
    p0 = pilot[0]
    nry = ry.shape[0]
    for tid in prange(nchunks):
        bd = np.empty(nmax, dtype=np.float32)
        by = np.empty(nmax, dtype=np.int64)
        bx = np.empty(nmax, dtype=np.int64)
        g = np.empty((nc, nmax, bs, bs), dtype=np.float32)
        gp = np.empty((nc, nmax, bs, bs), dtype=np.float32)
        scratch = np.empty((nmax, bs, bs), dtype=np.float32)
        tmp = np.empty((bs, bs), dtype=np.float32)
        blk = np.empty((bs, bs), dtype=np.float32)
        wts = np.empty(nc, dtype=np.float32)
        for iy in range(tid * nry // nchunks, (tid + 1) * nry // nchunks):
            yr = ry[iy]
            for ix in range(rx.shape[0]):
                xr = rx[ix]
                cnt = _match(p0, yr, xr, bs, ns, nmax, tau, bd, by, bx)
                n = 1
                while n * 2 <= cnt:
                    n *= 2
                for c in range(nc):
                    for k in range(n):
                        _fwd2d(z, c, by[k], bx[k], tf, g, k, tmp)
                    _haar(g, c, n, scratch, False)
                    if wiener:
                        for k in range(n):
                            _fwd2d(pilot, c, by[k], bx[k], tf, gp, k, tmp)
                        _haar(gp, c, n, scratch, False)
                        acc = np.float32(0.0)
                        for k in range(n):
                            for i in range(bs):
                                for j in range(bs):
                                    p2 = gp[c, k, i, j] * gp[c, k, i, j]
                                    wf = p2 / (p2 + thr[i, j])
                                    g[c, k, i, j] *= wf
                                    acc += wf * wf * var2d[i, j]
                    else:
                        acc = np.float32(0.0)
                        for k in range(n):
                            for i in range(bs):
                                for j in range(bs):
                                    v = g[c, k, i, j]
                                    if abs(v) <= thr[i, j]:
                                        g[c, k, i, j] = 0.0
                                    else:
                                        acc += var2d[i, j]
                    wts[c] = np.float32(1.0) / acc if acc > 0 else np.float32(1.0)
                    _haar(g, c, n, scratch, True)
                    wc = wts[c]
                    for k in range(n):
                        y = by[k]
                        x = bx[k]
                        for i in range(bs):
                            for j in range(bs):
                                s = np.float32(0.0)
                                for m in range(bs):
                                    s += ti[i, m] * g[c, k, m, j]
                                tmp[i, j] = s
                        for i in range(bs):
                            for j in range(bs):
                                s = np.float32(0.0)
                                for m in range(bs):
                                    s += tmp[i, m] * ti[j, m]
                                blk[i, j] = s
                        for i in range(bs):
                            for j in range(bs):
                                ww = wc * win[i, j]
                                num[tid, c, y + i, x + j] += ww * blk[i, j]
                                den[tid, c, y + i, x + j] += ww
    return num, den
