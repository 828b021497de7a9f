"""Input checks shared by the kernel wrappers and the library modules above them (one
message per problem, with the fix).

:func:`check_image`: a float image for a kernel (float32 ``H x W`` or ``H x W x 3`` in
[0, 1]); :func:`check_sigma`: a noise level on the 0-255 scale.
"""

from __future__ import annotations

import numpy as np

from edgerestore.errors import InputError

MAX_SIGMA = 255.0


def check_image(img, *, what: str = "image", min_size: int = 1, range_check: bool = True) -> np.ndarray:
    """Validate a kernel input and return it as C-contiguous float32.

    Accepts float32/float64 ``H x W`` or ``H x W x 3`` in [0, 1]. Rejects with
    :class:`InputError`: non-arrays, integer images (convert with ``img / 255``), other
    shapes, empty or too-small images, NaN/Inf, values outside [0, 1] beyond a small
    tolerance (1e-3, clipped). ``range_check=False`` lets values outside [0, 1] through
    unchanged (for recording unclipped-noise calibration data, never for restoring).
    """
    if not isinstance(img, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(img).__name__}")
    if img.dtype.kind in "ui" or img.dtype == np.bool_:
        raise InputError(
            f"{what} has integer dtype {img.dtype}; kernels take float32 in [0, 1]: "
            "pass img.astype(np.float32) / 255 for 8-bit or / 65535 for 16-bit images"
        )
    if img.dtype.kind != "f":
        raise InputError(f"{what} has dtype {img.dtype}; expected float32 in [0, 1]")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise InputError(
            f"{what} has shape {img.shape}; expected H x W (gray) or H x W x 3 (BGR)"
        )
    if img.shape[0] < min_size or img.shape[1] < min_size:
        raise InputError(
            f"{what} is {img.shape[0]}x{img.shape[1]} pixels; this kernel needs at least "
            f"{min_size}x{min_size}"
        )
    out = np.ascontiguousarray(img, dtype=np.float32)
    if not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise InputError(f"{what} contains {bad} NaN or Inf values; clean or mask them first")
    if not range_check:
        return out
    lo, hi = float(out.min()), float(out.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(
            f"{what} values span [{lo:.4g}, {hi:.4g}]; expected [0, 1] "
            "(divide 8-bit data by 255)"
        )
    if lo < 0 or hi > 1:
        out = np.clip(out, 0.0, 1.0)
    return out


def check_sigma(sigma, *, what: str = "sigma") -> float:
    """Validate a noise level on the 0-255 scale: finite, > 0 and <= 255."""
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number (0-255 scale), got {sigma!r}") from None
    if not np.isfinite(s) or s <= 0:
        raise InputError(f"{what} must be > 0 on the 0-255 scale, got {sigma!r}")
    if s > MAX_SIGMA:
        raise InputError(
            f"{what}={s:g} is absurd on the 0-255 scale (max {MAX_SIGMA:g}); "
            "did you pass a value for the 0-65535 scale?"
        )
    return s
