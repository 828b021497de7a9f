"""Repair: time first (motion-compensated copy from neighbour frames), then space.

:func:`temporal_fill` estimates dense optical flow (OpenCV DIS) from the damaged frame to
each neighbour on a *proxy* of the frame (damaged pixels replaced by the co-located
pixels of the previous frame), throws the flow away where the proxy was used (and a
margin around it), fills those holes from the surrounding flow by normalised convolution,
and warps the neighbours into place. Each neighbour's candidate is weighted by how well
its warp matches the frame on the undamaged pixels around the hole (1 / (1 + MAE^2),
per damaged region); a candidate that
lands outside the neighbour, or on pixels of the neighbour that were damaged themselves
or only inpainted, is not used. :func:`spatial_fill` (OpenCV Telea inpainting) takes the
pixels time has nothing for. Only pixels in the mask are written. Estimates (weighted
means, interpolated frames) are rounded to uint8 by the package's one rule,
:func:`edgerestore.imageio.round_to_uint8` (half to even).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerestore.imageio import round_to_uint8


def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="frame repair")


@dataclass(frozen=True, kw_only=True)
class FillConfig:
    """Repair settings.

    ``flow_preset``: DIS preset, ``ultrafast``/``fast``/``medium`` (speed vs accuracy);
    ``flow_scale``: compute flow at this fraction of the frame size (1.0 = full size;
    0.5 is ~3x faster on 960x540 and loses little for a moving camera);
    ``margin``: pixels around the damage whose flow is not trusted (the proxy leaks into
    the patches DIS matches); ``inpaint_radius``: Telea radius for the spatial fallback.
    """

    flow_preset: str = "fast"
    flow_scale: float = 1.0
    margin: int = 8
    inpaint_radius: int = 3


_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def gray(img: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


class FlowEstimator:
    """Dense optical flow (DIS) at ``scale`` of the frame size, returned at full size."""

    def __init__(self, preset: str = "fast", scale: float = 1.0):
        if preset not in _PRESETS:
            from edgerestore.errors import InputError

            raise InputError(f"flow preset must be one of {', '.join(_PRESETS)}, got {preset!r}")
        if not 0.1 <= scale <= 1.0:
            from edgerestore.errors import InputError

            raise InputError(f"flow scale must be in [0.1, 1], got {scale!r}")
        self.preset = preset
        self.scale = scale
        self._dis = None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow ``f`` (H x W x 2, float32, x then y) with ``a(p) ~ b(p + f(p))``."""
        cv2 = _cv2()
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(_PRESETS[self.preset])
        h, w = a.shape[:2]
        if min(h, w) < 16:  # too small for DIS patches: no motion
            return np.zeros((h, w, 2), np.float32)
        if self.scale < 1.0:
            sw, sh = max(16, round(w * self.scale)), max(16, round(h * self.scale))
            a_s = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
            b_s = cv2.resize(b, (sw, sh), interpolation=cv2.INTER_AREA)
            f = self._dis.calc(a_s, b_s, None)
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
            f[..., 0] *= w / sw
            f[..., 1] *= h / sh
            return f
        return self._dis.calc(a, b, None)


