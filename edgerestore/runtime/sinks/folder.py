"""Image-folder output: one image file per frame, each complete or absent."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from edgerestore.imageio import write_bytes_atomic
from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sinks.base import Sink, check_writable_folder
from edgerestore.runtime.sources import Frame, load_cv2

log = logging.getLogger("edgerestore.runtime")

IMAGE_OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
"""Extensions an image-folder output can be written in."""

FRAME_FILE = re.compile(r"^\d+(" + "|".join(re.escape(e) for e in IMAGE_OUTPUT_EXTENSIONS) + r")$", re.IGNORECASE)
"""Names of frame images as a folder output writes them (digits and an image extension)."""


class ImageFolderSink(Sink):
    """A folder of images named after the frame index (``000000.png``, ...).

    Each image is written to a temporary name and moved into place, so every file in the
    folder is complete. In live mode, gaps in the numbering show dropped frames.
    ``ext``: ``.png`` (lossless, default), ``.jpg``, ... The folder is created if needed.

    A folder that already holds frame images (``FRAME_FILE`` names, from an earlier run)
    is refused by :meth:`check`, so two runs never mix silently; with ``overwrite=True``
    it is taken, and the earlier frames this run did not replace are removed when the
    output is closed, if this run wrote any frame (a run that wrote none leaves the folder
    as it was; a folder it created is removed again). Other files are left alone.
    """

    is_folder = True

    def __init__(self, folder: str | os.PathLike, *, ext: str = ".png", pattern: str = "{index:06d}",
                 overwrite: bool = False):
        super().__init__()
        self.path = Path(folder)
        self.name = str(folder)
        self.ext = ext if ext.startswith(".") else "." + ext
        if self.ext.lower() not in IMAGE_OUTPUT_EXTENSIONS:
            raise SinkError(f"unknown image extension {self.ext!r}; use one of {', '.join(IMAGE_OUTPUT_EXTENSIONS)}")
        self.pattern = pattern
        self.overwrite = overwrite
        self.earlier: set[str] = set()
        self._written: set[str] = set()
        self._created = False

    def check(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"cannot write images into {self.path}: it is a file, not a folder")
        parent = self.path.parent if not self.path.exists() else self.path
        if not self.path.exists():
            if not parent.is_dir():
                raise SinkError(f"cannot create {self.path}: folder {parent} does not exist")
            try:
                self.path.mkdir()
                self._created = True
            except OSError as exc:
                raise SinkError(f"cannot create folder {self.path}: {exc.strerror}") from None
        check_writable_folder(self.path, f"images into {self.path}")
        self.earlier = {p.name for p in self.path.iterdir() if FRAME_FILE.match(p.name) and p.is_file()}
        if self.earlier and not self.overwrite:
            shown = ", ".join(sorted(self.earlier)[:3]) + (", ..." if len(self.earlier) > 3 else "")
            raise SinkError(
                f"the output folder {self.path} already holds {len(self.earlier)} frame image(s) "
                f"({shown}), from an earlier run; the two would mix. Choose an empty or new folder, "
                "or give --overwrite (Python: overwrite=True) to replace them: the earlier frames "
                "this run does not write are removed at the end")

    def write(self, frame: Frame) -> None:
        cv2 = load_cv2()
        name = self.pattern.format(index=frame.index) + self.ext
        ok, buf = cv2.imencode(self.ext, frame.image)
        if not ok:
            raise SinkError(f"could not encode frame {frame.index} as {self.ext}")
        try:
            write_bytes_atomic(self.path / name, buf.tobytes())
        except OSError as exc:
            raise SinkError(f"cannot write frame {frame.index} to {self.path / name}: "
                            f"{exc.strerror or exc}; {self.frames_written} frames were written "
                            "before it") from None
        self._written.add(name)
        self.frames_written += 1

    def close(self) -> None:
        if self.frames_written:
            self._remove_earlier()
        elif self._created:
            try:
                self.path.rmdir()  # nothing came: leave no empty folder that looks like an output
            except OSError:
                pass
        self._created = False

    def _remove_earlier(self) -> None:
        """With ``overwrite``: remove the frames of an earlier run that this run did not replace."""
        stale = sorted(self.earlier - self._written)
        self.earlier = set()
        for name in stale:
            try:
                (self.path / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove %s, a frame of an earlier run: %s", self.path / name, exc.strerror)
        if stale:
            log.info("removed %d frame image(s) of an earlier run from %s", len(stale), self.path)
