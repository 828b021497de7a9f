"""Non-local means on the CPU: Numba, ``parallel=True``, running sums per offset.

Private: users call :func:`edgerestore.kernels.nlm`, which checks and pads the input.

Pixelwise NLM (:func:`nlm_planes`; the variant OpenCV's ``fastNlMeansDenoising`` and
scikit-image's fast mode implement). For every search offset ``o = (dy, dx)``:

* ``D_o(p) = sum_c (I_c(p) - I_c(p + o))**2`` is the per-pixel squared difference;
* the patch distance ``S_o(p)`` is ``D_o`` summed over the ``(2f+1)**2`` patch around
  ``p``: a column sum per x, updated by adding the row that enters and subtracting the
  row that leaves as y advances (the last 2f+1 rows of ``D_o`` are kept in a ring, so
  each is computed once): O(1) per pixel per offset; then a box sum of 2f+1 columns
  along the row, as a (2f+1)-tap sum in one vectorised pass (:func:`_box_row`; the
  O(1) running sum along the row is a serial chain of adds, 2-4x slower for the patch
  widths used here);
* ``t_c = max(S_o / (n C) - 2 sigma**2, 0) / h_c**2`` and ``w_c = exp(-t_c)`` (0 when
  ``t_c >= T_CUT``); ``num_c += w_c I_c(p + o)``, ``den_c += w_c``.

``two_sig2`` (``2 sigma**2``) and ``h_scale`` (a factor on ``1 / h_c**2``) are either
scalars (one noise level for the image) or ``H x W`` float32 maps (a noise level per
pixel: the weight ``w(p, q)`` takes the values at the reference pixel ``p``). Numba
compiles one version per kind (:func:`map_row`, :func:`map_at`), so the scalar version
has no extra load.

The output is ``num_c / den_c``. Patchwise NLM (:func:`nlm_patch_planes`): see the
section below. Rows are cut into blocks that threads process independently
(``prange``); inside a block the buffers stay in the L1/L2 cache. ``exp`` is a
polynomial (vectorises without SVML; relative error < 3.1e-6 on ``[0, T_CUT]``).
Everything runs in float32.

Why one module: the pixelwise and the patchwise kernels are built from the same
compiled helpers (the running patch sums ``_ssd_start``/``_ssd_step``, the box sums,
the weights, ``exp_neg``), which Numba inlines into each kernel; one file keeps the two
hot loops and what they share side by side, so that a change to a helper is seen in
both.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# Weights exp(-t) with t >= T_CUT (exp(-10) = 4.5e-5) are set to 0. Part of the
# algorithm's definition: the reference implementation in the tests does the same.
T_CUT = 10.0

_F32 = np.float32
_T_CUT32 = _F32(T_CUT)
# exp(v) for v = -t/16 in [-0.625, 0]: Chebyshev interpolant of degree 6, in powers of v
# (relative error of exp_neg on [0, T_CUT] < 3.1e-6 in float32, float32 rounding included;
# a degree-8 Taylor series gave 4.0e-6 with two more multiply-adds).
_C6, _C5, _C4 = _F32(0.0010192380020452821), _F32(0.008032718192775259), _F32(0.04154193061799896)
_C3, _C2, _C1 = _F32(0.1666397795798295), _F32(0.49999722259401586), _F32(0.9999998919624785)
_C0 = _F32(0.9999999993115496)
_SIXTEENTH = _F32(-1.0 / 16.0)
_ZERO = _F32(0.0)
_ONE = _F32(1.0)


@njit(cache=True, fastmath=True)
def exp_neg(t):
    """``exp(-t)`` for float32 ``0 <= t <= T_CUT``: ``exp(-t/16)**16``, a degree-6 polynomial."""
    v = t * _SIXTEENTH
    p = _C6 * v + _C5
    p = p * v + _C4
    p = p * v + _C3
    p = p * v + _C2
    p = p * v + _C1
    p = p * v + _C0
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


def map_row(a, y, x0, x1):
    """Row ``y``, columns ``x0:x1`` of a per-pixel map, or the scalar itself (compiled
    code only: the versions are chosen by type in :func:`_map_row_impl`)."""
    raise NotImplementedError("map_row runs inside Numba-compiled code only")


@overload(map_row, jit_options={"fastmath": True})
def _map_row_impl(a, y, x0, x1):
    if isinstance(a, types.Array):
        return lambda a, y, x0, x1: a[y, x0:x1]
    return lambda a, y, x0, x1: a


def map_at(a, j):
    """Element ``j`` of a map row from :func:`map_row`, or the scalar itself (compiled code only)."""
    raise NotImplementedError("map_at runs inside Numba-compiled code only")


@overload(map_at, jit_options={"fastmath": True})
def _map_at_impl(a, j):
    if isinstance(a, types.Array):
        return lambda a, j: a[j]
    return lambda a, j: a


def is_map(a):
    """True for a per-pixel map, False for a scalar, known at compile time (compiled code only)."""
    raise NotImplementedError("is_map runs inside Numba-compiled code only")


@overload(is_map)
def _is_map_impl(a):
    answer = isinstance(a, types.Array)
    return lambda a: answer


@njit(parallel=True, nogil=True, fastmath=True, cache=True)
def nlm_planes(P, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block):
    """NLM of a padded, channel-planar float32 image.

    ``P``: ``C x (H + 2(r+f)) x (W + 2(r+f))`` float32, the image padded by ``r + f``
    on every side. ``f``: patch half-size, ``r``: search half-size. ``inv_nc``:
    ``1 / ((2f+1)**2 C)``. ``two_sig2``: ``2 sigma**2`` and ``inv_h2[c] * h_scale``:
    ``1 / h_c**2``, on the [0, 1] scale; ``two_sig2`` and ``h_scale`` are float32 scalars
    or ``H x W`` float32 maps (values at the reference pixel). ``block``: rows per
    parallel task. Returns ``C x H x W``.
    """
    C = P.shape[0]
    out = np.empty((C, H, W), np.float32)
    nb = (H + block - 1) // block
    wc = W + 2 * f
    n = 2 * f + 1
    for b in prange(nb):
        y0 = b * block
        y1 = min(H, y0 + block)
        bh = y1 - y0
        num = np.zeros((C, bh, W), np.float32)
        den = np.zeros((C, bh, W), np.float32)
        col = np.empty(wc, np.float32)
        ring = np.empty((n, wc), np.float32)
        tmp = np.empty(wc, np.float32)
        ps = np.empty(W, np.float32)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                _ssd_start(P, col, ring, C, y0, r, f, dy, dx, wc)
                for y in range(y0, y1):
                    if y > y0:
                        _ssd_step(P, col, ring, C, y, r, f, dy, dx, wc)
                    _box_row(col, ps, n, tmp)  # patch sums S_o along the row
                    yy = y - y0
                    py = y + r + f + dy
                    s2 = map_row(two_sig2, y, 0, W)
                    hs = map_row(h_scale, y, 0, W)
                    for c in range(C):
                        ih = inv_h2[c]
                        src = P[c, py, r + f + dx:r + f + dx + W]
                        nrow = num[c, yy]
                        drow = den[c, yy]
                        for x in range(W):
                            t = max(ps[x] * inv_nc - map_at(s2, x), _ZERO) * (ih * map_at(hs, x))
                            w = exp_neg(min(t, _T_CUT32))
                            if t >= _T_CUT32:
                                w = _ZERO
                            drow[x] += w
                            nrow[x] += w * src[x]
        for c in range(C):
            for yy in range(bh):
                for x in range(W):
                    out[c, y0 + yy, x] = num[c, yy, x] / den[c, yy, x]
    return out


# --- patchwise aggregation ---------------------------------------------------------------
#
# Patchwise ("block-wise") NLM, Buades, Coll & Morel, IPOL 2011: every pixel p of the
# image gets a patch estimate
#
#     E_p(p + k) = sum_q w(p, q) I(q + k) / C(p),   C(p) = sum_q w(p, q),   |k| <= f,
#
# over the q of its search window *inside the image* (IPOL clips the window to the
# image too), and the output at x is the plain mean of the (2f+1)**2 estimates E_p(x)
# of the patches that contain x (p inside the image). Per offset o, with
# W_o(p) = w(p, p + o):
#
#     out(x) = sum_o I(x + o) * box(W_o / C)(x) / N(x)
#
# where box sums the (2f+1)**2 centres p around x and N(x) counts those inside the
# image. The distance is symmetric, W_{-o}(p + o) = W_o(p), so each pair (o, -o) costs
# one distance and one exp: pass 1 adds W_o(p) to C(p) and to C(p + o); pass 2 scatters
# box(W_o / C) (weights of the pairs (p, p+o)) and box(W_o / C(. + o)) (the pairs
# (p+o, p)). Both passes write rows outside their block (pass 1 up to r below, pass 2
# f above and up to r + f below), so each row block accumulates into its own buffer,
# and a last parallel loop adds the buffers up. The patch distances use the same
# running sums as the pixelwise kernel; box(.) is a box sum along the row per centre
# row, then a running sum down the rows.


@njit(fastmath=True, cache=True)
def _sum_buffers(bufs, H, base, block):
    """Add per-block row buffers (block b covers rows b*block + base + [0, R)) into ``C x H x W``.

    Serial on purpose: a few adds per pixel, and on a shared machine one more parallel
    region costs more in waiting for a descheduled thread than it saves.
    """
    nb, C, R, W = bufs.shape
    out = np.zeros((C, H, W), np.float32)
    for b in range(nb):
        for c in range(C):
            for yy in range(R):
                y = base + b * block + yy
                if 0 <= y < H:
                    o = out[c, y]
                    s = bufs[b, c, yy]
                    for x in range(W):
                        o[x] += s[x]
    return out


@njit(fastmath=True, cache=True)
def _ssd_start(P, col, ring, C, y, r, f, dy, dx, wc):
    """Column sums of D_o over the patch rows of centre row ``y``.

    Slot ``(y + k) % (2f+1)`` of ``ring`` keeps the D_o row of padded row ``y + r + k``,
    so that :func:`_ssd_step` subtracts the row leaving the window without recomputing it.
    """
    for j in range(wc):
        col[j] = _ZERO
    n = 2 * f + 1
    for k in range(n):
        py = y + r + k
        d_row = ring[(y + k) % n]
        for j in range(wc):
            d_row[j] = _ZERO
        for c in range(C):
            a = P[c, py, r:r + wc]
            q = P[c, py + dy, r + dx:r + dx + wc]
            for j in range(wc):
                d = a[j] - q[j]
                d_row[j] += d * d
        for j in range(wc):
            col[j] += d_row[j]


@njit(fastmath=True, cache=True)
def _ssd_step(P, col, ring, C, y, r, f, dy, dx, wc):
    """Move the column sums from centre row ``y - 1`` to ``y``."""
    pa = y + r + 2 * f
    d_row = ring[(y + 2 * f) % (2 * f + 1)]  # holds the row that leaves: y - 1 + r
    a = P[0, pa, r:r + wc]
    q = P[0, pa + dy, r + dx:r + dx + wc]
    if C == 1:
        for j in range(wc):
            d = a[j] - q[j]
            dn = d * d
            col[j] += dn - d_row[j]
            d_row[j] = dn
    else:
        for j in range(wc):
            col[j] -= d_row[j]
            d = a[j] - q[j]
            d_row[j] = d * d
        for c in range(1, C):
            a = P[c, pa, r:r + wc]
            q = P[c, pa + dy, r + dx:r + dx + wc]
            for j in range(wc):
                d = a[j] - q[j]
                d_row[j] += d * d
        for j in range(wc):
            col[j] += d_row[j]


@njit(fastmath=True, cache=True)
def _box_row(src, dst, n, tmp):
    """``dst[x] = sum(src[x : x + n])`` for every x of ``dst`` (``n`` odd, <= 15).

    One vectorised pass for n <= 7 (a running sum is bound by the latency of one add
    per pixel, 2-4x slower); for larger n, sums of neighbour pairs first (``tmp``:
    scratch of at least ``len(dst) + n - 2``), then one pass over ``n // 2`` of them.
    """
    m = dst.shape[0]
    if n == 1:
        for x in range(m):
            dst[x] = src[x]
    elif n == 3:
        s0, s1, s2 = src[0:m], src[1:m + 1], src[2:m + 2]
        for x in range(m):
            dst[x] = s0[x] + s1[x] + s2[x]
    elif n == 5:
        s0, s1, s2, s3, s4 = src[0:m], src[1:m + 1], src[2:m + 2], src[3:m + 3], src[4:m + 4]
        for x in range(m):
            dst[x] = (s0[x] + s1[x]) + (s2[x] + s3[x]) + s4[x]
    elif n == 7:
        s0, s1, s2, s3 = src[0:m], src[1:m + 1], src[2:m + 2], src[3:m + 3]
        s4, s5, s6 = src[4:m + 4], src[5:m + 5], src[6:m + 6]
        for x in range(m):
            dst[x] = ((s0[x] + s1[x]) + (s2[x] + s3[x])) + ((s4[x] + s5[x]) + s6[x])
    else:
        ln = m + n - 2
        a = src[0:ln]
        b = src[1:ln + 1]
        for x in range(ln):
            tmp[x] = a[x] + b[x]
        last = src[n - 1:n - 1 + m]
        for x in range(m):
            dst[x] = last[x]
        for k in range(n // 2):
            t = tmp[2 * k:2 * k + m]
            for x in range(m):
                dst[x] += t[x]


@njit(fastmath=True, cache=True)
def _box_rows2(s1, s2, d1, d2, n, tmp):
    """:func:`_box_row` of two rows at once (one loop for n <= 7)."""
    m = d1.shape[0]
    if n == 3:
        for x in range(m):
            d1[x] = s1[x] + s1[x + 1] + s1[x + 2]
            d2[x] = s2[x] + s2[x + 1] + s2[x + 2]
    elif n == 5:
        for x in range(m):
            d1[x] = (s1[x] + s1[x + 1]) + (s1[x + 2] + s1[x + 3]) + s1[x + 4]
            d2[x] = (s2[x] + s2[x + 1]) + (s2[x + 2] + s2[x + 3]) + s2[x + 4]
    elif n == 7:
        for x in range(m):
            d1[x] = ((s1[x] + s1[x + 1]) + (s1[x + 2] + s1[x + 3])) + ((s1[x + 4] + s1[x + 5]) + s1[x + 6])
            d2[x] = ((s2[x] + s2[x + 1]) + (s2[x + 2] + s2[x + 3])) + ((s2[x + 4] + s2[x + 5]) + s2[x + 6])
    else:
        _box_row(s1, d1, n, tmp)
        _box_row(s2, d2, n, tmp)


@njit(fastmath=True, cache=True, inline="always")
def _weight(d, two_sig2, ih):
    """``exp(-max(d - 2 sigma**2, 0) * ih)`` for a patch distance ``d``, 0 past ``T_CUT``."""
    t = max(d - two_sig2, _ZERO) * ih
    w = exp_neg(min(t, _T_CUT32))
    if t >= _T_CUT32:
        w = _ZERO
    return w


@njit(parallel=True, nogil=True, fastmath=True, cache=True)
def patch_inv_weight_sums(P, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block):
    """Pass 1: ``1 / C_c(p)``, ``C_c(p) = sum_q w_c(p, q)`` over the search window
    clipped to the image (``C >= 1``: q = p has weight 1).

    Same arguments as :func:`nlm_planes`. Returns ``C x H x W`` float32. With per-pixel
    maps the pair's two weights differ (``w(p, p + o)`` takes the values at ``p``,
    ``w(p + o, p)`` those at ``p + o``): two ``exp`` per pair instead of one.
    """
    C = P.shape[0]
    nb = (H + block - 1) // block
    R = block + r
    # np.empty, zeroed by each block: np.zeros would be one more parallel region
    bufs = np.empty((nb, C, R, W), np.float32)
    wc = W + 2 * f
    n = 2 * f + 1
    for b in prange(nb):
        y0 = b * block
        y1 = min(H, y0 + block)
        acc = bufs[b]  # row i is image row y0 + i
        acc[:] = _ZERO
        col = np.empty(wc, np.float32)
        ring = np.empty((n, wc), np.float32)
        tmp = np.empty(wc, np.float32)
        ps = np.empty(W, np.float32)
        for c in range(C):
            for yy in range(y1 - y0):
                for x in range(W):
                    acc[c, yy, x] += _ONE  # q = p: distance 0, weight 1
        for dy in range(0, r + 1):
            ye = min(y1, H - dy)
            if ye <= y0:
                continue
            for dx in range(-r, r + 1):
                if dy == 0 and dx <= 0:
                    continue
                xa = max(0, -dx)
                xb = min(W, W - dx)
                if xb <= xa:
                    continue
                m = xb - xa
                _ssd_start(P, col, ring, C, y0, r, f, dy, dx, wc)
                for y in range(y0, ye):
                    if y > y0:
                        _ssd_step(P, col, ring, C, y, r, f, dy, dx, wc)
                    pv = ps[:m]
                    _box_row(col[xa:xb + 2 * f], pv, n, tmp)
                    sp = map_row(two_sig2, y, xa, xb)
                    hp = map_row(h_scale, y, xa, xb)
                    sq = map_row(two_sig2, y + dy, xa + dx, xb + dx)
                    hq = map_row(h_scale, y + dy, xa + dx, xb + dx)
                    for c in range(C):
                        ih = inv_h2[c]
                        rp = acc[c, y - y0, xa:xb]
                        rq = acc[c, y - y0 + dy, xa + dx:xb + dx]
                        for j in range(m):
                            d = pv[j] * inv_nc
                            w = _weight(d, map_at(sp, j), ih * map_at(hp, j))
                            rp[j] += w
                            if is_map(two_sig2):
                                rq[j] += _weight(d, map_at(sq, j), ih * map_at(hq, j))
                            else:
                                rq[j] += w
    csum = _sum_buffers(bufs, H, 0, block)
    for c in range(C):
        for y in range(H):
            for x in range(W):
                csum[c, y, x] = _ONE / csum[c, y, x]
    return csum


@njit(parallel=True, nogil=True, fastmath=True, cache=True)
def patch_aggregate(P, inv_c, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block):
    """Pass 2: ``sum_o I(x + o) box(W_o / C)(x) / N(x)``, the output, ``C x H x W``.

    ``inv_c``: ``1 / C`` from :func:`patch_inv_weight_sums`; other arguments as there.
    """
    C = P.shape[0]
    nb = (H + block - 1) // block
    R = block + 2 * f + r
    # np.empty, zeroed by each block: np.zeros would be one more parallel region
    bufs = np.empty((nb, C, R, W), np.float32)
    wc = W + 2 * f
    pad = r + f
    n = 2 * f + 1
    wa = W + 4 * f
    for b in prange(nb):
        y0 = b * block
        y1 = min(H, y0 + block)
        bh = y1 - y0
        acc = bufs[b]  # row i is image row y0 - f + i
        acc[:] = _ZERO
        col = np.empty(wc, np.float32)
        ring = np.empty((n, wc), np.float32)
        tmp = np.empty(wa, np.float32)
        ps = np.empty(W, np.float32)
        # W_o / C (u1) and W_o / C(. + o) (u2) along one centre row, centre x at index
        # x + 2f; everything outside the current offset's centres stays 0.
        u1 = np.zeros(wa, np.float32)
        u2 = np.zeros(wa, np.float32)
        # The same, summed along the row over the patch width: a[c, y - y0, x + f] is
        # the sum over the centres x - f .. x + f of row y, for x in [-f, W + f) ...
        a1 = np.zeros((C, bh, wc), np.float32)
        a2 = np.zeros((C, bh, wc), np.float32)
        zrow = np.zeros(wc, np.float32)
        v1 = np.zeros(wc, np.float32)  # ... and over the patch height: box(W_o / C)
        v2 = np.zeros(wc, np.float32)
        for dy in range(0, r + 1):
            ye = min(y1, H - dy)
            if ye <= y0:
                continue
            for dx in range(-r, r + 1):
                if dy == 0 and dx < 0:
                    continue
                pair = dy > 0 or dx > 0  # o = 0 has no partner
                xa = max(0, -dx)
                xb = min(W, W - dx)
                if xb <= xa:
                    continue
                m = xb - xa
                _ssd_start(P, col, ring, C, y0, r, f, dy, dx, wc)
                for y in range(y0, ye):
                    if y > y0:
                        _ssd_step(P, col, ring, C, y, r, f, dy, dx, wc)
                    pv = ps[:m]
                    _box_row(col[xa:xb + 2 * f], pv, n, tmp)
                    sp = map_row(two_sig2, y, xa, xb)
                    hp = map_row(h_scale, y, xa, xb)
                    sq = map_row(two_sig2, y + dy, xa + dx, xb + dx)
                    hq = map_row(h_scale, y + dy, xa + dx, xb + dx)
                    for c in range(C):
                        ih = inv_h2[c]
                        o1 = u1[xa + 2 * f:xb + 2 * f]
                        o2 = u2[xa + 2 * f:xb + 2 * f]
                        icp = inv_c[c, y, xa:xb]
                        icq = inv_c[c, y + dy, xa + dx:xb + dx]
                        for j in range(m):
                            d = pv[j] * inv_nc
                            w = _weight(d, map_at(sp, j), ih * map_at(hp, j))
                            o1[j] = w * icp[j]
                            if is_map(two_sig2):
                                o2[j] = _weight(d, map_at(sq, j), ih * map_at(hq, j)) * icq[j]
                            else:
                                o2[j] = w * icq[j]
                        if pair:
                            _box_rows2(u1, u2, a1[c, y - y0], a2[c, y - y0], n, tmp)
                        else:
                            _box_row(u1, a1[c, y - y0], n, tmp)
                # back to 0 for the next offset (its centres may be fewer)
                for j in range(2 * f + xa, 2 * f + xb):
                    u1[j] = _ZERO
                    u2[j] = _ZERO
                # x in [xs, xe): the pixels whose partner x + o is inside the image
                xs = max(-f, -dx)
                xe = min(W + f, W - dx)
                mm = xe - xs
                for c in range(C):
                    for j in range(wc):
                        v1[j] = _ZERO
                        v2[j] = _ZERO
                    for yo in range(y0 - f, ye + f):
                        ie = yo + f - y0  # centre row entering the window
                        il = yo - f - 1 - y0  # centre row leaving it
                        e1 = a1[c, ie] if ie < ye - y0 else zrow
                        l1 = a1[c, il] if il >= 0 else zrow
                        # pairs (p, p + o): x gets I(x + o) box(W_o / C)(x)
                        bv = v1[f:f + W]
                        ev = e1[f:f + W]
                        lv = l1[f:f + W]
                        if 0 <= yo < H:
                            dst = acc[c, yo - y0 + f]
                            src = P[c, yo + dy + pad, pad + dx:pad + dx + W]
                            for x in range(W):
                                v = bv[x] + (ev[x] - lv[x])
                                bv[x] = v
                                dst[x] += v * src[x]
                        else:
                            for x in range(W):
                                bv[x] += ev[x] - lv[x]
                        if not pair:
                            continue
                        # pairs (p + o, p): x + o gets I(x) box(W_o / C(. + o))(x)
                        e2 = a2[c, ie] if ie < ye - y0 else zrow
                        l2 = a2[c, il] if il >= 0 else zrow
                        bv = v2[xs + f:xe + f]
                        ev = e2[xs + f:xe + f]
                        lv = l2[xs + f:xe + f]
                        if 0 <= yo + dy < H:
                            dst = acc[c, yo + dy - y0 + f, xs + dx:xe + dx]
                            src = P[c, yo + pad, xs + pad:xe + pad]
                            for x in range(mm):
                                v = bv[x] + (ev[x] - lv[x])
                                bv[x] = v
                                dst[x] += v * src[x]
                        else:
                            for x in range(mm):
                                bv[x] += ev[x] - lv[x]
    num = _sum_buffers(bufs, H, -f, block)
    # N(x): the centres inside the image whose patch contains x
    for y in range(H):
        ny = min(y + f, H - 1) - max(y - f, 0) + 1
        for x in range(W):
            nx = min(x + f, W - 1) - max(x - f, 0) + 1
            inv_n = _ONE / _F32(ny * nx)
            for c in range(C):
                num[c, y, x] *= inv_n
    return num


def nlm_patch_planes(P, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block):
    """Patchwise NLM of a padded, channel-planar float32 image (arguments as :func:`nlm_planes`)."""
    inv_c = patch_inv_weight_sums(P, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block)
    return patch_aggregate(P, inv_c, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, block)