def fill_field(field: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill ``field`` (H x W x C float32) where ``valid`` is False from the valid values
    around, by normalised convolution with growing Gaussian widths (smooth, fast)."""
    cv2 = _cv2()
    out = field.copy()
    hole = ~valid
    if not hole.any():
        return out
    if not valid.any():
        out[...] = 0.0
        return out
    w = valid.astype(np.float32)
    fw = field * (w[..., None] if field.ndim == 3 else w)
    todo = hole.copy()
    h_, w_ = valid.shape
    # normalised convolution at growing scales: full size with sigma 4, then on frames
    # shrunk 4x, 16x, 64x (blurred a little, enlarged back), so a large hole costs no
    # more than a small one
    for factor in (1, 4, 16, 64):
        if factor == 1:
            fs = cv2.GaussianBlur(fw, (25, 25), 4.0, borderType=cv2.BORDER_CONSTANT)
            ws = cv2.GaussianBlur(w, (25, 25), 4.0, borderType=cv2.BORDER_CONSTANT)
        else:
            sw, sh = max(1, w_ // factor), max(1, h_ // factor)
            fsm = cv2.GaussianBlur(cv2.resize(fw, (sw, sh), interpolation=cv2.INTER_AREA), (5, 5), 1.0)
            wsm = cv2.GaussianBlur(cv2.resize(w, (sw, sh), interpolation=cv2.INTER_AREA), (5, 5), 1.0)
            fs = cv2.resize(fsm, (w_, h_), interpolation=cv2.INTER_LINEAR)
            ws = cv2.resize(wsm, (w_, h_), interpolation=cv2.INTER_LINEAR)
        if fs.ndim == 2 and out.ndim == 3:
            fs = fs[..., None]
        ok = todo & (ws > 1e-3)
        if ok.any():
            ratio = fs / (np.maximum(ws, 1e-6)[..., None] if out.ndim == 3 else np.maximum(ws, 1e-6))
            out[ok] = ratio[ok]
            todo &= ~ok
        if not todo.any() or factor >= max(h_, w_):
            break
    if todo.any():  # nothing valid within reach: the mean of the valid values
        out[todo] = field[valid].mean(axis=0)
    return out


def warp(img: np.ndarray, flow: np.ndarray, *, nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``img(p + flow(p))`` and a mask of the positions that fall inside ``img``."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + flow[..., 0]
    my = gy + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = cv2.remap(img, mx, my, interp, borderMode=cv2.BORDER_REPLICATE)
    return out, inside


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    cv2 = _cv2()
    if r <= 0:
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


@dataclass
class Neighbour:
    """A frame next in time to the one repaired: ``image`` (uint8) and ``unusable`` (bool
    H x W: pixels that must not be copied - damaged, or only inpainted)."""

    image: np.ndarray
    unusable: np.ndarray


def _where(mask: np.ndarray, img: np.ndarray) -> np.ndarray:
    return mask[..., None] if img.ndim == 3 else mask


def temporal_fill(img: np.ndarray, mask: np.ndarray, neighbours: list[Neighbour], flow: FlowEstimator,
                  cfg: FillConfig = FillConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``mask`` pixels of ``img`` from motion-compensated ``neighbours``.

    Returns ``(out, filled)``: a copy of ``img`` with the filled pixels written, and the
    mask of pixels that got a value (``filled`` is a subset of ``mask``). Flow is computed
    once per neighbour on the whole frame; the rest works in a window around each
    damaged region, so the cost follows the damage, not the frame size.
    """
    cv2 = _cv2()
    out = img.copy()
    filled = np.zeros(mask.shape, bool)
    if not neighbours or not mask.any():
        return out, filled
    h, w = mask.shape
    untrusted = _dilate(mask, cfg.margin)
    proxy = img.copy()
    np.copyto(proxy, neighbours[0].image, where=_where(mask, img))
    g = gray(proxy)
    flows = [flow(g, gray(nb.image)) for nb in neighbours]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(untrusted.astype(np.uint8), connectivity=8)
    pad = 3 * cfg.margin + 8
    # regions of a pixel or two (dead pixels; dilated, at most (2*margin+3)^2): all at once
    tiny = (stats[:, 2] <= 2 * cfg.margin + 3) & (stats[:, 3] <= 2 * cfg.margin + 3)
    tiny[0] = False
    if tiny.any():
        sel = mask & tiny[labels]
        _fill_tiny(img, sel, neighbours, flows, h, w, cfg.margin + 2, out, filled)
    for lab in range(1, n):
        if tiny[lab]:
            continue
        x0, y0, bw, bh, _area = stats[lab]
        ya, yb = max(0, y0 - pad), min(h, y0 + bh + pad)
        xa, xb = max(0, x0 - pad), min(w, x0 + bw + pad)
        sl = (slice(ya, yb), slice(xa, xb))
        m = mask[sl] & (labels[sl] == lab)
        if not m.any():
            continue
        keep = ~untrusted[sl]
        gx, gy = np.meshgrid(np.arange(xa, xb, dtype=np.float32), np.arange(ya, yb, dtype=np.float32))
        patch = img[sl]
        num = np.zeros(patch.shape, np.float32)
        den = np.zeros(m.shape, np.float32)
        ring = keep & _dilate(m, 3 * cfg.margin)
        small = int(m.sum()) <= 16  # a dead pixel or two: one motion vector will do
        for nb, fl in zip(neighbours, flows):
            fr = fl[sl]
            if small:
                v = np.median(fr[keep], axis=0) if keep.any() else np.zeros(2, np.float32)
                f = np.broadcast_to(v.astype(np.float32), fr.shape)
            else:
                f = fill_field(fr, keep)
            mx = gx + f[..., 0]
            my = gy + f[..., 1]
            inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
            wimg = cv2.remap(nb.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            bad = cv2.remap(nb.unusable.astype(np.uint8), mx, my, cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_REPLICATE)
            usable = inside & (bad == 0)
            # how well this neighbour predicts the frame around the hole (mean absolute
            # error on the trusted ring): the weight of its candidate in the hole
            rg = ring & usable
            if rg.any():
                e = cv2.absdiff(wimg, patch)[rg]
                err = float(e.mean())
            else:
                err = 10.0
            wgt = np.where(usable & m, 1.0 / (err * err + 1.0), 0.0).astype(np.float32)
            num += _where(wgt, patch) * wimg.astype(np.float32)
            den += wgt
        got = m & (den > 0)
        if got.any():
            est = num / np.maximum(_where(den, patch), 1e-12)
            o = out[sl]
            o[got] = round_to_uint8(est[got])
            filled[sl] |= got
    return out, filled


def _fill_tiny(img, sel, neighbours, flows, h, w, reach, out, filled) -> None:
    """Isolated pixels: the motion is the median of the flow ``reach`` pixels away in the
    four directions (outside the untrusted margin); usable neighbour values are averaged."""
    cv2 = _cv2()
    ys, xs = np.nonzero(sel)
    acc = np.zeros((len(ys),) + img.shape[2:], np.float32)
    cnt = np.zeros(len(ys), np.float32)
    for nb, fl in zip(neighbours, flows):
        samples = []
        for dy, dx in ((-reach, 0), (reach, 0), (0, -reach), (0, reach)):
            samples.append(fl[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)])
        f = np.median(np.stack(samples), axis=0)                        # N x 2
        mx = (xs + f[:, 0]).astype(np.float32)[:, None]
        my = (ys + f[:, 1]).astype(np.float32)[:, None]
        inside = ((mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1))[:, 0]
        val = cv2.remap(nb.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        bad = cv2.remap(nb.unusable.astype(np.uint8), mx, my, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_REPLICATE)
        ok = inside & (bad.reshape(-1) == 0)
        val = val.reshape((len(ys),) + img.shape[2:]).astype(np.float32)
        acc[ok] += val[ok]
        cnt[ok] += 1
    got = cnt > 0
    if got.any():
        est = acc[got] / (cnt[got][:, None] if img.ndim == 3 else cnt[got])
        out[ys[got], xs[got]] = round_to_uint8(est)
        filled[ys[got], xs[got]] = True


def thin_parts(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The pixels of ``mask`` in parts at most ``width`` pixels thick (isolated pixels,
    thin lines): what a morphological opening with a ``(width+1)`` square removes. These
    go to :func:`spatial_fill`: flow cannot be estimated at a single pixel, and the
    pixels around predict it better (the issue measured the temporal fill of stuck pixels
    6.5 dB below Telea given the same mask)."""
    cv2 = _cv2()
    if not mask.any():
        return mask.copy()
    k = np.ones((width + 1, width + 1), np.uint8)
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    return mask & ~opened


# opposite pairs among the 8 neighbours (dy, dx): vertical, horizontal, two diagonals
_PAIRS = (((-1, 0), (1, 0)), ((0, -1), (0, 1)), ((-1, -1), (1, 1)), ((-1, 1), (1, -1)))
# softness of the direction weights, on the mean absolute difference across a pair (0-255)
_DIRECTION_SOFTNESS = 4.0 / 3.0


def directional_fill(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill the pixels of ``mask`` that have an opposite pair of neighbours (above and
    below, left and right, or across a diagonal) both outside ``mask`` and inside the
    frame, from those pairs: each pair's mean, weighted by ``1 / (d + c)^2`` with ``d`` the
    mean absolute difference across the pair (over channels, 0-255 scale) and
    ``c`` = ``_DIRECTION_SOFTNESS``, so the direction along an edge or a line wins.

    Returns ``(out, filled)``: a copy of ``img`` with those pixels written (rounded by
    :func:`edgerestore.imageio.round_to_uint8`) and the mask of the pixels filled (a
    subset of ``mask``; the others - inside a larger hole, or a frame corner - are left
    for :func:`spatial_fill`'s inpainting). For isolated pixels it beats Telea given the
    same mask (``benchmarks/results/repair_kinds.md``; ``docs/repair.md``)."""
    out = img.copy()
    filled = np.zeros(mask.shape, bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return out, filled
    h, w = mask.shape
    f = img.astype(np.float32)
    if f.ndim == 2:
        f = f[..., None]
    num = np.zeros((ys.size, f.shape[2]), np.float32)
    den = np.zeros(ys.size, np.float32)
    for (ay, ax), (by, bx) in _PAIRS:
        ya, xa, yb, xb = ys + ay, xs + ax, ys + by, xs + bx
        ok = (ya >= 0) & (ya < h) & (xa >= 0) & (xa < w) & (yb >= 0) & (yb < h) & (xb >= 0) & (xb < w)
        ya, xa, yb, xb = (np.clip(v, 0, n - 1) for v, n in ((ya, h), (xa, w), (yb, h), (xb, w)))
        ok &= ~mask[ya, xa] & ~mask[yb, xb]
        a, b = f[ya, xa], f[yb, xb]
        d = np.abs(a - b).mean(axis=1)
        wgt = np.where(ok, 1.0 / (d + _DIRECTION_SOFTNESS) ** 2, 0.0).astype(np.float32)
        num += wgt[:, None] * (a + b) * 0.5
        den += wgt
    got = den > 0
    if got.any():
        est = round_to_uint8(num[got] / den[got][:, None])
        out[ys[got], xs[got]] = est if img.ndim == 3 else est[:, 0]
        filled[ys[got], xs[got]] = True
    return out, filled


def spatial_fill(img: np.ndarray, mask: np.ndarray, cfg: FillConfig = FillConfig()) -> np.ndarray:
    """Fill ``mask`` pixels of ``img`` from their surroundings: the pixels with an
    undamaged opposite pair of neighbours by :func:`directional_fill` (isolated pixels,
    one-pixel lines), the rest by OpenCV's Telea inpainting.

    A frame with no unmasked pixel has nothing to inpaint from and comes back unchanged.
    """
    cv2 = _cv2()
    if not mask.any() or mask.all():
        return img.copy()
    res, filled = directional_fill(img, mask)
    rest = mask & ~filled
    if rest.any():
        out = cv2.inpaint(res, rest.astype(np.uint8), cfg.inpaint_radius, cv2.INPAINT_TELEA)
        res[rest] = out[rest]
    return res


def interpolate(a: np.ndarray, b: np.ndarray, alphas: list[float], flow: FlowEstimator) -> list[np.ndarray]:
    """Frames between ``a`` (alpha 0) and ``b`` (alpha 1) by flow-based interpolation.

    With the flows ``f_ab`` and ``f_ba`` between the two frames, the flows from the frame
    at ``t`` are approximated as in Super SloMo (Jiang et al., 2018):
    ``f_ta = -t(1-t) f_ab + t^2 f_ba`` and ``f_tb = (1-t)^2 f_ab - t(1-t) f_ba``, and the
    frame is ``(1 - t) a(p + f_ta) + t b(p + f_tb)``.
    """
    ga, gb = gray(a), gray(b)
    fab = flow(ga, gb)
    fba = flow(gb, ga)
    out = []
    for t in alphas:
        f_ta = -t * (1.0 - t) * fab + t * t * fba
        f_tb = (1.0 - t) ** 2 * fab - t * (1.0 - t) * fba
        wa, _ = warp(a, f_ta)
        wb, _ = warp(b, f_tb)
        mix = (1.0 - t) * wa.astype(np.float32) + t * wb.astype(np.float32)
        out.append(round_to_uint8(mix))
    return out
