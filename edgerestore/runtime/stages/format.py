"""Stages that change a frame's format: size (``resize``) and colour (``gray``, ``color``)."""

from __future__ import annotations

import numpy as np

from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages.base import Stage, format_args

INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos": 4}
"""Interpolation names -> OpenCV flags (``cv2.INTER_NEAREST`` ... ``cv2.INTER_LANCZOS4``)."""


def interpolation_flag(method: str) -> int:
    """The OpenCV flag of an interpolation name; an unknown name raises PipelineSpecError."""
    if method not in INTERPOLATIONS:
        raise PipelineSpecError(f"unknown interpolation {method!r}; use one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[method]


class ResizeStage(Stage):
    """Resize to ``width`` x ``height``; give one of them to keep the aspect ratio."""

    def __init__(self, width: int | None = None, height: int | None = None, method: str = "area"):
        if width is None and height is None:
            raise PipelineSpecError("resize needs width=... and/or height=...")
        self.width, self.height = width, height
        self.flag = interpolation_flag(method)
        self.name = f"resize({format_args(width=width, height=height)})"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        nw = self.width or max(1, round(w * self.height / h))
        nh = self.height or max(1, round(h * self.width / w))
        return np.clip(cv2.resize(img, (int(nw), int(nh)), interpolation=self.flag), 0.0, 1.0)


class GrayStage(Stage):
    """BGR -> gray (BT.601 luma, as OpenCV)."""

    name = "gray"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


class ColorStage(Stage):
    """Gray -> BGR (three equal channels); colour frames pass unchanged."""

    name = "color"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
