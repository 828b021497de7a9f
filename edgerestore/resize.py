"""MATLAB-compatible ``imresize`` (bicubic, antialiased when shrinking), in NumPy.

The super-resolution literature (SRCNN, ESPCN, VDSR, EDSR...) makes its low-resolution
inputs with MATLAB's ``imresize(img, 1/s, 'bicubic')``: Keys' cubic kernel with
``a = -0.5``, *stretched by s when shrinking* (antialiasing: each output pixel averages
a 4s-pixel window), symmetric (mirror) padding at the borders, output size
``ceil(in / s)``, pixel centres aligned (``u = x / scale + 0.5 (1 - 1 / scale)``). This
module reproduces that algorithm in float64 (it is the well-known port used by
e.g. the BasicSR ``matlab_functions``): on Set5 it gives the published bicubic figures.

How it differs from other "bicubic" resizers:

* ``cv2.resize(..., INTER_CUBIC)`` uses ``a = -0.75`` and does **not** antialias when
  shrinking (it samples 4x4 source pixels whatever the factor), so its low-resolution
  images are aliased and sharper; ``INTER_AREA`` antialiases with a box filter instead.
* PIL's ``Image.resize(BICUBIC)`` antialiases like MATLAB but uses ``a = -0.5`` on
  uint8 with intermediate rounding and clamps at the border instead of mirroring; its
  output differs from MATLAB's by about 1 gray level at the borders.

The resize is separable and linear: it is applied as ``Mh @ img @ Mw.T`` with dense
weight matrices (fine for the image sizes of training and benchmarks).
"""

from __future__ import annotations

import functools

import numpy as np

from edgerestore.errors import InputError


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=64)
def weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """``out_len x in_len`` float64 matrix of MATLAB's bicubic imresize along one axis."""
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(np.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(taps)[None, :]  # 1-based source indices
    dist = u[:, None] - ind
    w = scale * _cubic(scale * dist) if shrink else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(ind.astype(np.int64) - 1, 2 * in_len)]
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    m.setflags(write=False)
    return m


def imresize(img: np.ndarray, factor: float, *, antialias: bool = True) -> np.ndarray:
    """Resize ``img`` (H x W or H x W x C, float) by ``factor`` like MATLAB's
    ``imresize(img, factor, 'bicubic')``; returns float64, not clipped or rounded.

    Output size is ``ceil(H * factor) x ceil(W * factor)``.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim not in (2, 3) or not factor > 0:
        raise InputError(f"imresize: need an H x W (x C) image and factor > 0, got {a.shape}, {factor}")
    h, w = a.shape[:2]
    oh, ow = int(np.ceil(h * factor - 1e-9)), int(np.ceil(w * factor - 1e-9))
    mh = weight_matrix(h, oh, float(factor), antialias)
    mw = weight_matrix(w, ow, float(factor), antialias)
    if a.ndim == 2:
        return mh @ a @ mw.T
    return np.einsum("oh,hwc,pw->opc", mh, a, mw, optimize=True)


def downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """Low-resolution version of ``img`` for x``scale`` super-resolution: crop to a
    multiple of ``scale`` (top-left kept), then MATLAB-style antialiased bicubic by
    ``1/scale``. Float64, not rounded."""
    h, w = img.shape[:2]
    img = img[: h - h % scale, : w - w % scale]
    return imresize(img, 1.0 / scale)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """``img`` cropped to a multiple of ``scale`` in both dimensions (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
