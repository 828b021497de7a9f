"""Input checks shared by the kernel wrappers and the library modules above them (one
message per problem, with the fix).

:func:`check_image`: a float image for a kernel (float32 ``H x W`` or ``H x W x 3`` on
the [0, 1] scale, noise may push values past it); :func:`check_sigma`: a noise level on
the 0-255 scale; :func:`check_finite_output`: what a kernel returns.
"""

from __future__ import annotations

import numpy as np

from edgerestore.errors import EdgeRestoreError, InputError

MAX_SIGMA = 255.0
MIN_SIGMA = 1e-4
"""Smallest noise level (0-255 scale) the kernels take. Float32 image values near 1 are
2**-24 apart (1.5e-5 on the 0-255 scale): a smaller sigma is noise the image cannot
hold, i.e. none, and the kernels' float32 arithmetic on (sigma / 255)**2 and 1 / h**2
underflows or overflows further down (below about 1e-16: black or garbage output).
1e-4 keeps a margin over the first and a dozen orders of magnitude over the second;
at 1e-4 both kernels return their input to within 1e-6."""

SCALE_LIMITS = (-7.0, 8.0)
"""Values of a float image on the [0, 1] scale lie in this interval: the image plus
Gaussian noise up to the largest sigma (255 on the 0-255 scale, 1.0 here) stays inside
it except with probability about 1e-12 per pixel. Values beyond it come from another
scale (0-255, 0-65535) and are refused with the fix."""


def check_image(img, *, what: str = "image", min_size: int = 1, range_check: bool = True,
                strict: bool = False) -> np.ndarray:
    """Validate a kernel input and return it as C-contiguous float32.

    Accepts float32/float64 ``H x W`` or ``H x W x 3`` on the [0, 1] scale, **any finite
    values within** :data:`SCALE_LIMITS`: a noisy image in float (as the ``bm3d``
    package and scikit-image take it) has values past 0 and 1, and they are kept, not
    clipped (clipping would bias the dark and bright areas). Rejects with
    :class:`InputError`: non-arrays, integer images (convert with ``img / 255``), other
    shapes, empty or too-small images, NaN/Inf, values outside :data:`SCALE_LIMITS`
    (another scale: the message names the division that fixes it).
    ``range_check=False`` skips that last check (for recording calibration data).
    ``strict=True`` refuses values outside [0, 1] beyond a 1e-3 tolerance (clipped),
    for callers whose data must already be clipped (calibration's clipped protocol).
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
    if strict:
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(f"{what} values span [{lo:.4g}, {hi:.4g}]; expected [0, 1] "
                             "(clipped data)")
        return np.clip(out, 0.0, 1.0) if (lo < 0 or hi > 1) else out
    if lo < SCALE_LIMITS[0] or hi > SCALE_LIMITS[1]:
        fix = "divide 16-bit data by 65535" if hi > 300 else "divide 8-bit data by 255"
        raise InputError(
            f"{what} values span [{lo:.4g}, {hi:.4g}]: not the [0, 1] scale (noise may push "
            f"values past 0 and 1, but not beyond [{SCALE_LIMITS[0]:g}, {SCALE_LIMITS[1]:g}]); "
            f"{fix}"
        )
    return out


def check_finite_output(out: np.ndarray, what: str) -> np.ndarray:
    """Return ``out`` if every value is finite; raise instead of handing on NaN/Inf (a
    kernel fed parameters its float32 arithmetic cannot represent)."""
    if not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise EdgeRestoreError(
            f"{what} produced {bad} NaN/Inf values; this is a bug for checked inputs: "
            "please report it with the image size and parameters")
    return out


def check_sigma(sigma, *, what: str = "sigma") -> float:
    """Validate a noise level on the 0-255 scale: finite, in [:data:`MIN_SIGMA`, 255]."""
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number (0-255 scale), got {sigma!r}") from None
    if not np.isfinite(s) or s <= 0:
        raise InputError(f"{what} must be > 0 on the 0-255 scale, got {sigma!r}")
    if s < MIN_SIGMA:
        raise InputError(
            f"{what}={s:g} is below {MIN_SIGMA:g} on the 0-255 scale: smaller than the "
            "spacing of float32 image values, i.e. no noise to remove; give a sigma >= "
            f"{MIN_SIGMA:g} or leave it out to estimate it")
    if s > MAX_SIGMA:
        raise InputError(
            f"{what}={s:g} is absurd on the 0-255 scale (max {MAX_SIGMA:g}); "
            "did you pass a value for the 0-65535 scale?"
        )
    return s
