"""Colour conversions shared by the kernels.

The opponent transform used here is orthonormal, so i.i.d. Gaussian noise of standard
deviation sigma in BGR stays i.i.d. with the same sigma in every opponent channel. That
lets a kernel filter colour images in a decorrelated space with one sigma (as CBM3D and
OpenCV's coloured NLM do, in spirit) and invert exactly.

Channel 0 is luminance-like ((B+G+R)/sqrt(3)), channels 1 and 2 are chrominance.
Values of a [0, 1] BGR image map to Y in [0, sqrt(3)], C1 in [-1/sqrt(2), 1/sqrt(2)],
C2 in [-2/sqrt(6), 2/sqrt(6)]; the inverse maps back to [0, 1] (no clipping is done).
"""

from __future__ import annotations

import numpy as np

_S3, _S2, _S6 = np.sqrt(3.0), np.sqrt(2.0), np.sqrt(6.0)
# Rows: Y, C1, C2. Columns: B, G, R.
BGR_TO_OPPONENT = np.array(
    [
        [1 / _S3, 1 / _S3, 1 / _S3],
        [-1 / _S2, 0.0, 1 / _S2],
        [1 / _S6, -2 / _S6, 1 / _S6],
    ]
)
OPPONENT_TO_BGR = BGR_TO_OPPONENT.T  # orthonormal: inverse == transpose


def bgr_to_opponent(img: np.ndarray) -> np.ndarray:
    """``H x W x 3`` BGR -> ``H x W x 3`` opponent (Y, C1, C2), same dtype (float)."""
    return np.einsum("hwc,kc->hwk", img, BGR_TO_OPPONENT.astype(img.dtype), optimize=True)


def opponent_to_bgr(img: np.ndarray) -> np.ndarray:
    """Inverse of :func:`bgr_to_opponent`."""
    return np.einsum("hwc,kc->hwk", img, OPPONENT_TO_BGR.astype(img.dtype), optimize=True)
