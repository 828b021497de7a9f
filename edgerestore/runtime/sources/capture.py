"""Live capture with reconnection (:class:`CaptureSource`), and cameras through OpenCV.

Network streams (``stream.py``) build on :class:`CaptureSource` too, with FFmpeg (PyAV)
instead of OpenCV behind :meth:`CaptureSource._try_open`. Cameras stay on OpenCV's V4L2
backend (see docs/runtime.md, "Cameras").
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from edgerestore.runtime.errors import DecodeError, SourceError, SourceLost
from edgerestore.runtime.sources.base import ReleasesCapture, Source, as_uint8_frame, load_cv2
from edgerestore.runtime.sources.frame import Frame

log = logging.getLogger("edgerestore.runtime")


class CaptureSource(ReleasesCapture, Source):
    """A camera or network stream: live, and reopened with back-off when lost.

    ``reconnect``: reopen a lost device (True in live mode; in offline mode the run stops
    cleanly with what was written). None lets the pipeline decide from its mode
    (:meth:`prepare_for_mode`). ``reconnect_timeout``: give up (raise :class:`SourceLost`)
    after this many seconds without a frame. Back-off between attempts: 0.25 s doubling
    up to 4 s.
    """

    live = True

    def __init__(self, target, *, reconnect: bool | None = None, reconnect_timeout: float = 30.0,
                 backend: int | None = None, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        super().__init__()
        self.target = target
        self.reconnect = reconnect
        self.reconnect_timeout = reconnect_timeout
        self.backend = backend
        self.want = (width, height, fps)
        self._cap = None
        self._t0 = None

    _pending = None  # the first frame read by a successful reopen

    def prepare_for_mode(self, live: bool) -> None:
        """``reconnect=None`` becomes ``live``: reopen a lost device in live mode only."""
        if self.reconnect is None:
            self.reconnect = live

    def _try_open(self):
        """Open the device: an object with ``read() -> (ok, image)`` and ``release()``
        (OpenCV's ``VideoCapture`` here), or None when it cannot be opened."""
        cv2 = load_cv2()
        if self.backend is not None:
            cap = cv2.VideoCapture(self.target, self.backend)
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            return None
        w, h, fps = self.want
        if w:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        if h:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        got = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(got) if got and math.isfinite(got) and 0 < got < 1000 else None
        return cap

    def _open(self) -> None:
        t = time.perf_counter()
        self._cap = self._try_open()
        self._open_s = time.perf_counter() - t
        if self._cap is None:
            raise SourceError(self._cannot_open_message())
        self._t0 = time.perf_counter()
        self._index = 0

    def _cannot_open_message(self) -> str:
        return f"cannot open {self.name}"

    def _reopen(self) -> bool:
        """Back-off reopen loop; True when a frame source is back, False on timeout/stop."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        deadline = time.perf_counter() + self.reconnect_timeout
        delay = 0.25
        while not self._stop.is_set():
            log.warning("%s lost at frame %d; reopening in %.2g s", self.name, self._index, delay)
            if self._stop.wait(min(delay, max(0.0, deadline - time.perf_counter()))):
                return False
            cap = self._try_open()
            if cap is not None:
                ok, img = cap.read()
                if ok and img is not None and img.size:
                    self._cap = cap
                    self.reconnects += 1
                    self._pending = img
                    log.warning("%s reopened (reconnect %d)", self.name, self.reconnects)
                    return True
                cap.release()
            if time.perf_counter() >= deadline:
                return False
            delay = min(delay * 2, 4.0)
        return False

    def _read(self) -> Frame | None:
        img = None
        if self._pending is not None:
            img, self._pending = self._pending, None
        elif self._cap is not None:
            ok, img = self._cap.read()
            if not ok or img is None or img.size == 0:
                img = None
        if img is None:
            if self._stop.is_set():
                return None
            if not self.reconnect:
                raise DecodeError(
                    f"{self.name}: no frame at index {self._index} (device or stream lost)",
                    frame_index=self._index,
                )
            if not self._reopen():
                if self._stop.is_set():
                    return None
                raise SourceLost(
                    f"{self.name}: lost at frame {self._index} and not back after "
                    f"{self.reconnect_timeout:g} s of reconnect attempts",
                    frame_index=self._index,
                )
            return self._read()
        if not (img.dtype == np.uint16 and img.ndim == 3):  # > 8-bit streams keep their bits
            img = as_uint8_frame(img)
        frame = Frame(img, self._index, time.perf_counter() - self._t0)
        self._index += 1
        return frame


class CameraSource(CaptureSource):
    """A camera: an index (``0``) or a device path (``/dev/video0``).

    ``width``, ``height``, ``fps`` request a capture mode (the camera may ignore them).
    """

    def __init__(self, device: int | str = 0, **kwargs):
        super().__init__(device, **kwargs)
        self.name = f"camera {device}"

    def _cannot_open_message(self) -> str:
        return (f"cannot open {self.name}: no such camera, it is busy, or permission is "
                "missing (on Linux: ls /dev/video*, and add yourself to the 'video' group)")
