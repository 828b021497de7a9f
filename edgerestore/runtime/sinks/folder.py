"""Image-folder output: one image file per frame, each complete or absent."""

from __future__ import annotations

import os
from pathlib import Path

from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sinks.base import Sink, check_writable_folder
from edgerestore.runtime.sources import Frame, load_cv2

IMAGE_OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
"""Extensions an image-folder output can be written in."""


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
        check_writable_folder(self.path, f"images into {self.path}")

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
