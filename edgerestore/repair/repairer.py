"""The stateful frame repairer: frames in, repaired frames out, a small look-ahead.

::

    rep = FrameRepairer()                      # RepairConfig() defaults
    for img, ts in frames:                     # uint8 BGR/gray, timestamp in seconds
        for out in rep.push(img, ts):
            use(out.image)                     # RepairedFrame: image, index, timestamp, info
    for out in rep.flush():
        use(out.image)
    print(rep.report())

A frame comes out once ``lookahead`` later frames have arrived (its "next" neighbour and
the evidence for stuck pixels), or at :meth:`FrameRepairer.flush`; with ``lookahead`` >= 1
the first frames of a clip also wait until the stuck-pixel tracker has seen its
``warmup`` frames (24), so stuck pixels are repaired from the first frame. For each frame:

1. detect: packet-loss blocks (vs the repaired previous frame and the next frame), dead
   pixels (stuck over frames), a frozen frame (equal to the previous input), dropped
   frames before it (timestamp gap), plus the user's mask if one was given;
2. repair the union of the masks: isolated pixels and thin lines by spatial inpainting
   (their own frame predicts them best), the rest by motion-compensated copy from the
   previous (repaired) and next frames, then spatial inpainting for what time cannot
   give;
3. every pixel outside the mask is returned exactly as it came in.

Frozen frames are reported; with ``fill_frozen=True`` a run of frozen frames (each a
repeat of the one before) is held back until the first frame after it arrives, and each
frame of the run is remade by interpolation between the last output before the run and
that frame (so is a run of frames the user's mask covers whole). With ``lookahead=0``
nothing is held back: frozen frames come out as they came in.
Dropped frames are reported; with
``fill_dropped=True`` (offline use) the missing frames are made by flow interpolation
between the repaired frames on either side of the gap and emitted in order.

Each step is one method of :class:`FrameRepairer` (``_note_gap``, ``_detect``,
``_fill_run`` (frozen runs) or ``_repair``, ``_fill_gap``, called in that order by ``_emit``); what
they count goes into a :class:`~edgerestore.repair.report.RepairCounts`.

Why one module: the steps share the state of the stream - the frames held back, the
previous input and output and the quality of its pixels, the grid and the stuck-pixel
trackers, a frozen run being filled - and the order in which :meth:`FrameRepairer._emit`
updates it; split, each part would reach into the others' state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.repair.dead_pixels import DeadPixelTracker
from edgerestore.repair.detect import DetectConfig, detect_packet_loss
from edgerestore.repair.fill import (
    FillConfig, FlowEstimator, Neighbour, interpolate, spatial_fill, temporal_fill, thin_parts,
)
from edgerestore.repair.frame_timing import GapDetector, is_frozen
from edgerestore.repair.grid import GridTracker
from edgerestore.repair.masks import MaskSource
from edgerestore.repair.report import RepairCounts

# quality of each output pixel, used to decide what may be copied to the next frame
_ORIGINAL, _TEMPORAL, _SPATIAL = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class RepairConfig:
    """What :class:`FrameRepairer` does.

    ``lookahead``: frames held back to see the future (0: causal, lowest latency, no
    "next" neighbour, stuck pixels found only after enough frames; 1: the default, and
    the start of a clip is held until the stuck-pixel evidence is in: 24 frames, once).
    ``detect``: which kinds to look for, any of
    ``packet_loss``, ``dead_pixels``, ``frozen``, ``dropped``. ``fill_dropped``: emit
    interpolated frames for timestamp gaps (offline only; see the module docstring);
    ``fill_frozen``: remake the frames of a frozen run (k repeats) by interpolation
    between the last output before the run and the first frame after it, at
    ``j/(k+1)``; the run is held back until that frame arrives (offline use: it adds
    latency; with ``lookahead=0`` frozen frames are only reported);
    ``max_fill``: at most this many frames per gap are made, and a frozen run is held
    back for at most this many frames. ``fps``: the nominal frame
    rate for gap detection (None: the median step of the timestamps seen).
    ``thresholds``/``fill``: detection thresholds and repair settings.
    """

    lookahead: int = 1
    detect: tuple[str, ...] = ("packet_loss", "dead_pixels", "frozen", "dropped")
    fill_dropped: bool = False
    fill_frozen: bool = False
    max_fill: int = 25
    fps: float | None = None
    thresholds: DetectConfig = field(default_factory=DetectConfig)
    fill: FillConfig = field(default_factory=FillConfig)

    def __post_init__(self):
        kinds = {"packet_loss", "dead_pixels", "frozen", "dropped"}
        bad = [k for k in self.detect if k not in kinds]
        if bad:
            raise InputError(f"unknown damage kind(s) {', '.join(bad)}; known: {', '.join(sorted(kinds))}")
        if not 0 <= self.lookahead <= 8:
            raise InputError(f"lookahead must be 0..8 frames, got {self.lookahead}")
        if self.max_fill < 0:
            raise InputError(f"max_fill must be >= 0, got {self.max_fill}")


@dataclass(kw_only=True)
class RepairedFrame:
    """One output frame: ``image`` (uint8, the input's shape), the input ``index`` and
    ``timestamp`` (for an interpolated frame: ``index`` None, timestamp in the gap),
    ``info``: what was found and done; ``mask``: the repaired pixels (None: none);
    ``kinds``: the pixels found per damage kind (``packet_loss``, ``dead_pixels``,
    ``masked``), only the kinds found in this frame."""

    image: np.ndarray
    index: int | None
    timestamp: float | None
    info: dict[str, Any]
    mask: np.ndarray | None = None
    interpolated: bool = False
    kinds: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------------------- repairer
@dataclass
class _Pending:
    """An input frame waiting for its look-ahead."""

    image: np.ndarray
    index: int
    timestamp: float | None
    missing_before: int
    user_mask: np.ndarray | None
    corrupt: bool | None = None  # the decoder's word on damage (None: not known)


@dataclass
class _Found:
    """What detection found in one frame (``H x W`` bool masks)."""

    frozen: bool
    packet_loss: np.ndarray | None  # the lost blocks; None when none were found
    dead: np.ndarray
    user: np.ndarray | None         # the user's mask, when it marks anything
    mask: np.ndarray                # the union: the pixels to repair

    def kinds(self) -> dict[str, np.ndarray]:
        """The masks per damage kind found, for :attr:`RepairedFrame.kinds`."""
        kinds = {}
        if self.packet_loss is not None:
            kinds["packet_loss"] = self.packet_loss
        if self.dead.any():
            kinds["dead_pixels"] = self.dead
        if self.user is not None:
            kinds["masked"] = self.user
        return kinds


class FrameRepairer:
    """Detect and repair damaged frames, one at a time (see the module docstring).

    ``config``: a :class:`RepairConfig`; ``mask``: a :class:`MaskSource` or what it takes
    (file, folder, array, list of arrays) for damage the detectors cannot see.
    """

    def __init__(self, config: RepairConfig | None = None, *, mask=None):
        self.config = config or RepairConfig()
        self.mask_source = mask if (mask is None or isinstance(mask, MaskSource)) else MaskSource(mask)
        self._flow = FlowEstimator(self.config.fill.flow_preset, self.config.fill.flow_scale)
        self.reset()

    def reset(self) -> None:
        """Forget all frames and counts (a new clip)."""
        self._pending: deque[_Pending] = deque()
        self._dead = DeadPixelTracker(self.config.thresholds)
        self._grid = GridTracker(self.config.thresholds.block)
        self._gaps = GapDetector(self.config.fps, self.config.thresholds.gap_factor)
        self._prev_raw: np.ndarray | None = None     # previous input frame
        self._prev_out: np.ndarray | None = None     # previous output frame (repaired)
        self._prev_quality: np.ndarray | None = None
        self._prev_ts: float | None = None
        self._shape: tuple[int, ...] | None = None
        self._count = 0
        self._counts = RepairCounts()
        self._run_frames: deque[np.ndarray] = deque()   # made for the rest of a lost run

    @property
    def counts(self) -> RepairCounts:
        """What was found and done since the last :meth:`reset` (see :meth:`report`)."""
        return self._counts

    # -- input ----------------------------------------------------------------------
    def _check(self, img: np.ndarray, index: int) -> np.ndarray:
        img = np.asarray(img)
        if img.dtype != np.uint8:
            raise InputError(f"frame {index}: repair works on uint8 frames, got {img.dtype}")
        if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or img.size == 0:
            raise InputError(f"frame {index}: expected H x W or H x W x 3, got shape {img.shape}")
        if self._shape is None:
            self._shape = img.shape
        elif img.shape != self._shape:
            raise InputError(f"frame {index} is {img.shape} but earlier frames were {self._shape}; "
                             "repair needs frames of one size (resize them first)")
        return img

    def push(self, img: np.ndarray, timestamp: float | None = None, index: int | None = None,
             corrupt: bool | None = None) -> list[RepairedFrame]:
        """Add the next input frame; returns the frames now ready (0, 1 or more).
        ``corrupt``: what the decoder knows (``Frame.corrupt``): False (decoded cleanly)
        skips the packet-loss detector on this frame, which then only looks at frames
        decoded from damaged data; None (not known): every frame is looked at."""
        idx = self._count if index is None else int(index)
        img = self._check(img, idx)
        self._count += 1
        missing = self._gaps.step(timestamp) if "dropped" in self.config.detect else 0
        user = self.mask_source.get(idx, img.shape[:2]) if self.mask_source is not None else None
        if "dead_pixels" in self.config.detect:
            self._dead.update(img)
        self._pending.append(_Pending(img, idx, timestamp, missing, user, corrupt))
        out: list[RepairedFrame] = []
        while (len(self._pending) > self.config.lookahead and not self._holding_run()
               and not self._warming_up()):
            out += self._emit()
        return out

    def _warming_up(self) -> bool:
        """Offline (``lookahead`` > 0), the first frames wait until the dead-pixel tracker
        has seen ``warmup`` frames, so stuck pixels are repaired from the first frame; live
        (``lookahead`` 0) they are not held, and stuck pixels are found later."""
        return (self.config.lookahead > 0 and "dead_pixels" in self.config.detect
                and self._dead.seen < self._dead.warmup)

    def flush(self) -> list[RepairedFrame]:
        """The frames still held back (call at the end of the clip)."""
        out: list[RepairedFrame] = []
        self._dead.end_clip()
        while self._pending:
            out += self._emit()
        return out

    def repair_clip(self, frames: Sequence[np.ndarray], timestamps: Sequence[float] | None = None
                    ) -> list[RepairedFrame]:
        """All frames of a clip at once (a convenience over push/flush)."""
        out: list[RepairedFrame] = []
        for i, f in enumerate(frames):
            out += self.push(f, None if timestamps is None else timestamps[i])
        return out + self.flush()

    # -- one frame ------------------------------------------------------------------
    def _emit(self) -> list[RepairedFrame]:
        """The oldest pending frame, repaired, after the frames made for the gap before it."""
        cur = self._pending.popleft()
        nxt = self._pending[0] if self._pending else None
        info: dict[str, Any] = {"index": cur.index}
        self._note_gap(cur, info)
        found = self._detect(cur, nxt, info)
        remade = self._fill_run(cur, found, info)
        if remade is None:
            out, quality = self._repair(cur, nxt, found.mask, info)
            mask = found.mask
        else:
            out, mask = remade, np.ones(found.mask.shape, bool)
            quality = np.full(mask.shape, _TEMPORAL, np.uint8)
        results = self._fill_gap(cur, out)
        self._counts.frames += 1
        self._prev_raw = cur.image
        self._prev_out = out
        self._prev_quality = quality
        self._prev_ts = cur.timestamp
        results.append(RepairedFrame(image=out, index=cur.index, timestamp=cur.timestamp, info=info,
                                     mask=mask if mask.any() else None, interpolated=False,
                                     kinds=found.kinds()))
        return results

    def _note_gap(self, cur: _Pending, info: dict[str, Any]) -> None:
        """Report the frames dropped before ``cur`` (a timestamp gap)."""
        if cur.missing_before:
            self._counts.gaps.append({"before_frame": cur.index, "missing": cur.missing_before,
                                      "timestamp": cur.timestamp})
            info["dropped_before"] = cur.missing_before

    def _dead_pixels_in(self, img: np.ndarray) -> np.ndarray:
        """The tracked dead positions still at their stuck value in ``img`` (``H x W`` bool)."""
        return self._dead.mask_in(img)

    def _detect(self, cur: _Pending, nxt: _Pending | None, info: dict[str, Any]) -> _Found:
        """Frozen frame, packet-loss blocks, dead pixels and the user's mask of ``cur``."""
        cfg, counts = self.config, self._counts
        img = cur.image
        h, w = img.shape[:2]
        th = cfg.thresholds
        frozen = "frozen" in cfg.detect and is_frozen(img, self._prev_raw, th.frozen_tol, th.frozen_step)
        if frozen:
            counts.frozen_frames.append(cur.index)
        info["frozen"] = frozen

        mask = np.zeros((h, w), bool)
        packet_loss = None
        n_blocks = 0
        if "packet_loss" in cfg.detect and cur.corrupt is not False:
            neighbours = [x for x in (self._prev_out, nxt.image if nxt else None) if x is not None]
            phase = self._grid.update(img)         # the macroblock grid, from the damage so far
            blocks = detect_packet_loss(img, neighbours, cfg.thresholds, phase=phase,
                                        previous_repaired=nxt is None and self._prev_out is not None)
            n_blocks = blocks.count
            if n_blocks:
                packet_loss = blocks.mask
                mask |= blocks.mask
                counts.add_packet_loss(blocks)
        info["packet_loss_blocks"] = n_blocks

        dead = np.zeros((h, w), bool)
        if "dead_pixels" in cfg.detect:
            dead = self._dead_pixels_in(img)
            if dead.any():
                counts.add_dead_pixels(dead, self._dead.scores(img, dead))
            mask |= dead
        info["dead_pixels"] = int(dead.sum())

        user = cur.user_mask if cur.user_mask is not None and cur.user_mask.any() else None
        if user is not None:
            mask |= user
            counts.add_user_mask(user)
        info["masked_pixels"] = 0 if cur.user_mask is None else int(cur.user_mask.sum())
        return _Found(frozen=frozen, packet_loss=packet_loss, dead=dead, user=user, mask=mask)

    def _next_unusable(self, nxt: _Pending, cur: np.ndarray, cur_mask: np.ndarray) -> np.ndarray:
        """A guess of the next frame's damage (its own detection needs its own next
        frame): its flat/smeared blocks that differ from the current frame (where the
        current frame is damaged: from the repaired previous frame) and break the image
        at their border, its dead pixels, the user's mask for it."""
        bad = np.zeros(nxt.image.shape[:2], bool)
        if "packet_loss" in self.config.detect:
            ref = cur
            if cur_mask.any() and self._prev_out is not None:
                ref = cur.copy()
                np.copyto(ref, self._prev_out, where=cur_mask[..., None] if cur.ndim == 3 else cur_mask)
            bad |= detect_packet_loss(nxt.image, [ref], self.config.thresholds, phase=self._grid.phase).mask
        if "dead_pixels" in self.config.detect:
            bad |= self._dead_pixels_in(nxt.image)
        if nxt.user_mask is not None:
            bad |= nxt.user_mask
        return bad

    def _repair(self, cur: _Pending, nxt: _Pending | None, mask: np.ndarray, info: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray]:
        """Repair ``mask`` in ``cur``: from the neighbour frames (time), then inpainting
        (space). Returns the image and the quality of each pixel (``_TEMPORAL``, ...)."""
        img = cur.image
        quality = np.zeros(img.shape[:2], np.uint8)
        out = img
        n_mask = int(mask.sum())
        if n_mask:
            cfg = self.config
            nbs: list[Neighbour] = []
            if self._prev_out is not None:
                nbs.append(Neighbour(self._prev_out, self._prev_quality >= _SPATIAL))
            if nxt is not None:
                nbs.append(Neighbour(nxt.image, self._next_unusable(nxt, img, mask)))
            if mask.all():
                self._counts.whole_frames_damaged += 1
            if mask.mean() > 0.5 and self._prev_out is not None and nxt is not None:
                # most of the frame is lost: too little left to estimate its motion from,
                # so interpolate it from the two neighbours (flow between them)
                mid = interpolate(self._prev_out, nxt.image, [0.5], self._flow)[0]
                out = img.copy()
                out[mask] = mid[mask]
                filled = mask.copy()
            else:
                # isolated pixels and thin lines: their neighbours in the same frame predict
                # them better than a flow that cannot be estimated at a single pixel
                thin = thin_parts(mask)
                out, filled = temporal_fill(img, mask & ~thin, nbs, self._flow, cfg.fill)
            rest = mask & ~filled
            if rest.any():
                out = spatial_fill(out, rest, cfg.fill)
            unrepaired = int(rest.sum()) if mask.all() and not filled.any() else 0
            quality[filled] = _TEMPORAL
            quality[rest] = _SPATIAL
            temporal, spatial = int(filled.sum()), int(rest.sum()) - unrepaired
            self._counts.add_repair(temporal, spatial, unrepaired)
            info.update(temporal_pixels=temporal, spatial_pixels=spatial, unrepaired_pixels=unrepaired)
        info["repaired_pixels"] = n_mask
        return out, quality

    def _fill_gap(self, cur: _Pending, out: np.ndarray) -> list[RepairedFrame]:
        """With ``fill_dropped``: the frames dropped before ``cur``, interpolated between
        the previous output and ``out`` (``cur`` repaired), at most ``max_fill``."""
        cfg = self.config
        if not (cur.missing_before and cfg.fill_dropped and self._prev_out is not None):
            return []
        k = min(cur.missing_before, cfg.max_fill)
        alphas = [(j + 1) / (cur.missing_before + 1) for j in range(k)]
        t0, t1 = self._prev_ts, cur.timestamp
        made = []
        for alpha, image in zip(alphas, interpolate(self._prev_out, out, alphas, self._flow)):
            ts = None if t0 is None or t1 is None else t0 + alpha * (t1 - t0)
            made.append(RepairedFrame(image=image, index=None, timestamp=ts,
                                      info={"interpolated": True, "before_frame": cur.index},
                                      mask=None, interpolated=True))
        self._counts.dropped_filled += k
        return made

    def _lost_whole(self, p: _Pending, before: np.ndarray | None) -> bool:
        """``p`` holds none of its own content: the user's mask covers all of it, or (with
        ``fill_frozen``) it repeats ``before``, the input frame before it."""
        if p.user_mask is not None and p.user_mask.all():
            return True
        cfg = self.config
        th = cfg.thresholds
        return cfg.fill_frozen and "frozen" in cfg.detect and is_frozen(p.image, before, th.frozen_tol, th.frozen_step)

    def _lost_run(self, frames: list[_Pending]) -> int:
        """How many of ``frames`` (consecutive, the first one following the last frame
        emitted) are lost as a whole, one after the other from the first (a frozen run:
        each repeats the one before)."""
        k, before = 0, self._prev_raw
        for p in frames:
            if not self._lost_whole(p, before):
                break
            k, before = k + 1, p.image
        return k

    def _holding_run(self) -> bool:
        """Hold the pending frames back: they are all lost as a whole (a frozen run, say)
        and the frame after the run, which the fill needs, has not arrived yet. Never with
        ``lookahead=0`` (no latency added), nor beyond ``max_fill`` frames held."""
        if (self.config.lookahead == 0 or self._run_frames or self._prev_out is None
                or len(self._pending) > self.config.max_fill):
            return False
        return self._lost_run(list(self._pending)) == len(self._pending)

    def _fill_run(self, cur: _Pending, found: _Found, info: dict[str, Any]) -> np.ndarray | None:
        """The content of ``cur`` when it belongs to a run of k frames lost as a whole
        (frozen with ``fill_frozen``, or all masked) and the first good frame after the run
        is here: frame j of the run (0-based) is the flow interpolation at ``(j+1)/(k+1)``
        between the last output before the run and that frame, all k made at once. None:
        ``cur`` is not such a frame (or the run has no end here: live mode, end of clip,
        a run longer than ``max_fill``), and is repaired as usual."""
        if not self._run_frames:
            if self._prev_out is None or not self._lost_whole(cur, self._prev_raw):
                return None
            k = self._lost_run([cur, *self._pending])
            if k > len(self._pending):           # no good frame after the run here
                return None
            after = self._pending[k - 1]
            alphas = [(j + 1) / (k + 1) for j in range(k)]
            self._run_frames.extend(interpolate(self._prev_out, after.image, alphas, self._flow))
        out = self._run_frames.popleft()
        if found.frozen:
            self._counts.frozen_filled += 1
            info["frozen_filled"] = True
        else:
            n = out.shape[0] * out.shape[1]
            self._counts.whole_frames_damaged += 1
            self._counts.add_repair(n, 0, 0)
            info.update(temporal_pixels=n, spatial_pixels=0, unrepaired_pixels=0, repaired_pixels=n)
        return out

    # -- report -----------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Counts per damage kind since the last :meth:`reset` (JSON-ready; see
        :meth:`RepairCounts.report`)."""
        return self._counts.report()
