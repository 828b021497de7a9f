"""A video file, decoded by FFmpeg's libraries (PyAV), optionally replayed in real time."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgerestore.imageio import to_float, to_uint8
from edgerestore.runtime.errors import DecodeError, SourceError
from edgerestore.runtime.sources.base import Pacer, Source
from edgerestore.runtime.sources.frame import Frame
from edgerestore.runtime.video import VideoReader, choose_decoder, load_av

log = logging.getLogger("edgerestore.runtime")


class VideoFileSource(Source):
    """A video file in any container FFmpeg reads (mp4, mkv, avi, mov, webm, ...).

    Frames come in presentation order with the container's timestamps (``timestamp`` =
    pts x time base, seconds): drop frames, variable frame rates and B-frames are handled
    by FFmpeg. 8-bit video gives ``uint8`` BGR (or gray) frames, video of more than 8 bits
    per sample ``uint16`` BGR (see ``docs/runtime.md``, 10-bit sources).

    ``fps``, ``frame_count`` and ``duration_s`` come from the container (None if it does
    not say); ``info`` holds the rest (:class:`~edgerestore.runtime.video.VideoInfo`:
    time base, colour, rotation, metadata, other streams). ``realtime=True`` releases
    frames at the file's frame rate (or ``pace_fps``), as a camera would.
    A file that ends clearly before the duration its container announces (truncated)
    raises :class:`DecodeError` naming the frame; ``hardware='auto'`` decodes on NVDEC
    when a CUDA device opens here, ``'off'`` in software, another name on that FFmpeg
    hardware device (``vaapi``, ``qsv``, ...); a hardware decoder that fails on opening
    or at the first frame is dropped for software, with the reason logged. ``exact_colour=True``:
    YUV -> BGR without swscale's default bias of about -0.8 levels (which OpenCV has),
    at about twice the decode time; ``False``: swscale's fast default; ``None``
    (default): exact in offline runs, where decoding is a sliver of the time, and fast in
    live runs, where it sits on the latency path (a pipeline settles it through
    :meth:`prepare_for_mode`; used alone, the source decodes exactly). Figures:
    ``benchmarks/results/video_io.md``. ``deep=False`` gives
    ``uint8`` frames for > 8-bit sources too (the one sample rule of
    :mod:`edgerestore.imageio`): for a run without stages, whose frames go straight to
    the outputs' 8-bit boundary.

    ``start_frame``: the first frame to give (0-based, counted as a decode from the
    beginning counts them); the reader seeks to the keyframe at or before it and decodes
    forward to it, so the frames, their ``index`` and their timestamps are those of a
    decode from the beginning, without decoding the frames before the keyframe (see
    :meth:`~edgerestore.runtime.video.VideoReader.frames`).

    Every frame carries ``corrupt`` (what the decoder knows of damage, see
    :class:`Frame`). ``packet_filter="zero_runs"``: H.264/HEVC packets are cut where
    bytes were zeroed (lost) before decoding
    (:mod:`edgerestore.runtime.video.bitstream`); ``concealment``: FFmpeg's error
    concealment (``ec``). Both are what the ``repair`` stage asks for
    (:meth:`prepare_for_stages`); an intact stream decodes the same with them.
    """

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, pace_fps: float | None = None,
                 hardware: str = "auto", exact_colour: bool | None = None, deep: bool = True,
                 start_frame: int = 0, packet_filter: str | None = None, concealment: str | None = None):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.realtime = realtime or pace_fps is not None
        self.live = self.realtime
        self.pace_fps = pace_fps
        self.hardware = hardware
        self.exact_colour = exact_colour
        self.deep = deep
        if int(start_frame) < 0:
            raise ValueError(f"start_frame must be >= 0, got {start_frame}")
        self.start_frame = int(start_frame)
        self.packet_filter, self.concealment = packet_filter, concealment
        self.duration_s: float | None = None
        self.info = None
        self._reader: VideoReader | None = None
        self._frames = None
        self._pacer = None

    def prepare_for_stages(self, stages) -> None:
        """Takes a stage's ``packet_filter`` / ``concealment`` request (the ``repair``
        stage's: zeroed bytes cut, FFmpeg's best concealment), unless given here."""
        for stage in stages:
            request = getattr(stage, "source_request", None) or {}
            if self.packet_filter is None:
                self.packet_filter = request.get("packet_filter")
            if self.concealment is None:
                self.concealment = request.get("concealment")

    @property
    def packets_cut(self) -> int:
        """Packets the packet filter changed so far (0 without a filter)."""
        r = self._reader or self._last_reader
        return 0 if r is None else r.packets_cut

    def prepare_for_mode(self, live: bool) -> None:
        """``exact_colour=None`` becomes ``not live`` (see the class docstring)."""
        if self.exact_colour is None:
            self.exact_colour = not live

    def _open(self) -> None:
        av = load_av()
        if not self.path.exists():
            raise SourceError(f"input video not found: {self.path}")
        if not self.path.is_file():
            raise SourceError(f"input {self.path} is not a file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"input video {self.path} is not readable (permission denied)")
        try:
            # PyAV takes a str and encodes it back with the file system encoding, so a
            # name that is not valid UTF-8 (surrogate-escaped by Python) opens as is.
            self._reader = VideoReader(os.fspath(self.path), hwaccel=choose_decoder(self.hardware),
                                       hwaccel_name="nvdec (cuda)" if self.hardware == "auto" else self.hardware,
                                       exact=self.exact_colour is not False,
                                       packet_filter=self.packet_filter, concealment=self.concealment)
        except (av.FFmpegError, OSError, UnicodeError) as exc:
            raise SourceError(
                f"cannot open {self.path} as a video ({exc}). The file may be truncated (an .mp4 "
                "cut short loses its index and cannot be opened at all), corrupt, or not a video; "
                "check it with `ffprobe`, or convert it: ffmpeg -i IN -c:v ffv1 OUT.mkv"
            ) from None
        self.info = self._reader.info
        self.fps = self.info.fps
        self.frame_count = self.info.frame_count
        self.duration_s = self.info.duration_s
        self._frames = self._reader.frames(self.start_frame)
        self._index = self.start_frame
        self._pacer = Pacer(self.pace_fps or self.fps or 25.0, self._stop) if self.realtime else None

    def _read(self) -> Frame | None:
        if self._pacer is not None:
            self._pacer.wait()
        try:
            img, ts = next(self._frames)
        except StopIteration:
            why = self._reader.shortfall()
            if why is not None:
                expected = self.frame_count
                of = f" of {expected}" if expected else ""
                raise DecodeError(
                    f"{self.path}: decoding failed at frame {self._index}{of} ({why}: the file is "
                    f"truncated or corrupt); frames 0-{self._index - 1} were read",
                    frame_index=self._index, expected=expected,
                ) from None
            return None
        except DecodeError as exc:
            of = f" of {self.frame_count}" if self.frame_count else ""
            raise DecodeError(f"{self.path}: decoding failed at frame {self._index}{of} ({exc}; the "
                              f"file is truncated or corrupt); frames 0-{self._index - 1} were read",
                              frame_index=self._index, expected=self.frame_count) from None
        if not self.deep and img.dtype == np.uint16:
            img = to_uint8(to_float(img))
        frame = Frame(img, self._index, ts, corrupt=self._reader.corrupt)
        self._index += 1
        return frame

    def decoded_span_s(self) -> float | None:
        """Seconds from the first decoded frame's timestamp to the end of the last one
        (its timestamp plus its duration): what the report gives as ``duration in``, None
        before any frame."""
        r = self._reader or self._last_reader
        if r is None or r.first_s is None:
            return None
        return r.last_end_s - r.first_s

    _last_reader = None

    @property
    def hardware_failure(self) -> str | None:
        """Why the hardware decoder was dropped for software (None: not dropped, or none used)."""
        r = self._reader or self._last_reader
        return None if r is None else r.hardware_failure

    def _close(self) -> None:
        if self._reader is not None:
            self._last_reader = self._reader
            self._reader.close()
            self._reader = None
            self._frames = None
