"""Video file output, encoded by FFmpeg's libraries (PyAV) in the sink's own thread.

The codec comes from ``codec`` (``h264``, ``h265``, ``av1``, ``ffv1``) or the extension
(H.264 for ``.mp4``/``.mkv``/``.mov``, MJPEG for ``.avi``; ``lossless=True``: FFV1).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sinks.base import Sink, check_writable_folder
from edgerestore.runtime.sources import Frame, load_cv2
from edgerestore.runtime.video import (
    CODEC_CHOICES, CRF_RANGE, EncoderChoice, VideoWriter, choose_encoder, default_codec_for, load_av,
)
from edgerestore.runtime.video.codecs import CONTAINER_CODECS
from edgerestore.runtime.video.reader import presentation_span
from edgerestore.runtime.video.writer import TEN_BIT_CODECS

log = logging.getLogger("edgerestore.runtime")

CODECS = {ext: codecs[0] for ext, codecs in CONTAINER_CODECS.items()}
"""Video extension -> the codec written when none is given."""

CODEC_ALIASES = {"avc1": "h264", "x264": "h264", "h.264": "h264", "hevc": "h265", "hvc1": "h265",
                 "hev1": "h265", "x265": "h265", "av01": "av1", "mjpg": "mjpeg"}
"""Other names users type (FourCCs of the OpenCV days included) -> codec."""


def resolve_codec(codec: str | None, ext: str, *, lossless: bool = False, crf: int | None = None,
                  what: str = "the output") -> str:
    """The codec to write into a file with extension ``ext``; raises :class:`SinkError`
    (a usage problem, explained) for an unknown codec, one the container cannot hold,
    ``lossless`` with a lossy codec, or a ``crf`` outside the codec's range."""
    ext = ext.lower()
    if ext not in CONTAINER_CODECS:
        raise SinkError(f"unknown video extension {ext or '(none)'!r} for {what}; use one of "
                        f"{', '.join(CONTAINER_CODECS)}, or end the path with / for a folder of images")
    if codec is None:
        name = default_codec_for(ext, lossless=lossless)
    else:
        name = CODEC_ALIASES.get(codec.lower(), codec.lower())
        if name == "mp4v":
            raise SinkError("codec mp4v (MPEG-4 part 2) is no longer written; use h264 (the default)")
        if name not in CODEC_CHOICES:
            raise SinkError(f"unknown codec {codec!r}; choose one of {', '.join(list(CODEC_CHOICES)[:4])}")
    if lossless and name != "ffv1":
        raise SinkError(f"--lossless writes FFV1; it cannot be combined with codec {name}")
    if name not in CONTAINER_CODECS[ext]:
        hint = " (FFV1, lossless: use .mkv)" if name == "ffv1" else ""
        raise SinkError(f"{ext} files cannot hold {name}{hint}; {ext} takes {', '.join(CONTAINER_CODECS[ext])}")
    if crf is not None:
        if name not in CRF_RANGE:
            raise SinkError(f"--crf does not apply to {name} (a lossless or fixed-quality codec)")
        lo, hi = CRF_RANGE[name]
        if not lo <= crf <= hi:
            raise SinkError(f"--crf for {name} must be in {lo}..{hi} (lower = better), got {crf}")
    return name


