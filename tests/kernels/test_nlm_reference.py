"""A float64 NumPy reference of the NLM algorithm (naive, slow, obvious), and its own checks.

The Numba CPU and CUDA kernels are compared with :func:`nlm_reference` in
``test_nlm.py``. The reference follows the definition in the ``nlm`` docstring
literally: for every pixel and every offset, the whole patch distance.
"""

from __future__ import annotations

import numpy as np

from edgerestore.kernels.color import bgr_to_opponent, opponent_to_bgr

T_CUT = 10.0  # weights exp(-t) with t >= T_CUT are 0 (part of the algorithm's definition)


def nlm_reference(img, sigma, patch_size, search_size, h, h_chroma=None):
    """NLM of ``img`` (float in [0, 1], gray or BGR) in float64; sigma and h on the 0-255 scale."""
    x = np.asarray(img, np.float64)
    color = x.ndim == 3
    planes = bgr_to_opponent(x) if color else x[..., None]
    C = planes.shape[2]
    hs = np.array([h, h_chroma, h_chroma] if color else [h], dtype=np.float64) / 255.0
    f, r = patch_size // 2, search_size // 2
    pad = f + r
    P = np.pad(planes, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    H, W = x.shape[:2]
    two_s2 = 2.0 * (sigma / 255.0) ** 2
    out = np.empty((H, W, C))
    for y in range(H):
        for xx in range(W):
            cy, cx = y + pad, xx + pad
            ref = P[cy - f:cy + f + 1, cx - f:cx + f + 1]
            num = np.zeros(C)
            den = np.zeros(C)
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    q = P[cy + dy - f:cy + dy + f + 1, cx + dx - f:cx + dx + f + 1]
                    d2 = np.mean((ref - q) ** 2)  # over the patch and all channels
                    t = max(d2 - two_s2, 0.0) / hs**2
                    w = np.where(t < T_CUT, np.exp(-t), 0.0)
                    num += w * P[cy + dy, cx + dx]
                    den += w
            out[y, xx] = num / den
    if color:
        return np.clip(opponent_to_bgr(out), 0.0, 1.0)
    return out[..., 0]


def test_reference_search_1_is_identity(rng):
    x = rng.random((6, 7))
    np.testing.assert_array_equal(nlm_reference(x, 10, 3, 1, 5), x)


def test_reference_one_pixel_by_hand():
    # 1-pixel patches, 3x3 search, on a 3x3 image: pixel (1, 1) by hand.
    x = np.array([[0.0, 0.1, 0.2], [0.3, 0.5, 0.4], [0.9, 0.6, 0.5]])
    sigma, h = 25.5, 51.0  # 0.1 and 0.2 on the [0, 1] scale
    out = nlm_reference(x, sigma, 1, 3, h)
    d2 = (x - 0.5) ** 2
    t = np.maximum(d2 - 2 * 0.01, 0) / 0.04
    w = np.where(t < T_CUT, np.exp(-t), 0)
    np.testing.assert_allclose(out[1, 1], np.sum(w * x) / np.sum(w), rtol=1e-12)
    assert out[1, 1] != x[1, 1]


def test_reference_colour_equal_h_equals_bgr_filtering(rng):
    # The opponent transform is orthonormal: with one h for all channels, filtering in
    # the opponent space equals filtering B, G and R with the joint weights.
    x = rng.random((5, 6, 3))
    out = nlm_reference(x, 20, 3, 3, 30, h_chroma=30)
    f, r, pad = 1, 1, 2
    P = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    cy, cx = 2 + pad, 3 + pad
    ref = P[cy - f:cy + f + 1, cx - f:cx + f + 1]
    num, den = np.zeros(3), 0.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            q = P[cy + dy - f:cy + dy + f + 1, cx + dx - f:cx + dx + f + 1]
            t = max(np.mean((ref - q) ** 2) - 2 * (20 / 255) ** 2, 0) / (30 / 255) ** 2
            w = np.exp(-t) if t < T_CUT else 0.0
            num += w * P[cy + dy, cx + dx]
            den += w
    np.testing.assert_allclose(out[2, 3], num / den, atol=1e-12)
