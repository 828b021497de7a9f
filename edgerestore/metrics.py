"""Quality metrics, one definition for the package, its tests and its benchmarks.

Argument order is always ``(reference, restored)``: the clean image first, as in
scikit-image's ``peak_signal_noise_ratio(image_true, image_test)``.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0
"""PSNR reported for (nearly) identical images, instead of infinity, so that means stay finite."""


def psnr(reference: np.ndarray, restored: np.ndarray, *, peak: float = 1.0,
         cap_db: float = PSNR_CAP_DB) -> float:
    """PSNR in dB of ``restored`` against ``reference``, both on the scale ``[0, peak]``.

    ``restored`` is clipped to ``[0, peak]`` first (what would be stored); ``reference``
    is taken as it is. Computed in float64. Identical images (MSE at or below the level
    that ``cap_db`` corresponds to) give ``cap_db``. Shapes must match.
    """
    ref = np.asarray(reference, dtype=np.float64)
    out = np.clip(np.asarray(restored, dtype=np.float64), 0.0, peak)
    if ref.shape != out.shape:
        raise ValueError(f"psnr: shapes differ: reference {ref.shape}, restored {out.shape}")
    mse = float(np.mean((ref - out) ** 2))
    if mse <= peak * peak * 10.0 ** (-cap_db / 10.0):
        return float(cap_db)
    return float(10.0 * np.log10(peak * peak / mse))