class VideoFileSink(Sink):
    """A video file written by FFmpeg (PyAV).

    ``codec``: ``h264`` | ``h265`` | ``av1`` | ``ffv1`` (default from the extension);
    ``crf``: quality target (default the encoder's: 23 for H.264); ``lossless``: FFV1
    (``.mkv``); ``hardware``: ``auto`` uses NVENC when it opens here, ``off`` never.

    Time: each frame is written at its ``timestamp`` (in the source's time base when
    ``source`` is given), so the output lasts as long as the input and frames dropped in
    live mode leave the previous frame on screen; ``fps`` given at construction instead
    re-times the video at that constant rate. ``source`` (a video file source) also
    gives its audio and subtitle streams (copied, unless ``audio=False``), colour tags,
    rotation and container tags.

    Encoding runs in the sink's own thread behind a queue of ``queue_size`` frames: in
    offline mode a full queue waits; when ``keep_time`` is true (set by the pipeline in
    live mode) a full queue drops its oldest frame and counts it in ``dropped``. Time
    spent encoding: ``encode_ms()``. Frames of another size than the first are resized
    (counted in ``resized``); gray frames are written as BGR.

    The file is written under a temporary name in the target folder and moved into
    place on :meth:`close`. A write error (disk full, folder gone, encoder failure)
    raises :class:`SinkError` naming the file and the cause; the temporary file is then
    removed (it is not playable and it takes the space a full disk needs), and an
    existing file at the target is never replaced.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float | None = None, codec: str | None = None,
                 crf: int | None = None, lossless: bool = False, audio: bool = True, source=None,
                 hardware: str = "auto", keep_time: bool | None = None, queue_size: int = 8):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.codec = resolve_codec(codec, self.path.suffix, lossless=lossless, crf=crf, what=str(self.path))
        self.crf = crf
        self.fps = fps
        self.forced_fps = fps
        self.audio = audio
        self.source = source
        self.hardware = hardware
        self.keep_time = keep_time
        self.queue_size = max(1, int(queue_size))
        self.encoder: EncoderChoice | None = None
        self.resized = 0
        self.repeated = 0          # kept for the report; timestamps make repeats unneeded
        self.dropped = 0
        self.encode_s = 0.0
        self.frames_encoded = 0
        self.duration_s: float | None = None
        self._writer: VideoWriter | None = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._failed = threading.Event()

    @property
    def sample_dtype(self):
        """``uint16`` when the source has more than 8 bits per sample and the codec keeps
        them (H.265, AV1: ``yuv420p10le``; FFV1: ``gbrp10le``), so the sink loop hands this
        sink 16-bit frames instead of rounding them to 8 bits; ``uint8`` otherwise."""
        info = getattr(self.source, "info", None)
        deep = getattr(info, "bits", 8) > 8 and getattr(self.source, "deep", True)
        return np.uint16 if deep and self.codec in TEN_BIT_CODECS else np.uint8

    def _tmp_path(self) -> Path:
        return self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")

    # -- before any work ----------------------------------------------------------------
    def check(self) -> None:
        load_av()
        folder = self.path.parent
        check_writable_folder(folder, str(self.path))
        if self.path.is_dir():
            raise SinkError(f"cannot write video {self.path}: a folder of that name exists")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise SinkError(f"cannot overwrite {self.path}: permission denied")
        try:
            self.encoder = choose_encoder(self.codec, hardware=self.hardware)
        except RuntimeError as exc:
            raise SinkError(f"cannot write {self.path}: {exc}") from None

    # -- frames ---------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        self._raise_if_failed()
        img = frame.image
        h, w = img.shape[:2]
        if self._writer is None:
            self._start(w, h)
        elif (w, h) != self._size:
            if self.resized == 0:
                log.warning("%s: frame %d is %dx%d but the video is %dx%d; resizing frames that differ",
                            self.path, frame.index, w, h, *self._size)
            self.resized += 1
            img = load_cv2().resize(img, self._size, interpolation=load_cv2().INTER_AREA)
        if self.forced_fps:
            ts = self.frames_written / self.forced_fps
        else:
            ts = frame.timestamp if frame.timestamp is not None else self.frames_written / (self.fps or 25.0)
        item = (np.ascontiguousarray(img), float(ts))
        if self.keep_time:
            while True:
                try:
                    self._queue.put_nowait(item)
                    break
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        else:
            while not self._failed.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._raise_if_failed()
        self.frames_written += 1

    def _start(self, w: int, h: int) -> None:
        if self.encoder is None:
            self.check()
        src = self.source
        info = getattr(src, "info", None)
        tb = None if self.forced_fps else getattr(info, "time_base", None)
        copy_from = None
        if self.audio and info is not None and info.other_streams and getattr(src, "path", None) is not None:
            copy_from = os.fspath(src.path)
        self._tmp = self._tmp_path()
        try:
            self._tmp.touch()  # the name is taken now; FFmpeg writes into it from the first packet
            self._writer = VideoWriter(
                os.fspath(self._tmp), encoder=self.encoder, time_base=tb or Fraction(1, 90000),
                fps=self.forced_fps or self.fps, crf=self.crf,
                colour=getattr(info, "colour", None), rotation=getattr(info, "rotation", 0),
                metadata=getattr(info, "metadata", None), copy_from=copy_from, name=str(self.path))
        except Exception as exc:  # noqa: BLE001 - named below
            self._tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.path}: {_cause(exc)}") from None
        self._size = (w, h)
        self._queue = queue.Queue(maxsize=self.queue_size)
        self._thread = threading.Thread(target=self._encode_loop, name="er-encoder", daemon=True)
        self._thread.start()

    def _encode_loop(self) -> None:
        q, writer = self._queue, self._writer
        while True:
            item = q.get()
            if item is None:
                return
            if self._failed.is_set():
                continue
            t0 = time.perf_counter()
            try:
                writer.write(*item)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                self._error = exc
                self._failed.set()
                continue
            self.encode_s += time.perf_counter() - t0
            self.frames_encoded += 1

    def _raise_if_failed(self) -> None:
        if self._failed.is_set():
            raise SinkError(f"cannot write {self.path}: {_cause(self._error)}; the partial "
                            f"file was removed and nothing replaced {self.path.name}")

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def encode_ms(self) -> float | None:
        """Mean time the encoder spent per frame (ms), None before any frame."""
        return 1000.0 * self.encode_s / self.frames_encoded if self.frames_encoded else None

    def describe(self) -> dict:
        """Report fields: encoder, time per frame, frames dropped at the encoder's queue,
        duration written (s)."""
        ms = self.encode_ms()
        return {"path": str(self.path), "codec": self.codec,
                "encoder": self.encoder.name if self.encoder else None,
                "encoder_reason": self.encoder.reason if self.encoder else None,
                "encode_ms": None if ms is None else round(ms, 2), "frames_encoded": self.frames_encoded,
                "encoder_dropped": self.dropped,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 6)}

    # -- the end --------------------------------------------------------------------------
    def close(self) -> None:
        if self._writer is None:
            return
        self._stop_thread()
        writer, self._writer = self._writer, None
        try:
            if self._failed.is_set():
                raise self._error
            t0 = time.perf_counter()
            info = getattr(self.source, "info", None)
            last = None if info is None or self.forced_fps else info.last_duration_s
            writer.close(copy_all=False, last_duration_s=last)
            self.encode_s += time.perf_counter() - t0
            os.replace(self._tmp, self.path)
            self.frames_written = self.frames_encoded  # live mode: frames dropped at the queue are not in it
        except BaseException as exc:
            writer.abort()
            self._discard()
            raise SinkError(f"cannot write {self.path}: {_cause(exc)}; the partial file was removed "
                            f"and nothing replaced {self.path.name}") from None
        self._tmp = None
        try:
            self.duration_s = presentation_span(os.fspath(self.path), float(writer.last_duration))
        except Exception as exc:  # noqa: BLE001 - the file is written; only the figure is missing
            log.warning("cannot read back the duration of %s: %s", self.path, exc)

    def abort(self) -> None:
        self._failed.set()
        self._stop_thread()
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        self._discard()

    def _discard(self) -> None:
        if self._tmp is not None:
            try:
                self._tmp.unlink(missing_ok=True)
            except OSError:  # the folder itself is gone
                pass
            self._tmp = None


def _cause(exc: BaseException | None) -> str:
    """What went wrong, in words: the OS's reason (errno) when there is one."""
    import errno as errno_names

    if exc is None:
        return "unknown error"
    code = getattr(exc, "errno", None)
    text = getattr(exc, "strerror", None) or str(exc)
    if code == errno_names.ENOSPC:
        return f"no space left on the device ({text})"
    if code == errno_names.ENOENT:
        return f"the folder or file vanished ({text})"
    return f"{type(exc).__name__}: {text}" if not getattr(exc, "strerror", None) else text
