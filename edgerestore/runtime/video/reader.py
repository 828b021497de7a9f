"""Decoding a video file or stream with PyAV, in presentation order, with the container's
timestamps.

Drop frames (AVI index entries of zero size), variable frame rates and B-frame
reordering are FFmpeg's business: :meth:`VideoReader.frames` yields each picture once,
with ``timestamp = pts * time_base`` in seconds. 8-bit sources come out as ``uint8``
BGR (gray stays gray), sources of more than 8 bits per sample (``yuv420p10le``, ...) as
``uint16`` BGR on the full 0-65535 scale (FFmpeg's ``bgr48le``), so nothing is rounded to
8 bits on the way in.

Why one module (and why it is over 400 lines): :class:`VideoReader` is one decoder and
its container; opening with the hardware fallback, seeking to a picture, the packet
filter, the corrupt flag and the timestamp rule all act on that state in one decoding
loop. The pure parts live apart (``seek.py``: where to seek; ``bitstream.py``: the
packet filter).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator

import numpy as np

from edgerestore.runtime.errors import DecodeError
from edgerestore.runtime.video.bitstream import packet_filter
from edgerestore.runtime.video.codecs import exact_conversion, load_av
from edgerestore.runtime.video.seek import PAST_THE_END, plan_seek

log = logging.getLogger("edgerestore.runtime")


@dataclass
class VideoInfo:
    """What the container says about its first video stream.

    ``fps``: the nominal rate (FFmpeg's guess, e.g. 25 for a 25 fps AVI indexed at 1/50 s);
    ``frame_count``: pictures announced (drop frames not counted), None if unknown;
    ``duration_s``: of the video stream (or the container), None if unknown;
    ``time_base``: of the video stream; ``bits``: bits per sample (8, 10, 12, ...);
    ``colour``: colorspace, color_range, color_primaries, color_trc (FFmpeg's numbers,
    0/2 = unspecified); ``rotation``: degrees from the display matrix of the first frame;
    ``metadata``: the container's tags (creation_time, ...); ``last_duration_s``: how long
    the last picture decoded so far is shown (its own duration, at least one period).
    """

    width: int
    height: int
    codec: str
    pix_fmt: str | None
    fps: float | None
    frame_count: int | None
    duration_s: float | None
    start_s: float
    time_base: Fraction
    bits: int = 8
    colour: dict[str, int] = field(default_factory=dict)
    rotation: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    other_streams: list[str] = field(default_factory=list)
    last_duration_s: float | None = None


def _bits(fmt: Any) -> int:
    try:
        return max(c.bits for c in fmt.components)
    except Exception:  # noqa: BLE001 - unknown format: assume 8
        return 8


def _announced_count(stream: Any, duration_s: float | None, fps: float | None) -> int | None:
    """Pictures the container announces: the demuxer's index where it lists every picture
    (AVI and MP4: AVI's zero-size drop entries are not in it), else the header's count,
    else duration x rate (Matroska)."""
    frames = int(stream.frames or 0)
    try:
        entries = len(stream.index_entries)
    except Exception:  # noqa: BLE001 - older PyAV
        entries = 0
    if frames > 0 and 0 < entries <= frames and (duration_s is None or fps is None
                                                  or abs(entries - duration_s * fps) <= max(2, 0.02 * entries)):
        return entries
    if frames > 0:
        return frames
    if duration_s and fps:
        return int(round(duration_s * fps))
    return None


class VideoReader:
    """One input (a path, a URL, or a binary file object) opened with ``av.open``.

    ``options``: FFmpeg's format/protocol options (``rtsp_transport``, ...);
    ``timeout``: seconds, or ``(open, read)``; ``hwaccel``: PyAV's ``HWAccel``, an FFmpeg
    hardware device type (``"vaapi"``, ...) or None (named ``hwaccel_name`` in messages): when it fails on opening the input or at the
    first frame, the input is reopened in software and ``hardware_failure`` says why
    (logged as a warning);
    ``packet_filter``: a name of :data:`~edgerestore.runtime.video.bitstream.PACKET_FILTERS`
    (``"zero_runs"``: H.264/HEVC packets cut at zeroed bytes before decoding);
    ``concealment``: FFmpeg's error concealment (the decoder's ``ec`` option, e.g.
    :data:`~edgerestore.runtime.video.bitstream.BEST_CONCEALMENT`; the decoder then runs
    in one thread, so it is deterministic). ``corrupt``: whether the picture last given
    is damaged: the decoder flagged it (``VideoFrame.is_corrupt``), its packet was cut,
    or it follows such a picture before the next intact keyframe (the damage drifts
    through prediction until then);
    ``exact``: convert YUV -> BGR without swscale's default bias (see
    :func:`~edgerestore.runtime.video.codecs.exact_conversion`; about 3x the time of the
    fast conversion, a few ms per 720p frame); False gives OpenCV's conversion.
    Raises PyAV's errors (``av.FFmpegError`` subclasses, OSError) when it cannot open;
    the sources turn them into messages.
    """

    def __init__(self, target: Any, *, options: dict[str, str] | None = None,
                 timeout: float | tuple[float, float] | None = None, hwaccel: Any = None,
                 threads: bool = True, exact: bool = True, hwaccel_name: str = "hardware decoder",
                 packet_filter: str | None = None, concealment: str | None = None):
        av = load_av()
        self.exact = exact
        self.packet_filter_name, self.concealment = packet_filter, concealment
        self.packets_cut = 0
        self.corrupt = False
        self._cut_pts: set[int] = set()
        self._tainted = False
        self.target, self.threads = target, threads
        self.kwargs: dict[str, Any] = {"options": dict(options or {})}
        if timeout is not None:
            self.kwargs["timeout"] = timeout
        self.hwaccel, self.hwaccel_name = hwaccel, hwaccel_name
        self.hardware_failure: str | None = None
        try:
            self._open(hwaccel)
        except (av.FFmpegError, OSError, RuntimeError, ValueError) as exc:
            if hwaccel is None:
                raise
            self._drop_hwaccel(exc, "opening")
        self.frames_read = 0
        self.first_s: float | None = None
        self.last_end_s: float | None = None

    def _open(self, hwaccel: Any) -> None:
        av = load_av()
        if isinstance(hwaccel, str):  # a device type named by the user: PyAV checks it here
            from av.codec.hwaccel import HWAccel

            hwaccel = HWAccel(hwaccel, allow_software_fallback=True)
        kwargs = dict(self.kwargs, hwaccel=hwaccel) if hwaccel is not None else self.kwargs
        self.container = av.open(self.target, "r", **kwargs)
        try:
            if not self.container.streams.video:
                raise av.error.InvalidDataError(0, "no video stream in the input")
            self.stream = self.container.streams.video[0]
            cc = self.stream.codec_context
            if self.concealment is not None:
                cc.options = dict(cc.options or {}, ec=self.concealment)
                cc.thread_count = 1  # FFmpeg's concealment with several threads is not deterministic
            elif self.threads:
                self.stream.thread_type = "AUTO"
            self.packet_filter = (packet_filter(self.packet_filter_name, cc.name, cc.extradata)
                                  if self.packet_filter_name else None)
            self.info = self._describe()
        except BaseException:
            self.container.close()
            raise

    def _drop_hwaccel(self, exc: BaseException, when: str) -> None:
        """Hardware decoding failed ``when`` (opening, at the first frame): reopen the
        input in software, logging the reason (kept in ``hardware_failure``)."""
        self.hardware_failure = f"{self.hwaccel_name} failed when {when} the input ({type(exc).__name__}: {exc})"
        log.warning("hardware decoding not used: %s; decoding in software", self.hardware_failure)
        self.hwaccel = None
        if hasattr(self.target, "seek"):
            self.target.seek(0)
        self._open(None)

    def _describe(self) -> VideoInfo:
        s, c = self.stream, self.container
        cc = s.codec_context
        tb = s.time_base or Fraction(1, 90000)
        rate = s.guessed_rate or s.average_rate
        fps = float(rate) if rate else None
        if s.duration is not None:
            duration = float(s.duration * tb)
        elif c.duration is not None:
            duration = c.duration / 1_000_000
        else:
            duration = None
        start = float(s.start_time * tb) if s.start_time is not None else 0.0
        colour = {k: int(getattr(cc, k, 0) or 0) for k in ("colorspace", "color_range", "color_primaries", "color_trc")}
        others = [f"{st.type}:{st.codec_context.name if st.codec_context else '?'}" for st in c.streams
                  if st.index != s.index and st.type in ("audio", "subtitle")]
        return VideoInfo(
            width=cc.width, height=cc.height, codec=cc.name, pix_fmt=cc.pix_fmt, fps=fps,
            frame_count=_announced_count(s, duration, fps), duration_s=duration, start_s=start,
            time_base=tb, bits=_bits(cc.format) if cc.format else 8, colour=colour,
            metadata=dict(c.metadata), other_streams=others,
        )

    REORDER_DEPTH = 8
    """Frames held back to put timestamps in order (see :meth:`frames`)."""

    def frames(self, start: int = 0) -> Iterator[tuple[np.ndarray, float]]:
        """``(image, timestamp_s)`` for each picture in presentation order, from picture
        ``start`` (0-based, counted as a decode from the beginning counts them). A decoding
        failure raises :class:`DecodeError` (its message is FFmpeg's).

        The decoder hands out pictures in presentation order, but a container without
        real presentation times (AVI with B-frames: the demuxer's pts are its dts plus
        one step) gives them out of order. The timestamps are therefore the smallest pts
        among the last :attr:`REORDER_DEPTH` pictures (a min-heap): for a file with true
        pts (every MP4, MKV, MOV) this changes nothing; for such an AVI it restores the
        display times. Timestamps always increase.

        ``start > 0`` seeks instead of decoding what comes before (see :meth:`seek_plan`):
        to the keyframe at or before picture ``start``, then decodes forward and drops the
        pictures whose presentation time is before that picture's, so the pictures and
        timestamps are those of a decode from the beginning. Where the container does
        not allow that mapping, or the first picture kept is not the one expected, it
        falls back to decoding from the beginning and dropping ``start`` pictures (logged).
        """
        plan = self.seek_plan(start) if start > 0 else None
        if plan == PAST_THE_END:
            return
        if start > 0 and plan is None:
            yield from self._frames_from(0, drop=start)
            return
        if plan is not None:
            keyframe_pts, target_pts = plan
            self.container.seek(keyframe_pts, stream=self.stream, backward=True)
            # (a hardware decoder dropped at the first frame reopens the input at its start:
            # the pictures before the target are then dropped by their time all the same)
            it = self._frames_from(start, skip_below=target_pts)
            try:
                first = next(it)
            except StopIteration:
                return
            if first is None:  # the first picture kept was not the expected one
                it.close()
                log.warning("seeking to frame %d of %s did not land on it; decoding from the start",
                            start, self.target)
                self.container.seek(self.info_start_pts(), stream=self.stream, backward=True)
                yield from self._frames_from(0, drop=start)
                return
            yield first
            yield from it
            return
        yield from self._frames_from(0)

    def info_start_pts(self) -> int:
        """The video stream's first presentation time, in its time base (0 if unknown)."""
        return int(self.stream.start_time or 0)

    def seek_plan(self, start: int) -> tuple[int, int] | str | None:
        """:func:`~edgerestore.runtime.video.seek.plan_seek` for picture ``start``, from a
        demux pass over the video stream (no decoding) that starts and ends at the
        stream's start. When the video has no picture ``start``, the end of its last
        picture is taken from the packets (for :meth:`shortfall`)."""
        packets: list[tuple[int | None, bool]] = []
        last_pts, last_duration = None, 0
        self.container.seek(self.info_start_pts(), stream=self.stream, backward=True)
        try:
            for packet in self.container.demux(self.stream):
                if not packet.size:
                    continue  # a drop frame (AVI) or the demuxer's final flush packet
                packets.append((packet.pts, bool(packet.is_keyframe)))
                if packet.pts is not None and (last_pts is None or packet.pts >= last_pts):
                    last_pts, last_duration = packet.pts, packet.duration or 0
        finally:
            self.container.seek(self.info_start_pts(), stream=self.stream, backward=True)
        tb = self.info.time_base
        plan = plan_seek(packets, start, int(round(1 / (self.info.fps * tb))) if self.info.fps else 1)
        if plan == PAST_THE_END and last_pts is not None:
            period = 1 / self.info.fps if self.info.fps else 0.0
            self.last_end_s = float(last_pts * tb) + max(float(last_duration * tb), period)
        return plan

    def _frames_from(self, index: int, *, skip_below: int | None = None,
                     drop: int = 0) -> Iterator[tuple[np.ndarray, float] | None]:
        """The pictures from the decoder's current position, counted from ``index``:
        those with a presentation time below ``skip_below`` (after a seek) or the first
        ``drop`` pictures are decoded but not converted or yielded. After a seek the
        first picture kept must have exactly ``skip_below`` as its time, else this
        yields None once and stops (the caller falls back)."""
        import heapq
        from collections import deque

        av = load_av()
        tb = self.info.time_base
        held: deque = deque()
        times: list[int] = []
        it = self._decode_checked()
        last: int | None = None
        step = int(round(1 / (self.info.fps * tb))) if self.info.fps else 1
        self.frames_read = index
        checked = skip_below is None
        state = {"drop": drop}

        def release():
            nonlocal last, checked
            frame = held.popleft()
            pts = heapq.heappop(times) if times else None
            if pts is None or (last is not None and pts <= last):
                pts = (last + max(step, 1)) if last is not None else 0
            last = pts
            dur = frame.duration * tb if frame.duration else 0
            period = Fraction(1, 1) / Fraction(self.info.fps).limit_denominator(100000) if self.info.fps else 0
            self.last_end_s = float(pts * tb + max(dur, period))  # of every picture decoded (truncation check)
            self.info.last_duration_s = float(max(dur, period))
            if skip_below is not None and pts < skip_below:
                return "skip"
            if not checked:
                checked = True
                if pts != skip_below:
                    return None
            if state["drop"]:
                state["drop"] -= 1
                return "skip"
            corrupt = bool(getattr(frame, "is_corrupt", False)) or frame.pts in self._cut_pts
            if frame.key_frame and not corrupt:
                self._tainted = False  # a keyframe ends the drift of earlier damage
            self._tainted = self._tainted or corrupt
            self.corrupt = self._tainted
            if self.first_s is None:
                self.first_s = float(pts * tb)
                self.info.rotation = int(getattr(frame, "rotation", 0) or 0)
            self.frames_read += 1
            return self.to_array(frame), float(pts * tb)

        def drain(keep: int):
            """Release held frames until ``keep`` remain; ends after a None (stop)."""
            while len(held) > keep:
                out = release()
                if out != "skip":
                    yield out
                if out is None:
                    return

        while True:
            try:
                frame = next(it)
            except StopIteration:
                break
            except (av.FFmpegError, OSError) as exc:
                for out in drain(0):
                    yield out
                    if out is None:
                        return
                raise DecodeError(str(exc), frame_index=self.frames_read,
                                  expected=self.info.frame_count) from None
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is not None:
                heapq.heappush(times, pts)
            held.append(frame)
            for out in drain(self.REORDER_DEPTH):
                yield out
                if out is None:
                    return
        for out in drain(0):
            yield out
            if out is None:
                return

    def _decode_checked(self) -> Iterator[Any]:
        """The decoded frames; under hardware decoding, a failure at the first frame
        reopens the input in software (:meth:`_drop_hwaccel`) and starts again."""
        av = load_av()
        it = self._decode()
        if self.hwaccel is not None:
            try:
                first = next(it)
            except StopIteration:
                return
            except (av.FFmpegError, OSError, RuntimeError, ValueError) as exc:
                self.container.close()
                self._drop_hwaccel(exc, "decoding the first frame of")
                it = self._decode()
            else:
                yield first
        yield from it

    def _decode(self) -> Iterator[Any]:
        """The decoder's frames; with a packet filter, each packet goes through it first
        (a packet it changes is counted in ``packets_cut`` and its frame flagged corrupt)
        and a packet the decoder refuses is skipped (its frame is missing), as a player
        does."""
        if self.packet_filter is None:
            yield from self.container.decode(self.stream)
            return
        av = load_av()
        ctx = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            if packet.size:
                cut = self.packet_filter(bytes(packet))
                if cut is not None:
                    self.packets_cut += 1
                    if packet.pts is not None:
                        self._cut_pts.add(packet.pts)
                    new = av.Packet(cut)
                    new.pts, new.dts, new.time_base = packet.pts, packet.dts, packet.time_base
                    packet = new
            try:
                yield from ctx.decode(packet if packet.size else None)
            except av.error.InvalidDataError:
                continue

    def to_array(self, frame: Any) -> np.ndarray:
        """A decoded frame as ``uint8`` BGR / gray, or ``uint16`` BGR for > 8-bit sources,
        converted with the frame's own colour matrix and range."""
        name = frame.format.name
        if name.startswith("gray") and _bits(frame.format) <= 8:
            fmt = "gray"
        else:
            fmt = "bgr48le" if _bits(frame.format) > 8 else "bgr24"
        kwargs: dict[str, Any] = {}
        if self.exact:
            kwargs["interpolation"] = exact_conversion(deep_output=fmt == "bgr48le")
        if frame.color_range:
            kwargs["src_color_range"] = frame.color_range
        return frame.to_ndarray(format=fmt, **kwargs)

    def shortfall(self) -> str | None:
        """At the end of decoding: why the input looks cut short (what was decoded ends
        clearly before the duration the container announces), or None. The tolerance is
        1.5 frame periods or 1 % of the duration, whichever is larger."""
        info = self.info
        if info.duration_s is None or info.duration_s <= 0:
            return None
        period = 1.0 / info.fps if info.fps else 0.04
        end = info.start_s + info.duration_s
        got = self.last_end_s if self.last_end_s is not None else info.start_s
        if end - got > max(1.5 * period, 0.01 * info.duration_s):
            return (f"the container announces {info.duration_s:.3f} s but the decodable video ends at "
                    f"{got - info.start_s:.3f} s")
        return None

    def close(self) -> None:
        self.container.close()


def presentation_span(path: str, last_duration_s: float) -> float | None:
    """Seconds from the first video picture to the end of the last one in the file at
    ``path``: (largest pts - smallest pts) from its packets (no decoding) plus
    ``last_duration_s``, the last picture's duration (packet durations in MP4 are decode
    steps, not display times, so they are not used). None without packets. This is what
    ``duration out`` reports, measured on the file written."""
    av = load_av()
    with av.open(path) as c:  # every stream attribute is read while it is open (PyAV >= 18.1.1 checks)
        s = c.streams.video[0]
        time_base = s.time_base
        pts = [p.pts for p in c.demux(s) if p.pts is not None]
    return float((max(pts) - min(pts)) * time_base) + last_duration_s if pts else None
