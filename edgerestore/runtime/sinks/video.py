"""Video file output (OpenCV's ``VideoWriter``): the codec comes from the extension."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sinks.base import Sink, check_writable_folder, to_bgr
from edgerestore.runtime.sources import Frame, load_cv2

log = logging.getLogger("edgerestore.runtime")

CODECS = {".mkv": "FFV1", ".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}
"""Video extension -> OpenCV FourCC used when no codec is given."""


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
        check_writable_folder(folder, str(self.path))
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
        img = to_bgr(frame.image)
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
