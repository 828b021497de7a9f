"""What every source shares: the :class:`Source` base class, the conversion of decoded
images to the boundary convention, and the pacer that replays files in real time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from edgerestore.runtime.errors import SourceError
from edgerestore.runtime.sources.frame import Frame


def load_cv2():
    """The ``cv2`` module, or an error saying how to install OpenCV (read and write video)."""
    from edgerestore._lazy import require

    return require("cv2", purpose="reading and writing video")


def as_uint8_frame(img: np.ndarray, *, what: str = "frame") -> np.ndarray:
    """Bring a decoded image to the boundary convention: uint8, HxW or HxWx3 BGR.

    16-bit images keep their high byte (``>> 8``), BGRA loses its alpha, HxWx1 becomes HxW.
    """
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise SourceError(f"{what} has dtype {img.dtype}; sources must produce uint8 frames")
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            img = img[:, :, 0]
        elif c == 4:
            img = np.ascontiguousarray(img[:, :, :3])
        elif c != 3:
            raise SourceError(f"{what} has {c} channels; expected 1 (gray), 3 (BGR) or 4 (BGRA)")
    elif img.ndim != 2:
        raise SourceError(f"{what} has shape {img.shape}; expected H x W or H x W x 3")
    return img


class Source:
    """Base class of all sources.

    Attributes a pipeline reads: ``name`` (for messages), ``live`` (frames arrive in real
    time: cameras, streams, paced files), ``fps`` (None if unknown), ``frame_count``
    (None if unknown, e.g. a camera), ``skipped`` (files or frames skipped with a
    warning), ``reconnects`` (how often a lost camera/stream was reopened),
    ``independent_frames`` (each frame is a separate picture, e.g. a folder of images: a
    frame a stage refuses as input is skipped with a warning instead of ending the run).

    To write a source, subclass this and implement ``_open``, ``_read`` (return a
    :class:`Frame`, or None at the end) and ``_close``.
    """

    name: str = "source"
    live: bool = False
    fps: float | None = None
    frame_count: int | None = None
    independent_frames: bool = False

    def __init__(self) -> None:
        self._opened = False
        self._index = 0
        self._stop = threading.Event()
        self.skipped: list[str] = []
        self.reconnects = 0

    # -- to implement -----------------------------------------------------------------
    def _open(self) -> None:
        """Open the device or file; raise SourceError if impossible."""

    def _read(self) -> Frame | None:
        """Return the next frame, None at the end; raise DecodeError on a read failure."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release the device or file."""

    # -- public -----------------------------------------------------------------------
    def open(self) -> "Source":
        if not self._opened:
            self._stop.clear()
            self._open()
            self._opened = True
        return self

    def read(self) -> Frame | None:
        if not self._opened:
            self.open()
        return self._read()

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._close()

    def input_paths(self) -> list[Path]:
        """The files or folders this source reads (outputs must stay apart from them): its
        ``path`` attribute when it has one (a video file), else none."""
        path = getattr(self, "path", None)
        return [Path(path)] if path is not None else []

    def frame_origin(self, index: int) -> str:
        """Where frame ``index`` came from, for messages (a folder source names the file)."""
        return f"frame {index}"

    def interrupt(self) -> None:
        """Ask a source waiting (pacing, reconnect back-off) to return soon."""
        self._stop.set()

    def prepare_for_mode(self, live: bool) -> None:
        """Called by a pipeline before :meth:`open` with its mode (``live`` True or False).

        Sources whose behaviour depends on the mode and was left open (a camera's
        ``reconnect=None``) settle it here; the default does nothing.
        """

    def prepare_for_stages(self, stages) -> None:
        """Called by a pipeline before :meth:`open` with its stages. A stage may ask its
        source for something through a ``source_request`` dict (the ``repair`` stage:
        ``{"packet_filter": "zero_runs", "concealment": ...}``); a source that can do it
        takes it here, the others ignore it (the default)."""

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        self.open()
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Pacer:
    """Releases frames at ``fps`` per second (to replay a file or synthetic source in
    real time); ``wait()`` returns early when ``stop`` is set. ``fps`` None or 0: no wait."""

    def __init__(self, fps: float | None, stop: threading.Event):
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.stop = stop
        self.next_t: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self.next_t is None:
            self.next_t = now
        delay = self.next_t - now
        if delay > 0:
            self.stop.wait(delay)
        self.next_t = max(self.next_t + self.period, time.perf_counter() - self.period)


class ReleasesCapture:
    """Mixin for sources that read through an OpenCV ``VideoCapture`` held in ``_cap``:
    ``_close`` releases it."""

    _cap = None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
