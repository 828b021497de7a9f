"""Float64 NumPy references of the temporal filter's kernels, written from their
definitions (docstrings of ``edgerestore.kernels.temporal``), not from the kernels."""

from __future__ import annotations

import numpy as np


def bilinear(img: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """``img`` (H x W x C) sampled at (sx, sy), border clamped, bilinear, float64."""
    H, W = img.shape[:2]
    sx = np.clip(sx, 0, W - 1)
    sy = np.clip(sy, 0, H - 1)
    x0 = np.floor(sx).astype(int)
    y0 = np.floor(sy).astype(int)
    x1 = np.minimum(x0 + 1, W - 1)
    y1 = np.minimum(y0 + 1, H - 1)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    im = img.astype(np.float64)
    top = im[y0, x0] * (1 - fx) + im[y0, x1] * fx
    bot = im[y1, x0] * (1 - fx) + im[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def warp_reference(img, flow):
    H, W = img.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    sx = xx + flow[..., 0]
    sy = yy + flow[..., 1]
    valid = ((sx >= -0.5) & (sx <= W - 0.5) & (sy >= -0.5) & (sy <= H - 0.5)).astype(np.float64)
    return bilinear(img, sx, sy), valid


def fb_reference(fwd, bwd, tol_abs, tol_rel):
    H, W = fwd.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    back = bilinear(bwd, xx + fwd[..., 0], yy + fwd[..., 1])
    err = np.hypot(fwd[..., 0] + back[..., 0], fwd[..., 1] + back[..., 1])
    return (err <= tol_abs + tol_rel * np.hypot(fwd[..., 0], fwd[..., 1])).astype(np.float64)


def aggregate_reference(center, warped, dist, valid, noise2, h2):
    w = valid * np.exp(-np.maximum(dist.astype(np.float64) - noise2, 0) / h2)
    w[w < 1e-4] = 0.0
    num = center.astype(np.float64) + (w[..., None] * warped).sum(axis=0)
    sw = 1.0 + w.sum(axis=0)
    return num / sw[..., None], (1.0 + (w ** 2).sum(axis=0)) / sw ** 2


def kalman_reference(current, predicted, pred_var, dist, valid, noise2, h2, min_var):
    conf = valid * np.exp(-np.maximum(dist.astype(np.float64) - noise2, 0) / h2)
    use = conf >= 1e-4
    c = np.where(use, conf, 1.0)
    g = np.where(use, 1.0 / (1.0 + np.maximum(pred_var, min_var) / c), 0.0)
    out = current + g[..., None] * (predicted.astype(np.float64) - current)
    var = np.where(use, (1.0 - g) ** 2 + g ** 2 * pred_var / c, 1.0)
    return out, var
