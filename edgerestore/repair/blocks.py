"""Statistics of a frame over its macroblock grid, the building blocks of packet-loss
detection (:mod:`~edgerestore.repair.detect`): per-block sums, flatness and smear
metrics, seamless edges between blocks, differences to another frame (plain and
motion-compensated by block matching), and growing runs of blocks.

Frames are uint8 ``H x W x 3`` BGR or ``H x W`` gray; a grid of ``b x b`` blocks from the
top-left corner, edge blocks partial; per-block maps are ``ceil(H/b) x ceil(W/b)``;
values on the 0-255 scale.
"""

from __future__ import annotations

import numpy as np


def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="frame repair")


def as3(img: np.ndarray) -> np.ndarray:
    """``img`` with a channel axis (``H x W`` -> ``H x W x 1``; a view)."""
    return img if img.ndim == 3 else img[:, :, None]


def block_smear_metrics(img: np.ndarray, block: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Per block (``ceil(H/b) x ceil(W/b)``): mean absolute difference between consecutive
    rows (``mv``) and consecutive columns (``mh``) inside the block, channels averaged,
    0-255 scale. 0 for an exact vertical (``mv``) or horizontal (``mh``) smear; both 0
    for a flat block. Pairs straddling two blocks are left out; a block one pixel high or
    wide gets ``inf`` in that direction."""
    cv2 = _cv2()
    b = block
    h, w = img.shape[:2]
    c = img.shape[2] if img.ndim == 3 else 1
    dv = np.zeros_like(img)
    if h > 1:
        dv[:-1] = cv2.absdiff(img[1:], img[:-1])   # row i holds the pair (i, i+1)
        dv[b - 1::b] = 0                            # pairs that straddle two block rows
    dh = np.zeros_like(img)
    if w > 1:
        dh[:, :-1] = cv2.absdiff(img[:, 1:], img[:, :-1])
        dh[:, b - 1::b] = 0
    sv, _ = block_sums(dv, b)
    sh, _ = block_sums(dh, b)
    ys = np.unique(np.minimum(np.arange(0, h + b, b), h))
    xs = np.unique(np.minimum(np.arange(0, w + b, b), w))
    rows = np.diff(ys).astype(np.float32)
    cols = np.diff(xs).astype(np.float32)
    nv = (rows[:, None] - 1) * cols[None, :] * c
    nh = rows[:, None] * (cols[None, :] - 1) * c
    with np.errstate(divide="ignore", invalid="ignore"):
        mv = np.where(nv > 0, sv / np.maximum(nv, 1), np.inf)
        mh = np.where(nh > 0, sh / np.maximum(nh, 1), np.inf)
    return mv.astype(np.float32), mh.astype(np.float32)


def block_sums(a: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum over channels and b x b blocks of ``a`` (uint8, H x W [x C]) via an integral
    image, and the pixel count of each block (edge blocks are partial)."""
    cv2 = _cv2()
    h, w = a.shape[:2]
    c = a.shape[2] if a.ndim == 3 else 1
    # channels side by side: one integral image of H x (W*C); a block's channel sum is
    # then an ordinary rectangle sum (int32 holds 255 * 2**23 pixels)
    ii = cv2.integral(np.ascontiguousarray(a).reshape(h, w * c), sdepth=cv2.CV_32S)
    ys = np.unique(np.minimum(np.arange(0, h + block, block), h))
    xs = np.unique(np.minimum(np.arange(0, w + block, block), w))
    g = ii[ys][:, xs * c].astype(np.int64)
    s = g[1:, 1:] - g[:-1, 1:] - g[1:, :-1] + g[:-1, :-1]
    cnt = np.diff(ys)[:, None] * np.diff(xs)[None, :] * c
    return s, cnt


def block_difference(a: np.ndarray, b_img: np.ndarray, block: int) -> np.ndarray:
    """Mean absolute difference of two frames per block (0-255 scale)."""
    cv2 = _cv2()
    s, c = block_sums(cv2.absdiff(a, b_img), block)
    return (s / c).astype(np.float32)


def block_flatness(img: np.ndarray, block: int) -> np.ndarray:
    """Per block: True when max - min over the block (all channels) is at most 2."""
    x = as3(img)
    h, w = x.shape[:2]
    nby, nbx = -(-h // block), -(-w // block)
    out = np.zeros((nby, nbx), bool)
    hf, wf = h // block, w // block
    if hf and wf:
        v = x[:hf * block, :wf * block].reshape(hf, block, wf, block, -1)
        out[:hf, :wf] = (v.max(axis=(1, 3, 4)).astype(np.int16) - v.min(axis=(1, 3, 4))) <= 2
    return out


def per_block_mean(d: np.ndarray, n: int, block: int) -> np.ndarray:
    """Mean of ``d`` (k x L) over consecutive runs of ``block`` along L (last run partial)."""
    k, length = d.shape
    pad = np.full((k, n * block), np.nan, np.float32)
    pad[:, :length] = d
    return np.nanmean(pad.reshape(k, n, block), axis=2)


def grow_runs(found: np.ndarray, allowed: np.ndarray, seam_v: np.ndarray, seam_h: np.ndarray) -> np.ndarray:
    """Extend ``found`` blocks into ``allowed`` blocks joined to them by seamless edges."""
    out = found.copy()
    nby, nbx = out.shape
    link_v = allowed[:-1] & allowed[1:] & seam_v[:nby - 1]
    link_h = allowed[:, :-1] & allowed[:, 1:] & seam_h[:, :nbx - 1]
    for _ in range(nby + nbx):
        grown = out.copy()
        grown[1:] |= out[:-1] & link_v
        grown[:-1] |= out[1:] & link_v
        grown[:, 1:] |= out[:, :-1] & link_h
        grown[:, :-1] |= out[:, 1:] & link_h
        if (grown == out).all():
            break
        out = grown
    return out


def grow_raster(found: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Extend ``found`` blocks along *raster order* (left to right, a row's last block
    followed by the next row's first) through runs of ``allowed`` blocks: the shape of an
    H.264 slice, a run of macroblocks in raster order that a decoder loses and conceals as
    a whole. Returns ``found`` plus every run of consecutive ``allowed`` blocks that
    touches a ``found`` block (the runs are those of ``allowed | found``)."""
    f = found.ravel()
    a = allowed.ravel() | f
    if not f.any():
        return found.copy()
    run = np.cumsum(np.concatenate([[a[0]], a[1:] & ~a[:-1]]))   # run number of each block
    run = np.where(a, run, 0)
    hit = np.zeros(int(run.max()) + 1, bool)
    hit[run[f]] = True
    hit[0] = False
    return (hit[run] | f).reshape(found.shape)


def seams(x: np.ndarray, block: int, tol: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per block: is the edge to the block below (``seam_v``) / to the right (``seam_h``)
    seamless (mean absolute step across it at most ``tol``)?"""
    x = as3(x)
    h, w = x.shape[:2]
    nby, nbx = -(-h // block), -(-w // block)
    seam_v = np.zeros((nby, nbx), bool)
    seam_h = np.zeros((nby, nbx), bool)
    if nby > 1:
        ys = np.arange(1, nby) * block
        d = np.abs(x[ys - 1].astype(np.float32) - x[ys]).mean(axis=-1)   # (nby-1) x w
        pad = np.full((nby - 1, nbx * block), np.nan, np.float32)
        pad[:, :w] = d
        seam_v[:-1] = np.nanmean(pad.reshape(nby - 1, nbx, block), axis=2) <= tol
    if nbx > 1:
        xs = np.arange(1, nbx) * block
        d = np.abs(x[:, xs - 1].astype(np.float32) - x[:, xs]).mean(axis=-1).T   # (nbx-1) x h
        pad = np.full((nbx - 1, nby * block), np.nan, np.float32)
        pad[:, :h] = d
        seam_h[:, :-1] = (np.nanmean(pad.reshape(nbx - 1, nby, block), axis=2) <= tol).T
    return seam_v, seam_h


def blocks_to_mask(blocks: np.ndarray, shape: tuple[int, int], block: int) -> np.ndarray:
    """Per-block bool map -> per-pixel ``H x W`` mask."""
    m = np.repeat(np.repeat(blocks, block, axis=0), block, axis=1)
    return np.ascontiguousarray(m[:shape[0], :shape[1]])


def match_residual(img: np.ndarray, ref: np.ndarray, blocks: np.ndarray, block: int,
                   radius: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Per block marked in ``blocks`` (others 0): how well the best-matching patch of
    ``ref`` within ``radius`` pixels of the block's place moved by ``shift`` (x, y: the
    global motion from ``img`` to ``ref``, see :func:`global_shift`) predicts the block
    of ``img`` - the root mean square difference (0-255, channels pooled) at the best
    position (OpenCV ``matchTemplate``). Motion-compensated, so a block that merely moved
    scores low; a block that no shift of its neighbour explains (a grey patch in
    texture) scores high."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    out = np.zeros(blocks.shape, np.float32)
    a = as3(img).astype(np.float32)
    r = as3(ref).astype(np.float32)
    sx, sy = int(round(shift[0])), int(round(shift[1]))
    for by, bx in zip(*np.nonzero(blocks)):
        y0, x0 = by * block, bx * block
        y1, x1 = min(y0 + block, h), min(x0 + block, w)
        ya, yb = max(0, y0 + sy - radius), min(h, y1 + sy + radius)
        xa, xb = max(0, x0 + sx - radius), min(w, x1 + sx + radius)
        if yb - ya < y1 - y0 or xb - xa < x1 - x0:   # moved out of the frame: search in place
            ya, yb = max(0, y0 - radius), min(h, y1 + radius)
            xa, xb = max(0, x0 - radius), min(w, x1 + radius)
        tmpl = a[y0:y1, x0:x1]
        res = cv2.matchTemplate(r[ya:yb, xa:xb], tmpl, cv2.TM_SQDIFF)
        out[by, bx] = np.sqrt(max(float(res.min()), 0.0) / tmpl.size)
    return out


def global_shift(img: np.ndarray, ref: np.ndarray, max_width: int = 320) -> tuple[float, float]:
    """The dominant translation (x, y pixels) from ``img`` to ``ref``: content at ``p`` in
    ``img`` is near ``p + shift`` in ``ref`` (OpenCV ``phaseCorrelate`` on gray frames
    shrunk to at most ``max_width``; a camera pan)."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    f = min(1.0, max_width / w)
    size = (max(8, round(w * f)), max(8, round(h * f)))

    def prep(x):
        g = x if x.ndim == 2 else cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)
        return cv2.resize(g, size, interpolation=cv2.INTER_AREA).astype(np.float32)

    (dx, dy), _resp = cv2.phaseCorrelate(prep(img), prep(ref))
    return dx * w / size[0], dy * h / size[1]