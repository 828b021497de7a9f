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

* **exact**: 0 or 255 in every channel in every frame of the run, outside its
  neighbours in two, an impulse in 90% of the frames (strong) or in half (weak: scene
  content of nearly its value passed under it; only after ``dead_weak_frames``);
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
SHARE = 0.9  # "most frames": of a strong or smeared run, impulses (and outside its neighbours)


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
    """Per pixel (gray, uint8, 0-255): how far it stands out of *every* one of its 8
    neighbours - above the brightest of them, or below the darkest (0 when it is inside
    their range). A stuck pixel is an isolated impulse; a pixel of a glyph, a highlight
    or a speck larger than a pixel has neighbours at nearly its value."""
    cv2 = require("cv2", purpose="frame repair")
    g = _gray(img)
    ring = np.ones((3, 3), np.uint8)
    ring[1, 1] = 0
    # mirrored without the edge row/column itself: a pixel at the frame's edge is not its
    # own neighbour
    hi = cv2.dilate(g, ring, borderType=cv2.BORDER_REFLECT_101)
    lo = cv2.erode(g, ring, borderType=cv2.BORDER_REFLECT_101)
    return cv2.max(cv2.subtract(g, hi), cv2.subtract(lo, g))   # uint8 subtraction saturates at 0


def median_deviation(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: its gray value and its signed difference to the median of its 3x3
    neighbourhood (both int16, 0-255 scale)."""
    cv2 = require("cv2", purpose="frame repair")
    g = _gray(img)
    return g.astype(np.int16), cv2.subtract(g, cv2.medianBlur(g, 3), dtype=cv2.CV_16S)


_FIELDS = ("ref", "run", "hits", "outside", "apart", "exact", "faint", "dev_sum", "med0", "moved", "off", "sign")


class DeadPixelTracker:
    """Stuck pixels across frames (see the module docstring for the rules). Feed frames in
    order with :meth:`update`; :meth:`mask` gives the positions found given every frame
    seen so far (look-ahead frames included), :meth:`mask_in` those stuck in a given
    frame. The state of a pixel is kept while it is in a run (flat ``H*W`` arrays, worked
    on at those pixels and the new candidates only: on clean footage 0.1-3% of them)."""

    def __init__(self, cfg: DetectConfig = DetectConfig()):
        self.cfg = cfg
        self.seen = 0
        self.clip_ended = False
        self._shape: tuple[int, int] | None = None
        self._found: tuple[tuple[int, bool], np.ndarray] | None = None

    @property
    def warmup(self) -> int:
        """Frames to see before the first frame can be judged like the rest (the longest
        run a rule needs): an offline repairer holds the start of a clip back this long,
        so stuck pixels are repaired from the first frame."""
        cfg = self.cfg
        return max(cfg.dead_frames, cfg.dead_lossy_frames, cfg.dead_still_frames, cfg.dead_weak_frames)

    def _reset(self, shape: tuple[int, int]) -> None:
        n = shape[0] * shape[1]
        self._shape = shape
        self._s = {k: np.zeros(n, np.int32 if k == "dev_sum" else np.int16) for k in _FIELDS}
        self._active = np.zeros(0, np.intp)     # pixels in a run
        self._prev: np.ndarray | None = None
        self._changed = 0      # frames that differed from the one before (the clip is live)
        self.seen = 0

    def update(self, img: np.ndarray) -> None:
        cv2 = require("cv2", purpose="frame repair")
        cfg = self.cfg
        g8 = _gray(img)
        if self._shape != g8.shape:
            self._reset(g8.shape)
        if self._prev is not None and cv2.norm(self._prev, g8, cv2.NORM_INF) > 0:
            self._changed += 1
        self._prev = g8.copy()
        med8 = cv2.medianBlur(g8, 3)
        strength = cfg.dead_impulse * cfg.threshold
        exact_2d = extreme_pixels(img) > 0
        cand = (cv2.absdiff(g8, med8) > strength) | exact_2d
        idx = np.union1d(self._active, np.flatnonzero(cand))
        st = {k: v[idx] for k, v in self._s.items()}
        g = g8.reshape(-1)[idx].astype(np.int16)
        med = med8.reshape(-1)[idx].astype(np.int16)
        dev = g - med
        margin = impulse_margin(g8).reshape(-1)[idx]
        exact = exact_2d.reshape(-1)[idx]
        sign = np.sign(dev).astype(np.int16)
        impulse = np.abs(dev) > strength
        outside = margin > cfg.dead_margin
        apart = margin > cfg.dead_lossy_margin
        faint_margin = margin > cfg.dead_faint_margin * cfg.threshold
        running = st["run"] > 0
        at_value = running & (np.abs(g - st["ref"]) <= cfg.dead_value_tol)
        # a codec smears a stuck value and lets it drift: the run follows a value that
        # moved on while it stays a strong impulse of the run's sign near 0/255
        band = cfg.dead_lossy_band
        follow = (running & ~at_value & (sign == st["sign"]) & (np.abs(dev) > 2 * strength)
                  & ((g <= band) | (g >= 255 - band)))
        st["ref"] = np.where(follow, g, st["ref"])
        at_value |= follow
        # a run survives a few frames off its value (a lost block over it, a codec's
        # jump); they add no evidence
        pause = running & ~at_value & (st["off"] < cfg.dead_gap)
        go_on = at_value | pause
        hit = impulse & (sign == st["sign"]) & at_value

        def add(key, more):
            st[key] = np.where(go_on, st[key] + more, 0).astype(st[key].dtype)

        st["off"] = np.where(pause, st["off"] + 1, 0).astype(np.int16)
        add("run", at_value)
        add("hits", hit)
        add("outside", hit & outside)
        add("apart", hit & apart)
        add("exact", exact & at_value)
        add("faint", exact & at_value & faint_margin)
        add("dev_sum", np.where(hit, np.abs(dev), 0))
        moved = np.where(at_value, np.abs(med - st["med0"]), 0)
        st["moved"] = np.where(go_on, np.maximum(st["moved"], moved), 0).astype(np.int16)
        # a run starts at an impulse, or at exactly 0/255 (a stuck pixel over scene
        # content of nearly its value is no impulse then, but its run has begun)
        new = ~go_on & (impulse | exact)
        first = impulse & new
        for key, value in (("ref", g), ("sign", sign), ("med0", med), ("run", 1), ("hits", first),
                           ("outside", outside & first), ("apart", apart & first), ("exact", exact),
                           ("faint", exact & faint_margin), ("dev_sum", np.where(first, np.abs(dev), 0)),
                           ("moved", 0), ("off", 0)):
            st[key] = np.where(new, value, st[key]).astype(st[key].dtype)
        for k, v in st.items():
            self._s[k][idx] = v
        self._active = idx[st["run"] > 0]
        self.seen += 1

    def mask(self) -> np.ndarray:
        """Positions judged stuck (bool H x W) given all frames seen; empty before any."""
        if self._shape is None:
            return np.zeros((0, 0), bool)
        key = (self.seen, self.clip_ended)
        if self._found is None or self._found[0] != key:
            out = np.zeros(self._shape[0] * self._shape[1], bool)
            out[self._active[self._judge(self._active)]] = True
            self._found = (key, out.reshape(self._shape))
        return self._found[1]

    def _judge(self, idx: np.ndarray) -> np.ndarray:
        """Which of the pixels ``idx`` (flat) are stuck, given all frames seen."""
        cfg = self.cfg
        st = {k: v[idx] for k, v in self._s.items()}
        run, hits = st["run"], st["hits"]
        # the whole clip (ended: see end_clip) is shorter than the evidence wanted
        short = self.clip_ended and self.seen < self.warmup

        def frames(n: int) -> int:
            return min(n, max(MIN_FRAMES, self.seen // 2))

        # exact: an impulse in most frames (strong), or in half of them (weak: content of
        # nearly its value passed under it; needs the longest run)
        weak = (st["exact"] == run) & (2 * hits >= run) & (st["outside"] >= 2)
        strong = weak & (hits >= SHARE * run)
        band = cfg.dead_lossy_band
        lossy = ((hits >= SHARE * run) & (st["apart"] >= SHARE * run)
                 & (st["dev_sum"] >= cfg.dead_lossy_impulse * cfg.threshold * hits)
                 & ((st["ref"] <= band) | (st["ref"] >= 255 - band)))
        if short:
            # a clip shorter than the evidence wanted: half of it, while the scene changed
            return ((weak & (run >= frames(cfg.dead_frames))) | (lossy & (run >= frames(cfg.dead_lossy_frames)))) \
                & (st["moved"] >= 1) & (run > 0)
        # with the scene moving around it (its neighbourhood's median moved)
        found = (((strong & (run >= cfg.dead_frames)) | (lossy & (run >= cfg.dead_lossy_frames)))
                 & (st["moved"] >= cfg.dead_motion))
        # a neighbourhood that never changed (a static camera, a codec's skipped blocks)
        # proves less: a longer run, and only in a live clip (a still clip proves nothing)
        live = 2 * self._changed >= self.seen - 1 and self._changed > 0
        if live:
            found |= (strong | lossy) & (run >= cfg.dead_still_frames)
            found |= weak & (run >= cfg.dead_weak_frames)
            # exactly 0/255 over content of nearly its value (no impulse of dead_impulse):
            # outside all 8 neighbours by a little, nearly every frame, while they change
            faint = (st["exact"] == run) & (st["faint"] >= SHARE * run)
            found |= faint & (run >= cfg.dead_still_frames) & (st["moved"] >= 1)
        return found & (run > 0)

    def end_clip(self) -> None:
        """No frame will follow: a clip shorter than :attr:`warmup` is judged on what it
        has (runs of at least ``MIN_FRAMES`` whose neighbourhood changed)."""
        self.clip_ended = True

    def mask_in(self, img: np.ndarray) -> np.ndarray:
        """The positions of :meth:`mask` whose value in ``img`` (a frame seen, possibly
        held back) is still the stuck value: within ``dead_value_tol`` of it, or a strong
        impulse of its sign (a codec lets a stuck value drift)."""
        found = self.mask()
        if found.shape != img.shape[:2]:
            return np.zeros(img.shape[:2], bool)
        if not found.any():
            return found
        cfg = self.cfg
        idx = np.flatnonzero(found)
        g, dev = (a.reshape(-1)[idx] for a in median_deviation(img))
        drifted = (np.sign(dev) == self._s["sign"][idx]) & (np.abs(dev) > 2 * cfg.dead_impulse * cfg.threshold)
        keep = (np.abs(g - self._s["ref"][idx]) <= cfg.dead_value_tol) | drifted
        out = np.zeros(found.size, bool)
        out[idx[keep]] = True
        return out.reshape(found.shape)

    def scores(self, img: np.ndarray, dead: np.ndarray) -> np.ndarray:
        """Score of each pixel of ``dead`` (1-D, row-major): its mean deviation from its
        neighbourhood's median over the run, over ``dead_impulse`` (the per-frame
        boundary; found stuck pixels score 2-10, faint ones below 1)."""
        idx = np.flatnonzero(dead)
        mean = self._s["dev_sum"][idx] / np.maximum(self._s["hits"][idx], 1)
        return (mean / self.cfg.dead_impulse).astype(np.float32)
