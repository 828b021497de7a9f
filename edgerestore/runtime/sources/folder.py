"""A folder of images, read in natural order (``2.png`` before ``10.png``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from edgerestore.imageio import IMAGE_EXTENSIONS, natural_key
from edgerestore.runtime.errors import SourceError
from edgerestore.runtime.sources.base import Pacer, Source, as_uint8_frame, load_cv2
from edgerestore.runtime.sources.frame import Frame

log = logging.getLogger("edgerestore.runtime")


class ImageFolderSource(Source):
    """A folder of images, sorted naturally (``2.png`` before ``10.png``).

    Unreadable or 0-pixel files are skipped with a warning and listed in ``skipped``.
    Frames may differ in size and colour; sinks that need one size (video files) adapt.
    A frame that a stage refuses as input (an image too small for the kernel, e.g. 1x1)
    is skipped by the pipeline with a warning naming the file (``independent_frames``).
    ``fps``: the rate the frames are stamped (and, with ``realtime=True``, released) at.
    """

    def __init__(self, folder: str | os.PathLike, *, fps: float = 25.0,
                 extensions: Iterable[str] = IMAGE_EXTENSIONS, realtime: bool = False):
        super().__init__()
        self.folder = Path(folder)
        self.name = str(folder)
        self.fps = float(fps)
        self.extensions = tuple(e.lower() for e in extensions)
        self.realtime = realtime
        self.live = realtime
        self._files: list[Path] = []
        self._origins: dict[int, Path] = {}

    independent_frames = True

    def input_paths(self) -> list[Path]:
        return [self.folder]

    def frame_origin(self, index: int) -> str:
        path = self._origins.get(index)
        return str(path) if path is not None else f"frame {index}"

    def _open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"input folder not found: {self.folder}")
        files = [p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in self.extensions]
        if not files:
            raise SourceError(
                f"no images in {self.folder} (looked for {', '.join(self.extensions)})"
            )
        self._files = sorted(files, key=lambda p: natural_key(p.name))
        self.frame_count = len(self._files)
        self._pos = 0
        self._index = 0
        self._pacer = Pacer(self.fps, self._stop) if self.realtime else None

    def _read(self) -> Frame | None:
        cv2 = load_cv2()
        while self._pos < len(self._files):
            path = self._files[self._pos]
            self._pos += 1
            try:
                data = np.fromfile(path, dtype=np.uint8)
            except OSError as exc:
                data = None
                reason = f"cannot read it ({exc.strerror})"
            else:
                reason = "0 bytes" if data.size == 0 else "not an image OpenCV can decode"
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
            if img is None or img.size == 0:
                if img is not None:
                    reason = "0 pixels"
                log.warning("skipping %s: %s", path, reason)
                self.skipped.append(f"{path.name}: {reason}")
                continue
            if self._pacer is not None:
                self._pacer.wait()
            frame = Frame(as_uint8_frame(img, what=str(path)), self._index, self._index / self.fps)
            self._origins[self._index] = path
            self._index += 1
            return frame
        return None
