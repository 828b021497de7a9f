"""User masks for the repairer: damage the detectors cannot see, marked by the user.

A mask is ``H x W`` bool, True where the frame is damaged. Files are read with
:func:`edgerestore.imageio.read_image`: any nonzero pixel (of any colour channel; alpha
is ignored) marks damage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.imageio import IMAGE_EXTENSIONS, list_images, read_image


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """The mask image at ``path`` as ``H x W`` bool (nonzero in any colour channel = damage)."""
    m = read_image(path, what="the mask image")
    if m.ndim == 3:
        m = m[..., :3].max(axis=2) if m.shape[2] >= 3 else m[..., 0]
    return m > 0


class MaskSource:
    """User masks: nonzero pixels are damage to repair, whatever the detectors say.

    ``spec``: a mask image file (the same mask for every frame), a folder of mask images
    (sorted naturally; the i-th image for the i-th frame), a bool/uint8 array (every
    frame) or a sequence of arrays (one per frame). A mask must have the frame's size; a
    folder with fewer masks than frames is an error when the first frame without one
    arrives.
    """

    def __init__(self, spec):
        self.spec = spec
        self.single: np.ndarray | None = None
        self.files: list[Path] | None = None
        self.arrays: Sequence[np.ndarray] | None = None
        if isinstance(spec, (str, os.PathLike)):
            p = Path(spec)
            if p.is_dir():
                files = list_images(p)
                if not files:
                    raise InputError(f"mask folder {p} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
                self.files = files
                self.name = str(p)
            elif p.is_file():
                self.single = read_mask(p)
                self.name = str(p)
            else:
                raise InputError(f"mask {p} does not exist (give an image file or a folder of images)")
        elif isinstance(spec, np.ndarray):
            if spec.ndim != 2:
                raise InputError(f"a mask array must be H x W, got shape {spec.shape}")
            self.single = spec.astype(bool)
            self.name = "array"
        elif isinstance(spec, (list, tuple)):
            if not spec:
                raise InputError("an empty list of masks")
            self.arrays = spec
            self.name = f"{len(spec)} arrays"
        else:
            raise InputError(f"a mask is a path, a folder, an array or a list of arrays, not {type(spec).__name__}")

    def __len__(self) -> int | None:  # type: ignore[override]
        if self.files is not None:
            return len(self.files)
        if self.arrays is not None:
            return len(self.arrays)
        return None

    def get(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        """The mask of frame ``i`` (``H x W`` bool), checked against the frame size ``shape``."""
        if self.single is not None:
            m, what = self.single, f"mask {self.name}"
        elif self.files is not None:
            if i >= len(self.files):
                raise InputError(f"mask folder {self.name} has {len(self.files)} masks but frame {i} "
                                 f"needs one (give one mask per frame, or a single mask file)")
            m, what = read_mask(self.files[i]), f"mask {self.files[i]}"
        else:
            assert self.arrays is not None
            if i >= len(self.arrays):
                raise InputError(f"{len(self.arrays)} masks were given but frame {i} needs one")
            m, what = np.asarray(self.arrays[i]).astype(bool), f"mask {i}"
        if m.shape != tuple(shape):
            raise InputError(f"{what} is {m.shape[1]}x{m.shape[0]} but the frames are {shape[1]}x{shape[0]}; "
                             "a mask must have the frame's size")
        return m
