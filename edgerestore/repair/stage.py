"""The ``repair`` stage of the streaming runtime (``--pipeline repair``).

It wraps a :class:`~edgerestore.repair.FrameRepairer`. Unlike plain stages (one image
in, one image out) it needs its neighbours in time, so it is a
:class:`~edgerestore.runtime.stages.FrameStage`: ``push_frame(frame) -> [frames]`` and
``flush_frames() -> [frames]`` (see ``docs/runtime.md`` and ``docs/repair.md``): a frame
comes out ``lookahead`` frames later, and with ``fill_dropped=True`` interpolated frames
come out for timestamp gaps (frames are then renumbered 0, 1, 2, ... in output order).
Called on a single image (``stage(img)``, ``Pipeline.process``) it repairs that image
alone: a one-frame clip, space only.

On a compressed video file it also works with the decoder (``source_request``): the
source cuts packets at zeroed (lost) bytes and decodes with FFmpeg's best concealment,
and flags each frame ``corrupt`` or not; the packet-loss detector then looks only at the
corrupt frames, so a cleanly decoded frame is never taken for packet loss.

Counts per damage kind go to the run report under the stage's ``repair`` key. The stage
and the named pipeline ``repair`` are registered by reference in
:mod:`edgerestore.runtime.catalog`; this module is imported when a pipeline uses them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edgerestore.imageio import to_float, to_uint8
from edgerestore.runtime.sources import Frame
from edgerestore.runtime.stages import FrameStage
from edgerestore.runtime.video.bitstream import BEST_CONCEALMENT

log = logging.getLogger("edgerestore.repair")

_KINDS = ("packet_loss", "dead_pixels", "frozen", "dropped")


class RepairStage(FrameStage):
    """Find and repair damaged frames: lost/smeared macroblocks, dead pixels (and a mask).

    ``lookahead``: frames held back to see the next one (0 for the lowest latency); with
    1 or more, the first 24 frames of a clip are also held once, until the stuck-pixel
    tracker has the evidence to repair them from frame 0 (about 1 s at 25 fps: in live
    mode use ``repair(lookahead=0)``, which finds stuck pixels from about frame 15 on);
    ``mask``: an image file or a folder of per-frame masks of damage to repair as well;
    ``fill_dropped``: interpolate frames missing at timestamp gaps (offline runs);
    ``fill_frozen``: fill runs of frozen (repeated) frames by interpolation; offline, the
    run is held back until the frame after it;
    ``detect``: the kinds to look for, comma-separated (packet_loss, dead_pixels,
    frozen, dropped); ``flow``: DIS preset (ultrafast, fast, medium); ``flow_scale``:
    compute flow at this fraction of the size; ``fps``: nominal rate for gap detection
    (default: from the timestamps); ``threshold``: the score a detection needs (1.0, the
    default, made no false repair on the real clips; lower finds fainter damage and
    risks false repairs, higher is more cautious).
    """

    source_request = {"packet_filter": "zero_runs", "concealment": BEST_CONCEALMENT}
    """Asked of a video file source (``Source.prepare_for_stages``): H.264/HEVC packets cut
    where bytes were zeroed, FFmpeg's best error concealment, and ``Frame.corrupt`` on
    each frame, with which the packet-loss detector looks only at damaged frames."""

    def __init__(self, lookahead: int = 1, mask: str | None = None, fill_dropped: bool = False,
                 fill_frozen: bool = False, detect: str = ",".join(_KINDS), flow: str = "fast",
                 flow_scale: float = 1.0, fps: float | None = None, threshold: float = 1.0):
        from edgerestore.errors import InputError
        from edgerestore.repair.detect import DetectConfig
        from edgerestore.repair.fill import FillConfig
        from edgerestore.repair.repairer import RepairConfig

        kinds = tuple(k.strip() for k in str(detect).split(",") if k.strip())
        # RepairConfig/FillConfig check the values now, so a bad one fails before any work
        if not float(threshold) > 0:
            raise InputError(f"repair threshold must be > 0 (1.0 is the default), got {threshold!r}")
        self._config = RepairConfig(lookahead=int(lookahead), detect=kinds, fill_dropped=bool(fill_dropped),
                                    fill_frozen=bool(fill_frozen), fps=fps,
                                    thresholds=DetectConfig(threshold=float(threshold)),
                                    fill=FillConfig(flow_preset=flow, flow_scale=float(flow_scale)))
        self.mask = mask
        self.fill_dropped = bool(fill_dropped)
        self.name = "repair" + (f"(lookahead={lookahead})" if lookahead != 1 else "")
        self._rep = None
        self._report = None
        self._held: dict[int, Frame] = {}
        self._pushed = 0     # frames pushed into the current clip
        self._out_count = 0  # frames returned from the current clip

    def open(self) -> None:
        from edgerestore.repair.repairer import FrameRepairer

        self._rep = FrameRepairer(self._config, mask=self.mask)  # a bad mask path fails here, before any frame
        self._pushed = 0
        self._out_count = 0

    def _ensure(self):
        if self._rep is None:
            self.open()
        return self._rep

    def _frames(self, outs, like) -> list:
        frames = []
        for o in outs:
            f = Frame(to_float(o.image), o.index if o.index is not None else -1,
                      o.timestamp if o.timestamp is not None else 0.0)
            src = like.get(o.index)
            if src is not None:
                f.t_capture = src.t_capture
            elif like:
                f.t_capture = min(x.t_capture for x in like.values())
            if self.fill_dropped:
                f.index = self._out_count
            self._out_count += 1
            frames.append(f)
        return frames

    def push_frame(self, frame: Frame) -> list[Frame]:
        """Take one frame (float32 image), return the frames ready."""
        rep = self._ensure()
        if frame.index == 0 and self._pushed:   # a new run of the same pipeline: a new clip
            rep.reset()
            self._pushed = 0
            self._out_count = 0
            self._report = None
        self._held[frame.index] = frame
        self._pushed += 1
        outs = rep.push(to_uint8(frame.image), frame.timestamp, frame.index, corrupt=frame.corrupt)
        res = self._frames(outs, self._held)
        for o in outs:
            self._held.pop(o.index, None)
        return res

    def flush_frames(self) -> list[Frame]:
        """The frames still held back, at the end of the stream."""
        if self._rep is None:
            return []
        outs = self._rep.flush()
        res = self._frames(outs, self._held)
        self._held = {}
        # the clip is over: keep its report for describe(), forget its frames
        self._report = self._rep.report()
        self._rep.reset()
        self._pushed = 0
        self._out_count = 0
        return res

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """One image alone (no neighbours): spatial repair of what the detectors find."""
        from edgerestore.repair.repairer import FrameRepairer

        rep = FrameRepairer(self._config, mask=self.mask)
        out = rep.repair_clip([to_uint8(img)])
        return to_float(out[0].image)

    def _current_report(self) -> dict[str, Any] | None:
        if self._rep is None:
            return None
        live = self._rep.report()
        last = self._report
        return last if (last is not None and live["frames"] == 0) else live

    def describe(self) -> dict[str, Any]:
        return {"repair": self._current_report()}

    def close(self) -> None:
        r = self._current_report()
        if r is not None:
            log.info("repair: %s", summary_line(r))


def summary_line(r: dict[str, Any]) -> str:
    """One human line from a repair report."""
    pl, dp = r["packet_loss"], r["dead_pixels"]
    fz, dr = r["frozen_frames"], r["dropped_frames"]
    parts = [f"{r['frames_repaired']}/{r['frames']} frames repaired",
             f"packet loss {pl['blocks']} blocks in {pl['frames']} frames",
             f"dead pixels {dp['positions']}",
             f"frozen frames {fz['count']}" + (f" ({fz['filled']} filled)" if fz.get("filled") else ""),
             f"dropped frames {dr['count']}" + (f" ({dr['filled']} filled)" if dr["filled"] else "")]
    if r["masked"]["frames"]:
        parts.append(f"masked {r['masked']['pixels']} pixels in {r['masked']['frames']} frames")
    return "; ".join(parts)

