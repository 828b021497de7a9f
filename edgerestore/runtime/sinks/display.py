"""A window that shows the frames (OpenCV ``imshow``)."""

from __future__ import annotations

import os
import sys

from edgerestore.runtime.errors import SinkError, StopRun
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sources import Frame, load_cv2


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
