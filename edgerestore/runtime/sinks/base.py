"""The sink protocol (:class:`Sink`) and what file sinks share."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from edgerestore.runtime.errors import SinkError, StopRun
from edgerestore.runtime.sources import Frame, load_cv2

log = logging.getLogger("edgerestore.runtime")

PARTIAL_NAME = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)(?:\..*)?$")
"""Temporary files of outputs being written: ``.NAME.partial-PID[.ext...]`` (PID: the
process writing it), moved into place when the output is complete."""


class Sink:
    """Base class of all sinks (see the module docstring for the protocol)."""

    name: str = "sink"
    path: Path | None = None
    sample_dtype = np.uint8
    """The integer samples this sink takes (``uint16`` for a video sink that keeps more
    than 8 bits); the sink loop converts each frame to it."""

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


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (also one of another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def clean_stale_partials(folder: Path) -> list[str]:
    """Remove the temporary files (:data:`PARTIAL_NAME`) that processes no longer running
    left in ``folder`` (killed with ``kill -9``, a power cut); return their names.

    Partials of live processes are left alone, this process's own too (another pipeline
    of this program may be writing it; one left by an ended process that had the same
    PID, as in a restarted container, is overwritten when the same output is written
    again). A file that cannot be removed is only reported in the log."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = PARTIAL_NAME.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or process_alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError as exc:
            log.warning("%s is left over by process %d, which has ended; cannot remove it: %s",
                        entry.path, pid, exc.strerror)
    if removed:
        log.warning("removed %d temporary file(s) in %s left by runs that did not finish: %s",
                    len(removed), folder, ", ".join(sorted(removed)[:5]) + (", ..." if len(removed) > 5 else ""))
    return removed


def within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or inside it (both resolved)."""
    return path == folder or folder in path.parents


def check_apart_from_inputs(sink: Sink, inputs: Iterable[Path]) -> None:
    """Raise :class:`SinkError` when ``sink`` would write over what a run reads: an output
    file that is an input, or an output folder that is, holds or sits inside an input
    folder (its images would be replaced, or read back as input)."""
    if sink.path is None:
        return
    out = Path(sink.path).resolve()
    out_is_folder = getattr(sink, "is_folder", False)
    for src in inputs:
        src = Path(src).resolve()
        if out == src or (out.exists() and src.exists() and os.path.samefile(out, src)):
            raise SinkError(f"the output {sink.path} is the input; write to another "
                            f"{'folder' if out_is_folder else 'file'} (the input would be "
                            "replaced by its restored copy)")
        if out_is_folder and src.is_dir() and (within(out, src) or within(src, out)):
            where = "inside the input folder" if within(out, src) else "holds the input folder"
            raise SinkError(f"the output folder {sink.path} {where} {src}; write the images to a "
                            "folder apart from the input (e.g. a sibling folder)")
