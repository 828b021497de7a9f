"""Dead (stuck) and hot pixels: positions whose value stays put, frame after frame, while
standing out of their 3x3 neighbourhood. Frames are uint8 ``H x W x 3`` BGR or ``H x W``
gray; thresholds on the 0-255 scale in :class:`~edgerestore.repair.detect.DetectConfig`
(``docs/repair.md`` gives the measurements behind them).

The evidence is a **run** per pixel: the frames in which its gray value stays within
``dead_value_tol`` of the value it had when the run began (or drifts while staying a
strong impulse of the run's sign near 0/255: a codec smears and moves a stuck value; a
run also survives ``dead_gap`` frames off its value: a lost block over it). A run counts
the frames in which the pixel deviates from the median of its 3x3 neighbourhood by more
than ``dead_impulse`` with the run's sign (an impulse), those in which it also lies
outside the range of *all* 8 neighbours by more than ``dead_margin`` or
``dead_lossy_margin`` (not part of a larger bright/dark structure: a glyph, a logo), the
mean size of the deviation, and how far the median of its neighbourhood moved. Stuck:

* **exact**: 0 or 255 in every channel in every frame of the run, an impulse in at least
  half the frames, outside its neighbours in two;
* **smeared** (after a lossy re-encode): a value within ``dead_lossy_band`` of 0/255, an
  impulse in 90% of the frames, outside its neighbours by ``dead_lossy_margin`` in 90%,
  a mean deviation of ``dead_lossy_impulse``;
* lasting ``dead_frames`` (exact) or ``dead_lossy_frames`` (smeared) while the
  neighbourhood's median moved by ``dead_motion``, or ``dead_still_frames`` whatever
  it did (a static camera; not in a still clip, where most frames equal the one before:
  a still clip proves nothing);
* or **faint**: exactly 0/255 over content of nearly its value, outside its 8
  neighbours by ``dead_faint_margin`` in 90% of ``dead_still_frames`` frames while they
  change.

A clip shorter than :attr:`DeadPixelTracker.warmup` is judged at its end
(:meth:`DeadPixelTracker.end_clip`) on runs of half the clip, at least ``MIN_FRAMES``,
whose neighbourhood changed at all. :meth:`DeadPixelTracker.mask_in` gives the positions found
whose value in a given frame is still the stuck one, so a frame held back (the
repairer's start-up hold of ``warmup`` frames) is repaired with the evidence of the
frames after it.
"""

from __future__ import annotations

import numpy as np

from edgerestore._lazy import require
from edgerestore.repair.detect import DetectConfig

MIN_FRAMES = 4  # the fewest frames that can make a run count (a clip shorter than dead_frames)
LOSSY_SHARE = 0.9  # share of a smeared run's frames that must be impulses, and outside by dead_lossy_margin


def _gray(img: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", purpose="frame repair")
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


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
    their range). A stuck pixel is an isolated impulse; a pixel of a glyph, a highlight
    or a speck larger than a pixel has neighbours at nearly its value."""
    cv2 = require("cv2", purpose="frame repair")
    g = _gray(img).astype(np.float32)
    ring = np.ones((3, 3), np.uint8)
    ring[1, 1] = 0
    # mirrored without the edge row/column itself: a pixel at the frame's edge is not its
    # own neighbour
    hi = cv2.dilate(g, ring, borderType=cv2.BORDER_REFLECT_101)
    lo = cv2.erode(g, ring, borderType=cv2.BORDER_REFLECT_101)
    return np.maximum(np.maximum(g - hi, lo - g), 0.0)


def median_deviation(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: its gray value and its signed difference to the median of its 3x3
    neighbourhood (both int16, 0-255 scale)."""
    cv2 = require("cv2", purpose="frame repair")
    g = _gray(img)
    gi = g.astype(np.int16)
    return gi, gi - cv2.medianBlur(g, 3).astype(np.int16)


