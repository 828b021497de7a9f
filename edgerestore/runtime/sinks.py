"""Sinks: where restored frames go.

A sink receives uint8 frames (``H x W x 3`` BGR or ``H x W`` gray). Protocol:

* ``check()``: before any work, raise :class:`SinkError` if the output cannot be written
  (so a run never spends minutes restoring frames it cannot save);
* ``write(frame)`` for each frame, in order;
* ``close()``: finalise: files are written under a temporary name in the target folder
  and moved into place with ``os.replace`` here, so a crash never leaves a half file that
  looks finished; an interrupted run (Ctrl-C, truncated input) still gets a playable file;
* ``abort()``: discard what was written (used when a stage fails).

:func:`open_sink` turns what a user types into a sink: a folder (trailing ``/``, an
existing folder or no extension), ``-`` / ``null`` (discard), or a video file whose
extension picks the codec (``.mkv``: lossless FFV1, so restored frames are not damaged
again; ``.mp4``/``.mov``/``.m4v``: MPEG-4 part 2 ``mp4v``; ``.avi``: MJPG).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from edgerestore.runtime.errors import SinkError, StopRun
from edgerestore.runtime.sources import Frame, load_cv2

log = logging.getLogger("edgerestore.runtime")

CODECS = {".mkv": "FFV1", ".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}
IMAGE_OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class Sink:
    """Base class of all sinks (see the module docstring for the protocol)."""

    name: str = "sink"
    path: Path | None = None

    def __init__(self) -> None:
        self.frames_written = 0

    def check(self) -> None:
        """Raise SinkError if this sink cannot work; called before any frame is read."""

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finalise the output."""

    def abort(self) -> None:
        """Discard the output (default: same as close)."""
        self.close()

    def __enter__(self) -> "Sink":
        self.check()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, StopRun)):
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _check_writable_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise SinkError(f"cannot write {what}: folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        raise SinkError(f"cannot write {what}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SinkError(f"cannot write {what}: folder {folder} is not writable ({exc.strerror})") from None


def _to_bgr(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return load_cv2().cvtColor(img, load_cv2().COLOR_GRAY2BGR)
    return img


class VideoFileSink(Sink):
    """A video file; the codec comes from the extension unless ``codec`` (a FourCC) is given.

    All frames are written at the size of the first one: later frames of another size
    (e.g. a folder of mixed images) are resized with a warning and counted in ``resized``.
    Gray frames are written as BGR.

    ``keep_time``: repeat the previous frame over gaps in the timestamps (frames dropped
    in live mode), so the video plays at the speed it was captured; at most
    ``MAX_REPEAT_S`` seconds per gap. None (default): on in live mode, set by the pipeline.
    Repeats are counted in ``repeated``.
    """

    MAX_REPEAT_S = 10.0

    def __init__(self, path: str | os.PathLike, *, fps: float | None = None, codec: str | None = None,
                 keep_time: bool | None = None):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.fps = fps
        ext = self.path.suffix.lower()
        if codec is None:
            if ext not in CODECS:
                raise SinkError(
                    f"unknown video extension {ext or '(none)'!r} for {self.path}; use one of "
                    f"{', '.join(CODECS)}, pass a codec, or end the path with / for a folder of images"
                )
            codec = CODECS[ext]
        if len(codec) != 4:
            raise SinkError(f"codec must be a 4-character FourCC such as FFV1 or mp4v, got {codec!r}")
        self.codec = codec
        self.resized = 0
        self.keep_time = keep_time
        self.repeated = 0
        self._slots = 0          # frames in the video file, repeats included
        self._t0: float | None = None
        self._last: np.ndarray | None = None
        self._writer = None
        self._tmp: Path | None = None
        self._size: tuple[int, int] | None = None

    def _tmp_path(self) -> Path:
        return self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")

    def check(self) -> None:
        cv2 = load_cv2()
        folder = self.path.parent
        _check_writable_folder(folder, str(self.path))
        if self.path.is_dir():
            raise SinkError(f"cannot write video {self.path}: a folder of that name exists")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise SinkError(f"cannot overwrite {self.path}: permission denied")
        # Probe the codec with a tiny writer, so an unavailable codec fails now, not at frame 1.
        probe = folder / f".{self.path.stem}.probe-{os.getpid()}{self.path.suffix}"
        try:
            w = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*self.codec), 25.0, (16, 16))
            ok = w.isOpened()
            w.release()
        finally:
            probe.unlink(missing_ok=True)
        if not ok:
            hint = " (H.264/avc1 is not in the pip OpenCV wheel; use mp4v, or .mkv for lossless FFV1)" \
                if self.codec.lower() in ("avc1", "h264", "x264") else ""
            raise SinkError(
                f"this OpenCV cannot write codec {self.codec!r} into {self.path.suffix} files{hint}; "
                f"working choices: .mkv (FFV1, lossless), .mp4 (mp4v), .avi (MJPG)"
            )

    def write(self, frame: Frame) -> None:
        cv2 = load_cv2()
        img = _to_bgr(frame.image)
        h, w = img.shape[:2]
        if self._writer is None:
            self._tmp = self._tmp_path()
            fps = self.fps or 25.0
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.codec), float(fps), (w, h))
            if not self._writer.isOpened():
                self._writer = None
                self._tmp.unlink(missing_ok=True)
                raise SinkError(f"cannot open a {self.codec} writer for {w}x{h} frames at {self.path}")
            self._size = (w, h)
        elif (w, h) != self._size:
            if self.resized == 0:
                log.warning("%s: frame %d is %dx%d but the video is %dx%d; resizing frames that differ",
                            self.path, frame.index, w, h, *self._size)
            self.resized += 1
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img)
        if self.keep_time and self._last is not None and frame.timestamp is not None:
            fps = self.fps or 25.0
            slot = int(round((frame.timestamp - self._t0) * fps))
            gap = min(slot - self._slots, int(self.MAX_REPEAT_S * fps))
            for _ in range(max(0, gap)):
                self._writer.write(self._last)
                self._slots += 1
                self.repeated += 1
        if self._t0 is None:
            self._t0 = frame.timestamp if frame.timestamp is not None else 0.0
        self._writer.write(img)
        self._slots += 1
        self._last = img
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)
            self._tmp = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


