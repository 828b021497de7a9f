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
the evidence for stuck pixels), or at :meth:`FrameRepairer.flush`. For each frame:

1. detect: packet-loss blocks (vs the repaired previous frame and the next frame), dead
   pixels (stuck over frames), a frozen frame (equal to the previous input), dropped
   frames before it (timestamp gap), plus the user's mask if one was given;
2. repair the union of the masks: motion-compensated copy from the previous (repaired)
   and next frames, then spatial inpainting for what time cannot give;
3. every pixel outside the mask is returned exactly as it came in.

Frozen frames are reported, and replaced by interpolation with ``fill_frozen=True``.
Dropped frames are reported; with
``fill_dropped=True`` (offline use) the missing frames are made by flow interpolation
between the repaired frames on either side of the gap and emitted in order.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.repair.detect import (
    DeadPixelTracker,
    DetectConfig,
    GapDetector,
    detect_packet_loss,
    extreme_pixels,
    is_frozen,
)
from edgerestore.repair.fill import FillConfig, FlowEstimator, Neighbour, interpolate, spatial_fill, temporal_fill

log = logging.getLogger("edgerestore.repair")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")

# quality of each output pixel, used to decide what may be copied to the next frame
_ORIGINAL, _TEMPORAL, _SPATIAL = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class RepairConfig:
    """What :class:`FrameRepairer` does.

    ``lookahead``: frames held back to see the future (0: causal, lowest latency, no
    "next" neighbour; 1: the default). ``detect``: which kinds to look for, any of
    ``packet_loss``, ``dead_pixels``, ``frozen``, ``dropped``. ``fill_dropped``: emit
    interpolated frames for timestamp gaps (offline only; see the module docstring);
    ``fill_frozen``: replace a frozen frame by interpolation half-way between the
    previous output and the next frame (a run of frozen frames is only partly fixed:
    the look-ahead sees one frame ahead);
    ``max_fill``: at most this many frames per gap are made. ``fps``: the nominal frame
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


@dataclass
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


# ---------------------------------------------------------------------------- masks
def _read_mask(path: Path) -> np.ndarray:
    from edgerestore._lazy import require

    cv2 = require("cv2", purpose="reading repair masks")
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputError(f"cannot read the mask image {path} (not an image, or unreadable)")
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    return m > 0


class MaskSource:
    """User masks: nonzero pixels are damage to repair, whatever the detectors say.

    ``spec``: a mask image file (the same mask for every frame), a folder of mask images
    (sorted naturally; the i-th image for the i-th frame), a bool/uint8 array (every
    frame) or a sequence of arrays (one per frame). A mask must have the frame's size; a
    folder with fewer masks than frames is an error when the first frame without one
    arrives.
    """

    def __init__(self, spec):
        self.spec = spec
        self.single: np.ndarray | None = None
        self.files: list[Path] | None = None
        self.arrays: Sequence[np.ndarray] | None = None
        if isinstance(spec, (str, os.PathLike)):
            p = Path(spec)
            if p.is_dir():
                from edgerestore.runtime.sources import natural_key

                files = sorted((f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS),
                               key=lambda f: natural_key(f.name))
                if not files:
                    raise InputError(f"mask folder {p} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
                self.files = files
                self.name = str(p)
            elif p.is_file():
                self.single = _read_mask(p)
                self.name = str(p)
            else:
                raise InputError(f"mask {p} does not exist (give an image file or a folder of images)")
        elif isinstance(spec, np.ndarray):
            if spec.ndim != 2:
                raise InputError(f"a mask array must be H x W, got shape {spec.shape}")
            self.single = spec.astype(bool)
            self.name = "array"
        elif isinstance(spec, (list, tuple)):
            if not spec:
                raise InputError("an empty list of masks")
            self.arrays = spec
            self.name = f"{len(spec)} arrays"
        else:
            raise InputError(f"a mask is a path, a folder, an array or a list of arrays, not {type(spec).__name__}")

    def __len__(self) -> int | None:  # type: ignore[override]
        if self.files is not None:
            return len(self.files)
        if self.arrays is not None:
            return len(self.arrays)
        return None

    def get(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        if self.single is not None:
            m, what = self.single, f"mask {self.name}"
        elif self.files is not None:
            if i >= len(self.files):
                raise InputError(f"mask folder {self.name} has {len(self.files)} masks but frame {i} "
                                 f"needs one (give one mask per frame, or a single mask file)")
            m, what = _read_mask(self.files[i]), f"mask {self.files[i]}"
        else:
            assert self.arrays is not None
            if i >= len(self.arrays):
                raise InputError(f"{len(self.arrays)} masks were given but frame {i} needs one")
            m, what = np.asarray(self.arrays[i]).astype(bool), f"mask {i}"
        if m.shape != tuple(shape):
            raise InputError(f"{what} is {m.shape[1]}x{m.shape[0]} but the frames are {shape[1]}x{shape[0]}; "
                             "a mask must have the frame's size")
        return m


# ---------------------------------------------------------------------------- report
class _Counts:
    def __init__(self):
        self.frames = 0
        self.frames_repaired = 0
        self.pl_frames = 0
        self.pl_blocks = 0
        self.pl_flat = 0
        self.pl_smear = 0
        self.pl_pixels = 0
        self.dead_positions = np.zeros((0, 0), bool)
        self.dead_frames = 0
        self.dead_pixels = 0
        self.frozen: list[int] = []
        self.frozen_filled = 0
        self.gaps: list[dict[str, Any]] = []
        self.filled = 0
        self.masked_frames = 0
        self.masked_pixels = 0
        self.temporal_pixels = 0
        self.spatial_pixels = 0
        self.unrepaired_pixels = 0
        self.whole_frames = 0


# ---------------------------------------------------------------------------- repairer
@dataclass
class _Pending:
    image: np.ndarray
    index: int
    timestamp: float | None
    missing_before: int
    user_mask: np.ndarray | None


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
        self._gaps = GapDetector(self.config.fps, self.config.thresholds.gap_factor)
        self._prev_raw: np.ndarray | None = None     # previous input frame
        self._prev_out: np.ndarray | None = None     # previous output frame (repaired)
        self._prev_quality: np.ndarray | None = None
        self._prev_ts: float | None = None
        self._shape: tuple[int, ...] | None = None
        self._count = 0
        self._c = _Counts()

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

    def push(self, img: np.ndarray, timestamp: float | None = None, index: int | None = None
             ) -> list[RepairedFrame]:
        """Add the next input frame; returns the frames now ready (0, 1 or more)."""
        idx = self._count if index is None else int(index)
        img = self._check(img, idx)
        self._count += 1
        missing = self._gaps.step(timestamp) if "dropped" in self.config.detect else 0
        user = self.mask_source.get(idx, img.shape[:2]) if self.mask_source is not None else None
        if "dead_pixels" in self.config.detect:
            self._dead.update(img)
        self._pending.append(_Pending(img, idx, timestamp, missing, user))
        out: list[RepairedFrame] = []
        while len(self._pending) > self.config.lookahead:
            out += self._emit()
        return out

    def flush(self) -> list[RepairedFrame]:
        """The frames still held back (call at the end of the clip)."""
        out: list[RepairedFrame] = []
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
    def _next_unusable(self, nxt: _Pending, cur: np.ndarray, cur_mask: np.ndarray) -> np.ndarray:
        """A guess of the next frame's damage (its own detection needs its own next
        frame): its flat/smeared blocks that differ from the current frame (where the
        current frame is damaged: from the repaired previous frame) and break the image
        at their border, its dead pixels, the user's mask for it."""
        cfg = self.config.thresholds
        bad = np.zeros(nxt.image.shape[:2], bool)
        if "packet_loss" in self.config.detect:
            ref = cur
            if cur_mask.any() and self._prev_out is not None:
                ref = cur.copy()
                np.copyto(ref, self._prev_out, where=cur_mask[..., None] if cur.ndim == 3 else cur_mask)
            bad |= detect_packet_loss(nxt.image, [ref], cfg).mask
        if "dead_pixels" in self.config.detect:
            dm = self._dead.mask()
            if dm.shape == bad.shape:
                bad |= dm & (extreme_pixels(nxt.image, cfg.extreme_tol) > 0)
        if nxt.user_mask is not None:
            bad |= nxt.user_mask
        return bad

    def _emit(self) -> list[RepairedFrame]:
        cur = self._pending.popleft()
        nxt = self._pending[0] if self._pending else None
        cfg = self.config
        c = self._c
        img = cur.image
        h, w = img.shape[:2]
        info: dict[str, Any] = {"index": cur.index}
        results: list[RepairedFrame] = []

        # dropped frames before this one: report, fill when asked (needs a previous frame)
        if cur.missing_before:
            c.gaps.append({"before_frame": cur.index, "missing": cur.missing_before,
                           "timestamp": cur.timestamp})
            info["dropped_before"] = cur.missing_before

        # frozen frame: the input repeats the previous input
        frozen = "frozen" in cfg.detect and is_frozen(img, self._prev_raw, cfg.thresholds.frozen_tol)
        if frozen:
            c.frozen.append(cur.index)
        info["frozen"] = frozen

        # detection
        mask = np.zeros((h, w), bool)
        neighbours_img = [x for x in (self._prev_out, nxt.image if nxt else None) if x is not None]
        n_blocks = 0
        if "packet_loss" in cfg.detect:
            bd = detect_packet_loss(img, neighbours_img, cfg.thresholds)
            n_blocks = bd.count
            if n_blocks:
                mask |= bd.mask
                c.pl_frames += 1
                c.pl_blocks += n_blocks
                c.pl_flat += bd.flat
                c.pl_smear += bd.smear
                c.pl_pixels += int(bd.mask.sum())
        info["packet_loss_blocks"] = n_blocks
        dead = np.zeros((h, w), bool)
        if "dead_pixels" in cfg.detect:
            dm = self._dead.mask()
            if dm.shape == (h, w):
                dead = dm & (extreme_pixels(img, cfg.thresholds.extreme_tol) > 0)
            if dead.any():
                c.dead_frames += 1
                c.dead_pixels += int(dead.sum())
                if c.dead_positions.shape != (h, w):
                    c.dead_positions = np.zeros((h, w), bool)
                c.dead_positions |= dead
            mask |= dead
        info["dead_pixels"] = int(dead.sum())
        if cur.user_mask is not None and cur.user_mask.any():
            mask |= cur.user_mask
            c.masked_frames += 1
            c.masked_pixels += int(cur.user_mask.sum())
        info["masked_pixels"] = 0 if cur.user_mask is None else int(cur.user_mask.sum())

        # repair: time, then space
        quality = np.zeros((h, w), np.uint8)
        out = img
        n_mask = int(mask.sum())
        if n_mask:
            nbs: list[Neighbour] = []
            if self._prev_out is not None:
                nbs.append(Neighbour(self._prev_out, self._prev_quality >= _SPATIAL))
            if nxt is not None:
                nbs.append(Neighbour(nxt.image, self._next_unusable(nxt, img, mask)))
            if mask.all():
                c.whole_frames += 1
            if mask.mean() > 0.5 and self._prev_out is not None and nxt is not None:
                # most of the frame is lost: too little left to estimate its motion from,
                # so interpolate it from the two neighbours (flow between them)
                mid = interpolate(self._prev_out, nxt.image, [0.5], self._flow)[0]
                out = img.copy()
                out[mask] = mid[mask]
                filled = mask.copy()
            else:
                out, filled = temporal_fill(img, mask, nbs, self._flow, cfg.fill)
            rest = mask & ~filled
            if rest.any():
                out = spatial_fill(out, rest, cfg.fill)
            unrepaired = int(rest.sum()) if mask.all() and not filled.any() else 0
            quality[filled] = _TEMPORAL
            quality[rest] = _SPATIAL
            c.temporal_pixels += int(filled.sum())
            c.spatial_pixels += int(rest.sum()) - unrepaired
            c.unrepaired_pixels += unrepaired
            c.frames_repaired += 1
            info.update(temporal_pixels=int(filled.sum()), spatial_pixels=int(rest.sum()) - unrepaired,
                        unrepaired_pixels=unrepaired)
        info["repaired_pixels"] = n_mask

        # fill the gap before this frame from the repaired frames on both sides
        if cur.missing_before and cfg.fill_dropped and self._prev_out is not None:
            k = min(cur.missing_before, cfg.max_fill)
            alphas = [(j + 1) / (cur.missing_before + 1) for j in range(k)]
            t0, t1 = self._prev_ts, cur.timestamp
            for j, f in enumerate(interpolate(self._prev_out, out, alphas, self._flow)):
                ts = None if t0 is None or t1 is None else t0 + alphas[j] * (t1 - t0)
                results.append(RepairedFrame(f, None, ts, {"interpolated": True, "before_frame": cur.index},
                                             None, True))
            c.filled += k

        # a frozen frame carries the previous frame's content: make its own when asked
        if frozen and cfg.fill_frozen and self._prev_out is not None and nxt is not None \
                and not is_frozen(nxt.image, img, cfg.thresholds.frozen_tol):
            out = interpolate(self._prev_out, nxt.image, [0.5], self._flow)[0]
            c.frozen_filled += 1
            info["frozen_filled"] = True
            mask = np.ones((h, w), bool)
            n_mask = h * w

        c.frames += 1
        self._prev_raw = img
        self._prev_out = out
        self._prev_quality = quality
        self._prev_ts = cur.timestamp
        kinds = {}
        if n_blocks:
            kinds["packet_loss"] = bd.mask
        if dead.any():
            kinds["dead_pixels"] = dead
        if cur.user_mask is not None and cur.user_mask.any():
            kinds["masked"] = cur.user_mask
        results.append(RepairedFrame(out, cur.index, cur.timestamp, info, mask if n_mask else None, False, kinds))
        return results

    # -- report -----------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Counts per damage kind since the last :meth:`reset` (JSON-ready)."""
        c = self._c
        return {
            "frames": c.frames,
            "frames_repaired": c.frames_repaired,
            "packet_loss": {"frames": c.pl_frames, "blocks": c.pl_blocks, "flat_blocks": c.pl_flat,
                            "smeared_blocks": c.pl_smear, "pixels": c.pl_pixels},
            "dead_pixels": {"positions": int(c.dead_positions.sum()), "frames": c.dead_frames,
                            "pixels": c.dead_pixels},
            "frozen_frames": {"count": len(c.frozen), "filled": c.frozen_filled, "frames": c.frozen[:1000]},
            "dropped_frames": {"count": sum(g["missing"] for g in c.gaps), "gaps": len(c.gaps),
                               "filled": c.filled, "at": c.gaps[:1000]},
            "masked": {"frames": c.masked_frames, "pixels": c.masked_pixels},
            "repair": {"temporal_pixels": c.temporal_pixels, "spatial_pixels": c.spatial_pixels,
                       "unrepaired_pixels": c.unrepaired_pixels, "whole_frames_damaged": c.whole_frames},
        }