class DeadPixelTracker:
    """Stuck pixels across frames (see the module docstring for the rules). Feed frames in
    order with :meth:`update`; :meth:`mask` gives the positions found given every frame
    seen so far (look-ahead frames included), :meth:`mask_in` those stuck in a given
    frame. State is a few ``H x W`` arrays (int16), updated in whole-frame operations."""

    def __init__(self, cfg: DetectConfig = DetectConfig()):
        self.cfg = cfg
        self.seen = 0
        self.clip_ended = False
        self._shape: tuple[int, int] | None = None

    @property
    def warmup(self) -> int:
        """Frames to see before the first frame can be judged like the rest (the longest
        run a rule needs): an offline repairer holds the start of a clip back this long,
        so stuck pixels are repaired from the first frame."""
        return max(self.cfg.dead_frames, self.cfg.dead_lossy_frames, self.cfg.dead_still_frames)

    def _reset(self, shape: tuple[int, int]) -> None:
        z = lambda dt=np.int16: np.zeros(shape, dt)  # noqa: E731
        self._shape = shape
        self._ref, self._sign, self._run, self._hits = z(), z(np.int8), z(), z()
        self._outside, self._apart, self._exact, self._dev_sum = z(), z(), z(), z(np.int32)
        self._faint = z()
        self._med0, self._moved, self._off = z(), z(), z()
        self._prev: np.ndarray | None = None
        self._changed = 0      # frames that differed from the one before (the clip is live)
        self.seen = 0

    def update(self, img: np.ndarray) -> None:
        cfg = self.cfg
        g, dev = median_deviation(img)
        if self._shape != g.shape:
            self._reset(g.shape)
        med = g - dev
        if self._prev is not None and np.any(self._prev != g):
            self._changed += 1
        self._prev = g
        sign = np.sign(dev).astype(np.int8)
        impulse = np.abs(dev) > cfg.dead_impulse * cfg.threshold
        margin = impulse_margin(img)
        outside = margin > cfg.dead_margin
        apart = margin > cfg.dead_lossy_margin
        exact = extreme_pixels(img) > 0
        at_value = (self._run > 0) & (np.abs(g - self._ref) <= cfg.dead_value_tol)
        # a codec smears a stuck value and lets it drift: the run follows a value that
        # moved on while it stays a strong impulse of the run's sign near 0/255
        band = cfg.dead_lossy_band
        follow = ((self._run > 0) & ~at_value & (sign == self._sign)
                  & (np.abs(dev) > 2 * cfg.dead_impulse * cfg.threshold) & ((g <= band) | (g >= 255 - band)))
        if follow.any():
            self._ref[follow] = g[follow]
            at_value |= follow
        # a run survives a few frames off its value (a lost block over it, a codec's
        # jump); they add no evidence
        pause = (self._run > 0) & ~at_value & (self._off < cfg.dead_gap)
        self._off = np.where(pause, self._off + 1, 0).astype(np.int16)
        go_on = at_value | pause
        hit = impulse & (sign == self._sign) & at_value
        self._run = np.where(go_on, self._run + at_value, 0).astype(np.int16)
        self._hits = np.where(go_on, self._hits + hit, 0).astype(np.int16)
        self._outside = np.where(go_on, self._outside + (hit & outside), 0).astype(np.int16)
        self._apart = np.where(go_on, self._apart + (hit & apart), 0).astype(np.int16)
        self._exact = np.where(go_on, self._exact + (exact & at_value), 0).astype(np.int16)
        faint_margin = margin > cfg.dead_faint_margin * cfg.threshold
        faint = exact & at_value & faint_margin
        self._faint = np.where(go_on, self._faint + faint, 0).astype(np.int16)
        self._dev_sum = np.where(go_on, self._dev_sum + np.where(hit, np.abs(dev), 0), 0)
        moved = np.where(at_value, np.abs(med - self._med0), 0)
        self._moved = np.where(go_on, np.maximum(self._moved, moved), 0).astype(np.int16)
        # a run starts at an impulse, or at exactly 0/255 (a stuck pixel over scene
        # content of nearly its value is no impulse then, but its run has begun)
        new = ~go_on & (impulse | exact)
        if new.any():
            self._ref[new], self._sign[new], self._med0[new] = g[new], sign[new], med[new]
            first = impulse[new]
            self._run[new], self._hits[new] = 1, first
            self._outside[new], self._apart[new] = outside[new] & first, apart[new] & first
            self._exact[new] = exact[new]
            self._faint[new] = (exact & faint_margin)[new]
            self._dev_sum[new] = np.where(first, np.abs(dev)[new], 0)
            self._moved[new] = 0
        self.seen += 1

    def mask(self) -> np.ndarray:
        """Positions judged stuck (bool H x W) given all frames seen; empty before any."""
        if self._shape is None:
            return np.zeros((0, 0), bool)
        cfg = self.cfg
        run, hits = self._run, self._hits
        # the whole clip (ended: see end_clip) is shorter than the evidence wanted
        short = self.clip_ended and self.seen < self.warmup

        def frames(n: int) -> int:
            return min(n, max(MIN_FRAMES, self.seen // 2)) if short else n

        exact = (self._exact == run) & (2 * hits >= run) & (self._outside >= 2)
        band = cfg.dead_lossy_band
        lossy = ((hits >= LOSSY_SHARE * run) & (self._apart >= LOSSY_SHARE * run)
                 & (self._dev_sum >= cfg.dead_lossy_impulse * cfg.threshold * hits)
                 & ((self._ref <= band) | (self._ref >= 255 - band)))
        # with the scene moving around it (its neighbourhood changed during the run; in a
        # clip too short for dead_still_frames, changed at all)
        motion = 1 if short else cfg.dead_motion
        found = (((exact & (run >= frames(cfg.dead_frames))) | (lossy & (run >= frames(cfg.dead_lossy_frames))))
                 & (self._moved >= motion))
        # a neighbourhood that never changed (a static camera, a codec's skipped blocks)
        # proves less: a longer run, and only in a live clip (a still clip proves nothing)
        live = 2 * self._changed >= self.seen - 1 and self._changed > 0
        if live and not short:
            found |= (exact | lossy) & (run >= cfg.dead_still_frames)
            # exactly 0/255 over content of nearly its value (no impulse of dead_impulse):
            # outside all 8 neighbours by a little, nearly every frame, while they change
            faint = (self._exact == run) & (10 * self._faint >= 9 * run)
            found |= faint & (run >= cfg.dead_still_frames) & (self._moved >= 1)
        return found

    def end_clip(self) -> None:
        """No frame will follow: a clip shorter than :attr:`warmup` is judged on what it
        has (runs of at least ``MIN_FRAMES`` whose neighbourhood changed)."""
        self.clip_ended = True

    def mask_in(self, img: np.ndarray) -> np.ndarray:
        """The positions of :meth:`mask` whose value in ``img`` (a frame seen, possibly
        held back) is still the stuck value: within ``dead_value_tol`` of it, or drifted
        but still a strong impulse of its sign near 0/255 (as a run follows it)."""
        found = self.mask()
        if found.shape != img.shape[:2]:
            return np.zeros(img.shape[:2], bool)
        if not found.any():
            return found
        cfg = self.cfg
        g, dev = median_deviation(img)
        band = cfg.dead_lossy_band
        # a position found stays stuck where it is still a strong impulse of its sign
        drifted = (np.sign(dev) == self._sign) & (np.abs(dev) > 2 * cfg.dead_impulse * cfg.threshold)
        return found & ((np.abs(g - self._ref) <= cfg.dead_value_tol) | drifted)

    def scores(self, img: np.ndarray, dead: np.ndarray) -> np.ndarray:
        """Score of each pixel of ``dead`` (1-D, row-major): its mean deviation from its
        neighbourhood's median over the run, over ``dead_impulse`` (the per-frame
        boundary; stuck pixels score 2-7)."""
        mean = self._dev_sum[dead] / np.maximum(self._hits[dead], 1)
        return (mean / self.cfg.dead_impulse).astype(np.float32)
