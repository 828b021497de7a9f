"""Dead (stuck) pixels: at exactly 0 or 255 (within ``extreme_tol``) in every channel,
frame after frame, standing out of their 3x3 neighbourhood (an impulse) whatever the
scene does: an impulse stands out of every one of its 8 neighbours (not only their
median), so highlights and specks of the scene are not taken for stuck pixels. Frames are uint8 ``H x W x 3`` BGR or ``H x W`` gray; thresholds on the 0-255
scale in :class:`~edgerestore.repair.detect.DetectConfig`.
"""

from __future__ import annotations

import numpy as np

from edgerestore._lazy import require
from edgerestore.repair.detect import DetectConfig


def extreme_pixels(img: np.ndarray, tol: int = 0) -> np.ndarray:
    """Codes per pixel: 1 where every channel is <= ``tol``, 2 where every channel is
    >= ``255 - tol``, else 0."""
    cv2 = require("cv2", purpose="frame repair")
    c = img.shape[2] if img.ndim == 3 else 1
    lo = cv2.inRange(img, (0,) * c, (int(tol),) * c)
    hi = cv2.inRange(img, (255 - int(tol),) * c, (255,) * c)
    return (lo & 1) + (hi & 2)


def impulse_margin(img: np.ndarray) -> np.ndarray:
    """Per pixel (gray, float32, 0-255): how far it stands out of *every* one of its 8
    neighbours - above the brightest of them, or below the darkest (0 when it is inside
    their range). A stuck pixel is an isolated impulse; a saturated highlight or a dark
    speck of the scene has neighbours at nearly its value (a median test calls those
    impulses too: on the real clips it flagged 13 positions on pedestrians and a
    highlight on carphone)."""
    cv2 = require("cv2", purpose="frame repair")
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    g = g.astype(np.float32)
    ring = np.ones((3, 3), np.uint8)
    ring[1, 1] = 0
    hi = cv2.dilate(g, ring, borderType=cv2.BORDER_REFLECT)
    lo = cv2.erode(g, ring, borderType=cv2.BORDER_REFLECT)
    return np.maximum(np.maximum(g - hi, lo - g), 0.0)


def impulse_pixels(img: np.ndarray, tol: float) -> np.ndarray:
    """Pixels that stand out of all their 8 neighbours by more than ``tol`` (see
    :func:`impulse_margin`)."""
    return impulse_margin(img) > tol


def neighbour_mean(img: np.ndarray) -> np.ndarray:
    """Per pixel: the mean of its 8 neighbours (gray, float32, 0-255)."""
    cv2 = require("cv2", purpose="frame repair")
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    g = g.astype(np.float32)
    box = cv2.boxFilter(g, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT)
    return (box - g) / 8.0


class DeadPixelTracker:
    """Stuck pixels across frames: at the same extreme value (0 or 255 in every channel)
    in each of the last frames seen, an impulse against their 3x3 neighbourhood in at
    least half of them, and stuck *while the scene moves*: the mean of its 8 neighbours
    changed by at least ``dead_motion`` during the run. A speck of a still scene (a
    static camera, heavy compression) keeps its neighbourhood too; it is scene content
    until something moves past it. Feed frames in order with :meth:`update`; :meth:`mask` gives the
    pixels judged dead, given all frames seen so far (look-ahead frames included)."""

    def __init__(self, cfg: DetectConfig = DetectConfig()):
        self.cfg = cfg
        self.seen = 0
        self._code: np.ndarray | None = None
        self._run: np.ndarray | None = None
        self._imp: np.ndarray | None = None
        self._around0: np.ndarray | None = None
        self._moved: np.ndarray | None = None
        self._active = np.zeros(0, np.intp)
        self._shape: tuple[int, int] = (0, 0)

    def update(self, img: np.ndarray) -> None:
        # state is kept for the pixels at an extreme only (usually few): every other
        # pixel has a run of 0
        code2d = extreme_pixels(img, self.cfg.extreme_tol)
        code = code2d.reshape(-1)
        if self._code is None or self._code.shape != code.shape:
            self._shape = code2d.shape
            self._code = np.zeros_like(code)
            self._run = np.zeros(code.shape, np.int32)
            self._imp = np.zeros(code.shape, np.int32)
            self._around0 = np.zeros(code.shape, np.float32)
            self._moved = np.zeros(code.shape, np.float32)
            self._active = np.zeros(0, np.intp)
            self.seen = 0
        idx = np.flatnonzero(code)
        was = np.zeros(code.shape, bool)
        was[self._active] = True
        same = (code[idx] == self._code[idx]) & was[idx]
        if idx.size:
            imp = impulse_margin(img).reshape(-1)[idx] > self.cfg.dead_impulse * self.cfg.threshold
            around = neighbour_mean(img).reshape(-1)[idx]
            run = np.where(same, self._run[idx] + 1, 1)
            imps = np.where(same, self._imp[idx] + imp, imp.astype(np.int32))
            # how far the pixel's surroundings moved on while it stayed stuck
            start = np.where(same, self._around0[idx], around)
            moved = np.where(same, np.maximum(self._moved[idx], np.abs(around - start)), 0.0)
        self._run[self._active] = 0          # pixels no longer extreme start afresh
        if idx.size:
            self._run[idx], self._imp[idx] = run, imps
            self._around0[idx], self._moved[idx] = start, moved
        self._code = code
        self._active = idx
        self.seen += 1

    def mask(self) -> np.ndarray:
        """Pixels judged dead (bool H x W); all False before any frame."""
        if self._run is None:
            return np.zeros((0, 0), bool)
        need = max(1, min(self.seen, self.cfg.dead_frames))
        idx = self._active
        run, imp = self._run[idx], self._imp[idx]
        ok = (run >= need) & (2 * imp >= np.minimum(run, need)) & (imp > 0) & (self._moved[idx] >= self.cfg.dead_motion)
        out = np.zeros(self._run.shape, bool)
        out[idx[ok]] = True
        return out.reshape(self._shape)

    def scores(self, img: np.ndarray, dead: np.ndarray) -> np.ndarray:
        """Score of each pixel of ``dead`` in ``img`` (1-D, row-major): its impulse margin
        over ``dead_impulse`` (1 = the default boundary; below 1 in this frame when the
        scene around it happens to match it)."""
        return (impulse_margin(img)[dead] / self.cfg.dead_impulse).astype(np.float32)

    def value_code(self) -> np.ndarray | None:
        """The extreme-value codes of the last frame (``H x W``, see :func:`extreme_pixels`)."""
        return None if self._code is None else self._code.reshape(self._shape)
