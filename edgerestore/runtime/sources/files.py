"""A video file (any container OpenCV reads), optionally replayed in real time."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from edgerestore.runtime.errors import DecodeError, SourceError
from edgerestore.runtime.sources.base import Pacer, ReleasesCapture, Source, as_uint8_frame, load_cv2
from edgerestore.runtime.sources.frame import Frame

log = logging.getLogger("edgerestore.runtime")


class VideoFileSource(ReleasesCapture, Source):
    """A video file in any container OpenCV reads (mp4, mkv, avi, mov, ...).

    ``realtime=True`` releases frames at the file's frame rate (or ``pace_fps``), as a
    camera would; used with live mode to simulate a camera from a recording.
    A read failure before the frame count the container announces raises
    :class:`DecodeError` naming the frame.
    """

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, pace_fps: float | None = None):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.realtime = realtime or pace_fps is not None
        self.live = self.realtime
        self.pace_fps = pace_fps
        self._cap = None

    def _open(self) -> None:
        cv2 = load_cv2()
        if not self.path.exists():
            raise SourceError(f"input video not found: {self.path}")
        if not self.path.is_file():
            raise SourceError(f"input {self.path} is not a file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"input video {self.path} is not readable (permission denied)")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open {self.path} as a video: OpenCV found no container or codec it can "
                "decode. The file may be truncated (an .mp4 cut short loses its index and cannot "
                "be opened at all), corrupt, or use a codec this OpenCV build lacks; check it "
                "with `ffprobe`, or convert it: ffmpeg -i IN -c:v ffv1 OUT.mkv"
            )
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and math.isfinite(count) and count > 0 else None
        self._index = 0
        self._pacer = Pacer(self.pace_fps or self.fps or 25.0, self._stop) if self.realtime else None

    def _read(self) -> Frame | None:
        cv2 = load_cv2()
        if self._pacer is not None:
            self._pacer.wait()
        try:
            ok, img = self._cap.read()
        except cv2.error as exc:  # pragma: no cover - OpenCV rarely raises here
            ok, img = False, None
            log.debug("cv2 read error: %s", exc)
        if not ok or img is None or img.size == 0:
            expected = self.frame_count
            # Container frame counts can be estimates; only a clear shortfall is an error.
            if expected is not None and expected - self._index > max(1, round(0.01 * expected)):
                raise DecodeError(
                    f"{self.path}: decoding failed at frame {self._index} of {expected} "
                    f"announced by the container (the file is truncated or corrupt); "
                    f"frames 0-{self._index - 1} were read",
                    frame_index=self._index, expected=expected,
                )
            return None
        pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if self.fps and (not math.isfinite(pos_ms) or pos_ms <= 0 and self._index > 0):
            ts = self._index / self.fps
        else:
            ts = pos_ms / 1000.0
        frame = Frame(as_uint8_frame(img), self._index, ts)
        self._index += 1
        return frame
