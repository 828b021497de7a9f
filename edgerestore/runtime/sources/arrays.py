"""Frames made in memory: numpy arrays a caller hands over, and generated test frames."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from edgerestore.imageio import to_float, to_uint8
from edgerestore.runtime.errors import SourceError
from edgerestore.runtime.sources.base import Pacer, Source, as_uint8_frame
from edgerestore.runtime.sources.frame import Frame


class SyntheticSource(Source):
    """Generated frames for tests and benchmarks: a moving scene with edges and texture.

    ``noise_sigma`` (0-255 scale) adds seeded Gaussian noise; ``realtime=True`` releases
    frames at ``fps`` like a camera (set ``live``). ``gray=True`` yields HxW frames.
    """

    def __init__(self, width: int = 320, height: int = 180, frames: int | None = 50, *,
                 fps: float = 25.0, noise_sigma: float = 0.0, seed: int = 0,
                 realtime: bool = False, gray: bool = False):
        super().__init__()
        if width < 1 or height < 1:
            raise SourceError(f"synthetic source size must be at least 1x1, got {width}x{height}")
        self.size = (int(width), int(height))
        self.frame_count = frames
        self.fps = float(fps)
        self.noise_sigma = float(noise_sigma)
        self.seed = seed
        self.realtime = realtime
        self.live = realtime
        self.gray = gray
        self.name = f"synthetic {width}x{height}"

    def _open(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._index = 0
        self._pacer = Pacer(self.fps, self._stop) if self.realtime else None
        w, h = self.size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._yy, self._xx = yy, xx

    def clean(self, index: int) -> np.ndarray:
        """The noise-free frame ``index`` (uint8 BGR, or gray if ``gray``)."""
        w, h = self.size
        yy, xx = self._yy, self._xx
        t = index / self.fps
        base = 0.5 + 0.25 * np.sin(xx / max(w, 1) * 6.0 + t) * np.cos(yy / max(h, 1) * 4.0)
        img = np.stack([base, 0.8 * base + 0.1, 1.0 - 0.7 * base], axis=-1)
        cx, cy = (0.2 + 0.6 * ((t * 0.3) % 1.0)) * w, 0.5 * h
        r = 0.2 * min(w, h)
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[disk] = (0.9, 0.3, 0.1)
        img[(xx.astype(int) // 8 + yy.astype(int) // 8) % 2 == 0, :] *= 0.85  # texture
        out = to_uint8(img)
        return out.mean(axis=2).astype(np.uint8) if self.gray else out

    def _read(self) -> Frame | None:
        if self.frame_count is not None and self._index >= self.frame_count:
            return None
        if self._pacer is not None:
            self._pacer.wait()
        img = self.clean(self._index)
        if self.noise_sigma > 0:
            noise = self._rng.normal(0, self.noise_sigma / 255.0, img.shape).astype(np.float32)
            img = to_uint8(to_float(img) + noise)
        frame = Frame(img, self._index, self._index / self.fps)
        self._index += 1
        return frame


class ArraySource(Source):
    """Frames from numpy arrays (any iterable of uint8 HxW or HxWx3 BGR arrays)."""

    def __init__(self, frames: Iterable[np.ndarray], *, fps: float = 25.0, name: str = "arrays"):
        super().__init__()
        self._frames = frames
        self.fps = float(fps)
        self.name = name
        try:
            self.frame_count = len(frames)  # type: ignore[arg-type]
        except TypeError:
            self.frame_count = None

    def _open(self) -> None:
        self._it = iter(self._frames)
        self._index = 0

    def _read(self) -> Frame | None:
        img = next(self._it, None)
        if img is None:
            return None
        img = np.asarray(img)
        if img.dtype != np.uint8:
            raise SourceError(
                f"array frame {self._index} has dtype {img.dtype}; frames are uint8 "
                "(for float images in [0, 1]: edgerestore.imageio.to_uint8(img))"
            )
        frame = Frame(as_uint8_frame(img, what=f"array frame {self._index}"), self._index, self._index / self.fps)
        self._index += 1
        return frame
