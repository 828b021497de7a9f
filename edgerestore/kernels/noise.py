"""Estimation of the level of additive white Gaussian noise in an image.

:func:`estimate_sigma` combines Immerkaer's fast noise-variance mask (1996) with the
robust median-absolute-deviation statistic of Donoho & Johnstone (1994), and leaves out
the pixels on the strongest edges (as Tai & Yang, 2008, do) since image structure, not
noise, dominates the residual there:

1. ``r = I * M`` with ``M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (the difference of
   two Laplacians, blind to constant and linear patches); for i.i.d. noise of standard
   deviation sigma, ``r`` has standard deviation ``6 sigma``;
2. keep the residuals of the 70 % of pixels with the smallest gradient
   ``|I(x+1) - I(x-1)| + |I(y+1) - I(y-1)|``;
3. ``sigma = median(|r|) / (0.6745 * 6)``.

Pure NumPy (no compile step); about 30 ms for a 512x512 image. Accuracy on Set12 (known
sigma, 8-bit clipped noise) is in ``docs/kernels.md``; like every estimator of this
kind it reads fine texture as noise at low sigma (over-estimates by ~1 at sigma 5) and
it cannot see noise that clipping to [0, 255] removed (under-estimates at sigma 50).
"""

from __future__ import annotations

import numpy as np

from edgerestore.kernels._checks import check_image

MIN_SIZE = 3
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # 1 / Phi^-1(3/4)
_EDGE_QUANTILE = 0.7
_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def _plane_sigma(x: np.ndarray) -> float:
    """Noise sigma of one float64 plane on the [0, 1] scale."""
    H, W = x.shape
    r = np.zeros((H - 2, W - 2))
    for i in range(3):
        for j in range(3):
            r += _MASK[i, j] * x[i:H - 2 + i, j:W - 2 + j]
    g = np.abs(x[1:-1, 2:] - x[1:-1, :-2]) + np.abs(x[2:, 1:-1] - x[:-2, 1:-1])
    r = np.abs(r).ravel()
    g = g.ravel()
    if r.size >= 64:  # enough samples to drop the edges
        keep = g <= np.quantile(g, _EDGE_QUANTILE)
        r = r[keep]
    return float(np.median(r)) * _MAD_TO_SIGMA / 6.0


def estimate_sigma(img: np.ndarray) -> float:
    """Standard deviation of additive white Gaussian noise, on the 0-255 scale.

    Parameters
    ----------
    img:
        float32/float64 ``H x W`` (gray) or ``H x W x 3`` (BGR) in [0, 1], at least 3x3.

    Returns
    -------
    float
        sigma on the 0-255 scale (0.0 for a noise-free flat or linear image). For colour,
        the median of the estimates on the three channels of the orthonormal opponent
        space (i.i.d. noise has the same sigma in each).

    Raises
    ------
    InputError
        Same checks as the kernels: dtype, shape, size, NaN/Inf, range.
    """
    x = check_image(img, what="estimate_sigma input", min_size=MIN_SIZE).astype(np.float64)
    if x.ndim == 2:
        return 255.0 * _plane_sigma(x)
    from edgerestore.kernels.color import bgr_to_opponent

    opp = bgr_to_opponent(x)
    return 255.0 * float(np.median([_plane_sigma(opp[..., c]) for c in range(3)]))


__all__ = ["estimate_sigma"]