class ImageFolderSink(Sink):
    """A folder of images named after the frame index (``000000.png``, ...).

    Each image is written to a temporary name and moved into place, so every file in the
    folder is complete. In live mode, gaps in the numbering show dropped frames.
    ``ext``: ``.png`` (lossless, default), ``.jpg``, ... The folder is created if needed.
    """

    def __init__(self, folder: str | os.PathLike, *, ext: str = ".png", pattern: str = "{index:06d}"):
        super().__init__()
        self.path = Path(folder)
        self.name = str(folder)
        self.ext = ext if ext.startswith(".") else "." + ext
        if self.ext.lower() not in IMAGE_OUTPUT_EXTENSIONS:
            raise SinkError(f"unknown image extension {self.ext!r}; use one of {', '.join(IMAGE_OUTPUT_EXTENSIONS)}")
        self.pattern = pattern

    def check(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"cannot write images into {self.path}: it is a file, not a folder")
        parent = self.path.parent if not self.path.exists() else self.path
        if not self.path.exists():
            if not parent.is_dir():
                raise SinkError(f"cannot create {self.path}: folder {parent} does not exist")
            try:
                self.path.mkdir()
            except OSError as exc:
                raise SinkError(f"cannot create folder {self.path}: {exc.strerror}") from None
        _check_writable_folder(self.path, f"images into {self.path}")

    def write(self, frame: Frame) -> None:
        cv2 = load_cv2()
        name = self.pattern.format(index=frame.index) + self.ext
        ok, buf = cv2.imencode(self.ext, frame.image)
        if not ok:
            raise SinkError(f"could not encode frame {frame.index} as {self.ext}")
        target = self.path / name
        tmp = self.path / f".{name}.partial"
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, target)
        self.frames_written += 1


class WindowSink(Sink):
    """Shows frames in a window; pressing ``q`` or Esc ends the run cleanly."""

    def __init__(self, title: str = "edgerestore"):
        super().__init__()
        self.title = title
        self.name = f"window {title!r}"
        self._shown = False

    def check(self) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError("cannot show a window: no display (DISPLAY is not set); write to a file with -o instead")

    def write(self, frame: Frame) -> None:
        cv2 = load_cv2()
        cv2.imshow(self.title, frame.image)
        self._shown = True
        self.frames_written += 1
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            raise StopRun("window closed by the user")

    def close(self) -> None:
        if self._shown:
            load_cv2().destroyWindow(self.title)
            self._shown = False


class CallbackSink(Sink):
    """Calls ``fn(frame)`` for each frame (``frame.image`` is uint8, ``frame.index`` ...)."""

    def __init__(self, fn: Callable[[Frame], object], name: str | None = None):
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callback")

    def write(self, frame: Frame) -> None:
        self.fn(frame)
        self.frames_written += 1


class ListSink(CallbackSink):
    """Collects the frames in ``self.frames`` (handy in notebooks and tests)."""

    def __init__(self):
        self.frames: list[Frame] = []
        super().__init__(self.frames.append, name="list")


class NullSink(Sink):
    """Discards frames (for benchmarks)."""

    name = "null"

    def write(self, frame: Frame) -> None:
        self.frames_written += 1


def is_folder_target(text: str) -> bool:
    p = Path(text)
    return text.endswith(("/", os.sep)) or p.is_dir() or p.suffix == ""


def open_sink(spec, *, fps: float | None = None, codec: str | None = None) -> Sink:
    """Make a sink from what a user types (see the module docstring)."""
    if isinstance(spec, Sink):
        return spec
    if callable(spec):
        return CallbackSink(spec)
    text = str(spec)
    if text in ("-", "null"):
        return NullSink()
    if is_folder_target(text):
        return ImageFolderSink(text)
    return VideoFileSink(text, fps=fps, codec=codec)
