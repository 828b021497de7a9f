"""A float64 NumPy reference of one BM3D stage: small, slow, obvious (tests only).

It takes the same :class:`~edgerestore.kernels.bm3d_filter.StageParams` as the kernels (the
transform matrices, thresholds and window are parameters, not the algorithm) and spells
the algorithm out with whole-array operations:

* distances to every block of the search window at once, sorted by
  ``(distance, scan order)`` with ``np.lexsort``; keep ``d <= tau``, the reference
  first, at most ``nmax``, rounded down to a power of two;
* the 3D transform as dense matrices: ``T B T'`` per block, then a Haar matrix built by
  the textbook recursion (not the kernels' lifting code) across the group;
* hard thresholding or Wiener shrinkage, weights, inverse, Kaiser-weighted average.
"""

from __future__ import annotations

import numpy as np


def haar_matrix_recursive(n: int) -> np.ndarray:
    """Orthonormal Haar matrix by ``H_2n = [H_n (x) [1 1]; I_n (x) [1 -1]] / sqrt 2``."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        m = h.shape[0]
        h = np.vstack([np.kron(h, [1.0, 1.0]), np.kron(np.eye(m), [1.0, -1.0])]) / np.sqrt(2.0)
    return h


def positions(n: int, bs: int, step: int) -> list[int]:
    pos = list(range(0, n - bs + 1, step))
    if pos[-1] != n - bs:
        pos.append(n - bs)
    return pos


def match(pilot0: np.ndarray, yr: int, xr: int, bs: int, ns: int, nmax: int, tau: float):
    h, w = pilot0.shape
    ys = np.arange(max(0, yr - ns), min(h - bs, yr + ns) + 1)
    xs = np.arange(max(0, xr - ns), min(w - bs, xr + ns) + 1)
    ref = pilot0[yr:yr + bs, xr:xr + bs]
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    yy, xx = yy.ravel(), xx.ravel()  # scan order: row-major
    d = np.array([((pilot0[y:y + bs, x:x + bs] - ref) ** 2).sum() for y, x in zip(yy, xx)])
    is_ref = (yy == yr) & (xx == xr)
    d[is_ref] = -1.0  # the reference always comes first
    order = np.lexsort((np.arange(d.size), d))
    order = [i for i in order if d[i] <= tau][:nmax]
    n = 1 << (len(order).bit_length() - 1)
    return [(int(yy[i]), int(xx[i])) for i in order[:n]]


def bm3d_stage_reference(z: np.ndarray, pilot: np.ndarray, p) -> np.ndarray:
    """One stage on ``C x H x W`` arrays in float64; returns the aggregated estimate."""
    z = np.asarray(z, dtype=np.float64)
    pilot = np.asarray(pilot, dtype=np.float64)
    nc, h, w = z.shape
    bs = p.bs
    num = np.zeros((nc, h, w))
    den = np.zeros((nc, h, w))
    tf, ti = p.tf, p.ti
    for yr in positions(h, bs, p.step):
        for xr in positions(w, bs, p.step):
            group = match(pilot[0], yr, xr, bs, p.ns, p.nmax, p.tau)
            n = len(group)
            hm = haar_matrix_recursive(n)
            for c in range(nc):
                blocks = np.stack([z[c, y:y + bs, x:x + bs] for y, x in group])
                coef = np.einsum("kn,nij->kij", hm, tf @ blocks @ tf.T)
                if p.wiener:
                    pb = np.stack([pilot[c, y:y + bs, x:x + bs] for y, x in group])
                    pc = np.einsum("kn,nij->kij", hm, tf @ pb @ tf.T)
                    wf = pc**2 / (pc**2 + p.thr[None])
                    coef = coef * wf
                    acc = (wf**2 * p.var2d[None]).sum()
                else:
                    keep = np.abs(coef) > p.thr[None]
                    coef = np.where(keep, coef, 0.0)
                    acc = (keep * p.var2d[None]).sum()
                weight = 1.0 / acc if acc > 0 else 1.0
                est = ti @ np.einsum("kn,kij->nij", hm, coef) @ ti.T
                for (y, x), b in zip(group, est):
                    num[c, y:y + bs, x:x + bs] += weight * p.win * b
                    den[c, y:y + bs, x:x + bs] += weight * p.win
    return num / den
