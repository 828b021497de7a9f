"""Small dense transforms shared by the block-based kernels (BM3D).

All matrices are float64 NumPy arrays ``T`` acting on column vectors: the forward
transform of a block ``B`` (``n x n``) is ``T @ B @ T.T`` and the inverse is
``Ti @ C @ Ti.T`` with ``Ti = inv(T)``.

* :func:`dct_matrix`: the orthonormal DCT-II (same as ``scipy.fft.dct(..., norm="ortho")``).
* :func:`bior15_matrix`: the 8-point biorthogonal 1.5 wavelet transform (full dyadic
  decomposition) as tabulated in the BM3D reference code. It is *not* orthonormal: its
  rows have norms slightly different from 1, so i.i.d. noise of variance ``s**2`` has
  variance ``s**2 * norms[i]**2 * norms[j]**2`` on coefficient ``(i, j)``; BM3D scales
  its thresholds with :func:`row_norms` for that reason (the "exact variance" rule).
* :func:`haar_forward` / :func:`haar_inverse`: the orthonormal 1D Haar transform (full
  decomposition) along the first axis of a stack whose length is a power of two, as used
  across the blocks of a BM3D group.
* :func:`kaiser_window`: the separable 2D Kaiser window used for aggregation.
"""

from __future__ import annotations

import numpy as np

# 8-point bior1.5 analysis matrix from the BM3D reference implementation (Dabov et al.;
# also hard-coded in the Tampere ``bm4d`` package). Rows: basis functions.
_BIOR15_8 = np.array(
    [
        [0.343550200747110] * 8,
        [-0.225454819240296, -0.461645582253923, -0.461645582253923, -0.225454819240296,
         0.225454819240296, 0.461645582253923, 0.461645582253923, 0.225454819240296],
        [0.569359398342840, 0.402347308162280, -0.402347308162280, -0.569359398342840,
         -0.083506045090280, 0.083506045090280, -0.083506045090280, 0.083506045090280],
        [-0.083506045090280, 0.083506045090280, -0.083506045090280, 0.083506045090280,
         0.569359398342840, 0.402347308162280, -0.402347308162280, -0.569359398342840],
        [0.707106781186550, -0.707106781186550, 0, 0, 0, 0, 0, 0],
        [0, 0, 0.707106781186550, -0.707106781186550, 0, 0, 0, 0],
        [0, 0, 0, 0, 0.707106781186550, -0.707106781186550, 0, 0],
        [0, 0, 0, 0, 0, 0, 0.707106781186550, -0.707106781186550],
    ]
)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix ``n x n`` (rows are basis functions)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    t = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    t[0] /= np.sqrt(2.0)
    return t


def bior15_matrix(n: int = 8) -> np.ndarray:
    """The 8-point bior1.5 analysis matrix (only ``n == 8`` is tabulated)."""
    if n != 8:
        raise ValueError(f"bior1.5 is tabulated for 8-point blocks only, got n={n}; use 'dct'")
    return _BIOR15_8.copy()


def transform_matrix(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(forward, inverse)`` matrices of the named 2D block transform ('dct', 'bior1.5')."""
    if name == "dct":
        t = dct_matrix(n)
    elif name == "bior1.5":
        t = bior15_matrix(n)
    else:
        raise ValueError(f"unknown block transform {name!r}; available: 'dct', 'bior1.5'")
    return t, np.linalg.inv(t)


def row_norms(t: np.ndarray) -> np.ndarray:
    """Euclidean norm of each basis function (row) of ``t``."""
    return np.sqrt((np.asarray(t, dtype=np.float64) ** 2).sum(axis=1))


def _check_pow2(n: int) -> None:
    if n < 1 or n & (n - 1):
        raise ValueError(f"Haar transform length must be a power of two, got {n}")


def haar_matrix(n: int) -> np.ndarray:
    """Orthonormal Haar matrix ``n x n`` (full decomposition), rows are basis functions.

    Coefficient order matches :func:`haar_forward`: ``[approx, detail_coarsest, ...,
    details_finest]``.
    """
    _check_pow2(n)
    return haar_forward(np.eye(n))


def haar_forward(x: np.ndarray) -> np.ndarray:
    """Orthonormal Haar transform along axis 0 (length a power of two), full decomposition."""
    x = np.array(x, dtype=np.float64, copy=True)
    n = x.shape[0]
    _check_pow2(n)
    r = 1.0 / np.sqrt(2.0)
    length = n
    while length > 1:
        half = length // 2
        a = x[0:length:2].copy()
        b = x[1:length:2].copy()
        x[:half] = (a + b) * r
        x[half:length] = (a - b) * r
        length = half
    return x


def haar_inverse(c: np.ndarray) -> np.ndarray:
    """Inverse of :func:`haar_forward`."""
    c = np.array(c, dtype=np.float64, copy=True)
    n = c.shape[0]
    _check_pow2(n)
    r = 1.0 / np.sqrt(2.0)
    length = 2
    while length <= n:
        half = length // 2
        a = c[:half].copy()
        d = c[half:length].copy()
        c[0:length:2] = (a + d) * r
        c[1:length:2] = (a - d) * r
        length *= 2
    return c


def kaiser_window(n: int, beta: float) -> np.ndarray:
    """Separable 2D Kaiser window ``n x n`` (``beta = 0`` gives a flat window)."""
    k = np.kaiser(n, beta)
    return np.outer(k, k)
