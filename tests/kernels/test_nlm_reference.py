"""A float64 NumPy reference of the NLM algorithm (naive, slow, obvious), and its own checks.

The Numba CPU and CUDA kernels are compared with :func:`nlm_reference` (pixelwise)
and :func:`nlm_patch_reference` (patchwise) in ``test_nlm.py``. Both follow the
definitions in the ``nlm`` docstring literally: for every pixel and every offset, the
whole patch distance; patchwise, every patch estimate is formed and averaged.
"""

from __future__ import annotations

import numpy as np

from edgerestore.kernels.color import bgr_to_opponent, opponent_to_bgr

T_CUT = 10.0  # weights exp(-t) with t >= T_CUT are 0 (part of the algorithm's definition)


def _setup(img, sigma, patch_size, search_size, h, h_chroma):
    """What both references start from: the float64 image, its (opponent) planes padded
    by f + r with mirrored borders, and per pixel the per-channel h and 2 sigma^2, all on
    [0, 1]: ``hs[y, x, c]``, ``two_s2[y, x]``.

    ``sigma`` a number, or an H x W map: then pixel p uses ``sigma_p`` and
    ``h_p = h sigma_p / median(sigma)`` (``h_chroma`` likewise), the rule ``nlm`` states."""
    x = np.asarray(img, np.float64)
    color = x.ndim == 3
    planes = bgr_to_opponent(x) if color else x[..., None]
    C = planes.shape[2]
    H, W = x.shape[:2]
    sig = np.broadcast_to(np.asarray(sigma, np.float64), (H, W))
    scale = sig / np.median(sig)
    hs = np.array([h, h_chroma, h_chroma] if color else [h], dtype=np.float64) / 255.0
    hs = hs[None, None, :] * scale[:, :, None]
    f, r = patch_size // 2, search_size // 2
    pad = f + r
    P = np.pad(planes, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    two_s2 = 2.0 * (sig / 255.0) ** 2
    return x, color, C, hs, f, r, pad, P, H, W, two_s2


def nlm_reference(img, sigma, patch_size, search_size, h, h_chroma=None):
    """NLM of ``img`` (float in [0, 1], gray or BGR) in float64; sigma (a number or an
    H x W map, see :func:`_setup`) and h on the 0-255 scale."""
    x, color, C, hs, f, r, pad, P, H, W, two_s2 = _setup(img, sigma, patch_size, search_size, h, h_chroma)
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
                    t = max(d2 - two_s2[y, xx], 0.0) / hs[y, xx] ** 2
                    w = np.where(t < T_CUT, np.exp(-t), 0.0)
                    num += w * P[cy + dy, cx + dx]
                    den += w
            out[y, xx] = num / den
    if color:
        return np.clip(opponent_to_bgr(out), 0.0, 1.0)
    return out[..., 0]


def nlm_patch_reference(img, sigma, patch_size, search_size, h, h_chroma=None):
    """Patchwise NLM (IPOL 2011) of ``img`` in float64; arguments as :func:`nlm_reference`.

    For every pixel p: the weights w(p, q) of the q of its search window that lie inside
    the image (same weight formula as pixelwise), C(p) = sum_q w(p, q), and the estimate
    of the whole patch around p, E_p(p + k) = sum_q w(p, q) I(q + k) / C(p) (mirrored
    borders for I). The output at x is the mean of the estimates E_p(x) of all p inside
    the image with x in their patch.
    """
    x, color, C, hs, f, r, pad, P, H, W, two_s2 = _setup(img, sigma, patch_size, search_size, h, h_chroma)
    num = np.zeros((H + 2 * f, W + 2 * f, C))  # pixel (y, x) at (y + f, x + f)
    cnt = np.zeros((H + 2 * f, W + 2 * f))
    for py in range(H):
        for px in range(W):
            cy, cx = py + pad, px + pad
            ref = P[cy - f:cy + f + 1, cx - f:cx + f + 1]
            ws, patches = [], []
            for qy in range(max(0, py - r), min(H, py + r + 1)):
                for qx in range(max(0, px - r), min(W, px + r + 1)):
                    q = P[qy + pad - f:qy + pad + f + 1, qx + pad - f:qx + pad + f + 1]
                    t = max(np.mean((ref - q) ** 2) - two_s2[py, px], 0.0) / hs[py, px] ** 2
                    ws.append(np.where(t < T_CUT, np.exp(-t), 0.0))
                    patches.append(q)
            ws = np.array(ws)  # (n, C)
            est = np.einsum("nc,nijc->ijc", ws, np.array(patches)) / ws.sum(axis=0)
            num[py:py + 2 * f + 1, px:px + 2 * f + 1] += est
            cnt[py:py + 2 * f + 1, px:px + 2 * f + 1] += 1
    out = num[f:f + H, f:f + W] / cnt[f:f + H, f:f + W, None]
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
    f, pad = 1, 2
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


def test_patch_reference_patch_1_is_pixelwise_with_clipped_window(rng):
    # With 1-pixel patches each estimate covers its own pixel only: patchwise NLM is
    # pixelwise NLM whose search window is clipped to the image.
    x = rng.random((7, 8))
    out = nlm_patch_reference(x, 20, 1, 5, 15)
    y, xx = 0, 6  # a corner-ish pixel: the window is clipped on two sides
    h2, two_s2 = (15 / 255) ** 2, 2 * (20 / 255) ** 2
    qs = x[0:3, 4:8]
    t = np.maximum((qs - x[y, xx]) ** 2 - two_s2, 0) / h2
    w = np.where(t < T_CUT, np.exp(-t), 0)
    np.testing.assert_allclose(out[y, xx], np.sum(w * qs) / np.sum(w), rtol=1e-12)


def test_patch_reference_averages_patch_estimates_by_hand():
    # 3x3 patches, search 3x3, on a 4x4 image: pixel (0, 0) is covered by the patches
    # of (0, 0), (0, 1), (1, 0), (1, 1); average their four estimates of it by hand.
    x = np.array([[0.1, 0.5, 0.2, 0.7], [0.4, 0.3, 0.9, 0.0], [0.6, 0.8, 0.1, 0.2],
                  [0.3, 0.2, 0.5, 0.4]])
    sigma, h = 10.0, 40.0
    P = np.pad(x, 2, mode="reflect")
    two_s2, h2 = 2 * (sigma / 255) ** 2, (h / 255) ** 2

    def patch(y, xx):
        return P[y + 1:y + 4, xx + 1:xx + 4]  # the 3x3 patch centred on image (y, xx)

    estimates = []
    for py, px in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        num = den = 0.0
        for qy in range(max(0, py - 1), min(4, py + 2)):
            for qx in range(max(0, px - 1), min(4, px + 2)):
                t = max(np.mean((patch(py, px) - patch(qy, qx)) ** 2) - two_s2, 0) / h2
                w = np.exp(-t) if t < T_CUT else 0.0
                num += w * P[qy + 2 - py, qx + 2 - px]  # I(q + (0,0) - p)
                den += w
        estimates.append(num / den)
    out = nlm_patch_reference(x, sigma, 3, 3, h)
    np.testing.assert_allclose(out[0, 0], np.mean(estimates), rtol=1e-12)


def test_reference_sigma_map_one_pixel_by_hand():
    # As above, with a per-pixel sigma: pixel (1, 1) uses its own level in 2 sigma^2 and
    # h scaled by its level over the map's median.
    x = np.array([[0.0, 0.1, 0.2], [0.3, 0.5, 0.4], [0.9, 0.6, 0.5]])
    sig = np.full((3, 3), 25.5)
    sig[1, 1] = 12.75  # 0.05 on the [0, 1] scale; the median stays 25.5
    out = nlm_reference(x, sig, 1, 3, 51.0)
    d2 = (x - 0.5) ** 2
    t = np.maximum(d2 - 2 * 0.05**2, 0) / (0.2 * 0.5) ** 2
    w = np.where(t < T_CUT, np.exp(-t), 0)
    np.testing.assert_allclose(out[1, 1], np.sum(w * x) / np.sum(w), rtol=1e-12)
    np.testing.assert_allclose(out[0, 0], nlm_reference(x, 25.5, 1, 3, 51.0)[0, 0], rtol=1e-12)
