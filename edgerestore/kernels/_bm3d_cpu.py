"""Numba CPU kernel of one BM3D stage (private: use :func:`edgerestore.kernels.bm3d`).

One call runs one stage over a ``C x H x W`` float32 image (``C`` = 1 for gray, 3 for
opponent colour) and returns the aggregation buffers; the wrapper divides them.

Per reference block (a grid with ``step``, last row/column always included), in
parallel over chunks of reference rows (``prange``, one chunk per thread), each chunk
accumulating into its own numerator/denominator slice (no races, deterministic):

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

Matching computes the distances of a whole candidate row at once (SIMD along x).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath=True, boundscheck=False)
def _match(p, yr, xr, bs, ns, nmax, tau, bd, by, bx, drow):
    """Fill ``bd/by/bx`` with the best matches of the block at (yr, xr); return count.

    For each candidate row the distances to all candidates of that row are computed at
    once (the inner loop runs along x and vectorises); selection then keeps the best
    ``nmax`` with ``d <= tau`` in ``(d, scan order)`` order, the reference first.
    """
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
    nx = x1 - x0 + 1
    for y in range(y0, y1 + 1):
        for q in range(nx):
            drow[q] = 0.0
        for i in range(bs):
            for j in range(bs):
                rv = p[yr + i, xr + j]
                for q in range(nx):
                    t = rv - p[y + i, x0 + q + j]
                    drow[q] += t * t
        for q in range(nx):
            x = x0 + q
            if y == yr and x == xr:
                continue
            d = drow[q]
            full = cnt == nmax
            if full:
                if d >= bd[cnt - 1]:
                    continue
            elif d > tau:
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
def _band_transform(img, c, ylo, nyb, tf, tft, out, vt):
    """out[c, yy, x] = tf @ img[c, ylo+yy : +bs, x : x+bs] @ tf.T for yy < nyb, all x.

    Separable: the vertical pass is shared by the ``bs`` blocks that contain a column.
    """
    bs = tf.shape[0]
    w = img.shape[2]
    nxb = w - bs + 1
    for yy in range(nyb):
        y = ylo + yy
        for m in range(bs):
            for x in range(w):
                vt[m, x] = 0.0
            for i in range(bs):
                a = tf[m, i]
                for x in range(w):
                    vt[m, x] += a * img[c, y + i, x]
        for x in range(nxb):
            for m in range(bs):
                for n in range(bs):
                    out[c, yy, x, m, n] = 0.0
                for j in range(bs):
                    v = vt[m, x + j]
                    for n in range(bs):
                        out[c, yy, x, m, n] += v * tft[j, n]


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


@njit(parallel=True, nogil=True, cache=True, fastmath=True, boundscheck=False)
def match_only(p, ry, rx, bs, ns, nmax, tau):
    """Block matching alone for every reference block (for timing); returns group sizes."""
    counts = np.zeros((ry.shape[0], rx.shape[0]), dtype=np.int64)
    for iy in prange(ry.shape[0]):
        bd = np.empty(nmax, dtype=np.float32)
        by = np.empty(nmax, dtype=np.int64)
        bx = np.empty(nmax, dtype=np.int64)
        drow = np.empty(2 * ns + 1, dtype=np.float32)
        for ix in range(rx.shape[0]):
            counts[iy, ix] = _match(p, ry[iy], rx[ix], bs, ns, nmax, tau, bd, by, bx, drow)
    return counts


@njit(parallel=True, nogil=True, cache=True, fastmath=True, boundscheck=False)
def bm3d_stage(z, pilot, wiener, ry, rx, bs, ns, nmax, tau, tf, ti, thr, var2d, win, nchunks,
               aggregate=True, band=16):
    """Run one stage; return ``(num, den)`` of shape ``(nchunks, C, H, W)`` (float32).

    ``z``, ``pilot``: ``C x H x W`` float32 (noisy image; matching/Wiener pilot).
    ``thr``: stage 1 threshold per 2D coefficient; stage 2 ``mu2 * var2d``.
    ``var2d``: noise variance per 2D coefficient. ``win``: aggregation window.

    Reference rows are split into ``nchunks`` contiguous chunks (one per thread), each
    accumulating into its own slice of ``num``/``den``. A chunk runs in bands of
    ``band`` reference rows: the 2D transforms of every block a band can reach are
    computed once into a buffer (``C x rows x (W - bs + 1) x bs x bs`` floats), so a
    block that is in many groups is transformed once per band, not once per group.
    ``aggregate=False`` (timing only) stops after the 3D shrinkage.
    """
    nc, h, w = z.shape
    nxb = w - bs + 1
    num = np.zeros((nchunks, nc, h, w), dtype=np.float32)
    den = np.zeros((nchunks, nc, h, w), dtype=np.float32)
    p0 = pilot[0]
    nry = ry.shape[0]
    tft = np.ascontiguousarray(tf.T)
    tit = np.ascontiguousarray(ti.T)
    maxrows = 0
    for iy in range(0, nry, band):
        ib = min(iy + band, nry) - 1
        rows = min(h - bs, ry[ib] + ns) - max(0, ry[iy] - ns) + 1
        maxrows = max(maxrows, rows)
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
        drow = np.empty(2 * ns + 1, dtype=np.float32)
        vt = np.empty((bs, w), dtype=np.float32)
        tz = np.empty((nc, maxrows, nxb, bs, bs), dtype=np.float32)
        tp = np.empty((nc, maxrows if wiener else 1, nxb, bs, bs), dtype=np.float32)
        r0 = tid * nry // nchunks
        r1 = (tid + 1) * nry // nchunks
        for iy0 in range(r0, r1, band):
            iy1 = min(iy0 + band, r1)
            ylo = max(0, ry[iy0] - ns)
            nyb = min(h - bs, ry[iy1 - 1] + ns) - ylo + 1
            for c in range(nc):
                _band_transform(z, c, ylo, nyb, tf, tft, tz, vt)
                if wiener:
                    _band_transform(pilot, c, ylo, nyb, tf, tft, tp, vt)
            for iy in range(iy0, iy1):
                yr = ry[iy]
                for ix in range(rx.shape[0]):
                    xr = rx[ix]
                    cnt = _match(p0, yr, xr, bs, ns, nmax, tau, bd, by, bx, drow)
                    n = 1
                    while n * 2 <= cnt:
                        n *= 2
                    for c in range(nc):
                        for k in range(n):
                            yk = by[k] - ylo
                            xk = bx[k]
                            for i in range(bs):
                                for j in range(bs):
                                    g[c, k, i, j] = tz[c, yk, xk, i, j]
                        _haar(g, c, n, scratch, False)
                        acc = np.float32(0.0)
                        if wiener:
                            for k in range(n):
                                yk = by[k] - ylo
                                xk = bx[k]
                                for i in range(bs):
                                    for j in range(bs):
                                        gp[c, k, i, j] = tp[c, yk, xk, i, j]
                            _haar(gp, c, n, scratch, False)
                            for k in range(n):
                                for i in range(bs):
                                    for j in range(bs):
                                        p2 = gp[c, k, i, j] * gp[c, k, i, j]
                                        wf = p2 / (p2 + thr[i, j])
                                        g[c, k, i, j] *= wf
                                        acc += wf * wf * var2d[i, j]
                        else:
                            for k in range(n):
                                for i in range(bs):
                                    for j in range(bs):
                                        if abs(g[c, k, i, j]) <= thr[i, j]:
                                            g[c, k, i, j] = 0.0
                                        else:
                                            acc += var2d[i, j]
                        wts[c] = np.float32(1.0) / acc if acc > 0 else np.float32(1.0)
                        if not aggregate:  # timing mode: stop after the 3D filtering
                            num[tid, c, yr, xr] += g[c, 0, 0, 0] * wts[c]
                            continue
                        _haar(g, c, n, scratch, True)
                        wc = wts[c]
                        for k in range(n):
                            y = by[k]
                            x = bx[k]
                            for i in range(bs):
                                for j in range(bs):
                                    tmp[i, j] = 0.0
                                for m in range(bs):
                                    a = ti[i, m]
                                    for j in range(bs):
                                        tmp[i, j] += a * g[c, k, m, j]
                            for i in range(bs):
                                for j in range(bs):
                                    blk[i, j] = 0.0
                                for m in range(bs):
                                    a = tmp[i, m]
                                    for j in range(bs):
                                        blk[i, j] += a * tit[m, j]
                            for i in range(bs):
                                for j in range(bs):
                                    ww = wc * win[i, j]
                                    num[tid, c, y + i, x + j] += ww * blk[i, j]
                                    den[tid, c, y + i, x + j] += ww
    return num, den
