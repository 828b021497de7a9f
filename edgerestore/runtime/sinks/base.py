"""The sink protocol (:class:`Sink`) and what file sinks share."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgerestore.runtime.errors import SinkError, StopRun
from edgerestore.runtime.sources import Frame, load_cv2


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


def check_writable_folder(folder: Path, what: str) -> None:
    """Raise :class:`SinkError` unless ``folder`` exists, is a folder and takes a new file
    (``what`` names the output in the message)."""
    if not folder.exists():
        raise SinkError(f"cannot write {what}: folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        raise SinkError(f"cannot write {what}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SinkError(f"cannot write {what}: folder {folder} is not writable ({exc.strerror})") from None


def to_bgr(img: np.ndarray) -> np.ndarray:
    """A gray ``H x W`` frame as ``H x W x 3`` BGR; colour frames unchanged."""
    if img.ndim == 2:
        return load_cv2().cvtColor(img, load_cv2().COLOR_GRAY2BGR)
    return img
