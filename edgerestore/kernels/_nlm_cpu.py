"""Non-local means on the CPU: Numba, ``parallel=True``, running sums per offset.

Private: users call :func:`edgerestore.kernels.nlm`, which checks and pads the input.

Algorithm (pixelwise NLM, the variant OpenCV's ``fastNlMeansDenoising`` and
scikit-image's fast mode implement). For every search offset ``o = (dy, dx)``:

* ``D_o(p) = sum_c (I_c(p) - I_c(p + o))**2`` is the per-pixel squared difference;
* the patch distance ``S_o(p)`` is ``D_o`` summed over the ``(2f+1)**2`` patch around
  ``p``, obtained with running sums: a column sum per x, updated by adding the row that
  enters and subtracting the row that leaves as y advances, then a running sum along
  the row. Each is O(1) per pixel per offset, whatever the patch size;
* ``t_c = max(S_o / (n C) - 2 sigma**2, 0) / h_c**2`` and ``w_c = exp(-t_c)`` (0 when
  ``t_c >= T_CUT``); ``num_c += w_c I_c(p + o)``, ``den_c += w_c``.

The output is ``num_c / den_c``. Rows are cut into blocks that threads process
independently (``prange``); inside a block all buffers stay in the L1/L2 cache.
``exp`` is a polynomial (vectorises without SVML; relative error < 2e-6 on
``[0, T_CUT]``). Everything runs in float32.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Weights exp(-t) with t >= T_CUT (exp(-10) = 4.5e-5) are set to 0. Part of the
# algorithm's definition: the reference implementation in the tests does the same.
T_CUT = 10.0

_F32 = np.float32
_T_CUT32 = _F32(T_CUT)
# Taylor coefficients 1/k! of exp(v), k = 8 .. 0, for v = -t/16 in [-0.625, 0].
_C8, _C7, _C6, _C5 = _F32(1 / 40320), _F32(1 / 5040), _F32(1 / 720), _F32(1 / 120)
_C4, _C3, _C2, _C1 = _F32(1 / 24), _F32(1 / 6), _F32(0.5), _F32(1.0)
_SIXTEENTH = _F32(-1.0 / 16.0)
_ZERO = _F32(0.0)
_ONE = _F32(1.0)


@njit(cache=True, fastmath=True)
def exp_neg(t):
    """``exp(-t)`` for float32 ``0 <= t <= T_CUT``: ``exp(-t/16)**16``, Taylor of degree 8."""
    v = t * _SIXTEENTH
    p = _C8 * v + _C7
    p = p * v + _C6
    p = p * v + _C5
    p = p * v + _C4
    p = p * v + _C3
    p = p * v + _C2
    p = p * v + _C1
    p = p * v + _ONE
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p


@njit(parallel=True, fastmath=True, cache=True)
def nlm_planes(P, H, W, f, r, inv_nc, two_sig2, inv_h2, block):
    """NLM of a padded, channel-planar float32 image.

    ``P``: ``C x (H + 2(r+f)) x (W + 2(r+f))`` float32, the image padded by ``r + f``
    on every side. ``f``: patch half-size, ``r``: search half-size. ``inv_nc``:
    ``1 / ((2f+1)**2 C)``. ``two_sig2``: ``2 sigma**2`` and ``inv_h2[c]``: ``1 / h_c**2``,
    both on the [0, 1] scale. ``block``: rows per parallel task. Returns ``C x H x W``.
    """
    C = P.shape[0]
    out = np.empty((C, H, W), np.float32)
    nb = (H + block - 1) // block
    wc = W + 2 * f
    ps_n = 2 * f + 1
    for b in prange(nb):
        y0 = b * block
        y1 = min(H, y0 + block)
        bh = y1 - y0
        num = np.zeros((C, bh, W), np.float32)
        den = np.zeros((C, bh, W), np.float32)
        col = np.empty(wc, np.float32)
        ps = np.empty(W, np.float32)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                # Column sums of D_o over the patch rows of output row y0.
                for j in range(wc):
                    col[j] = _ZERO
                for k in range(ps_n):
                    py = y0 + r + k
                    for c in range(C):
                        a = P[c, py, r:r + wc]
                        q = P[c, py + dy, r + dx:r + dx + wc]
                        for j in range(wc):
                            d = a[j] - q[j]
                            col[j] += d * d
                for y in range(y0, y1):
                    if y > y0:
                        pa = y + r + 2 * f  # the row entering the patch window
                        pr = y + r - 1  # the row leaving it
                        for c in range(C):
                            a1 = P[c, pa, r:r + wc]
                            q1 = P[c, pa + dy, r + dx:r + dx + wc]
                            a0 = P[c, pr, r:r + wc]
                            q0 = P[c, pr + dy, r + dx:r + dx + wc]
                            for j in range(wc):
                                d1 = a1[j] - q1[j]
                                d0 = a0[j] - q0[j]
                                col[j] += d1 * d1 - d0 * d0
                    # Running sum along the row: ps[x] = sum(col[x : x + 2f + 1]).
                    s = _ZERO
                    for j in range(ps_n):
                        s += col[j]
                    ps[0] = s
                    for x in range(1, W):
                        s = s + (col[x + ps_n - 1] - col[x - 1])
                        ps[x] = s
                    yy = y - y0
                    py = y + r + f + dy
                    for c in range(C):
                        ih = inv_h2[c]
                        src = P[c, py, r + f + dx:r + f + dx + W]
                        nrow = num[c, yy]
                        drow = den[c, yy]
                        for x in range(W):
                            t = max(ps[x] * inv_nc - two_sig2, _ZERO) * ih
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
