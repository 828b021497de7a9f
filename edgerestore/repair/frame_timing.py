"""Whole-frame damage: frozen frames (a frame that repeats the one before it) and dropped
frames (timestamp gaps larger than ``gap_factor`` frame periods). Timestamps in seconds.
"""

from __future__ import annotations

import numpy as np

from edgerestore._lazy import require


def is_frozen(img: np.ndarray, prev: np.ndarray | None, tol: float = 0.1, max_step: int = 2) -> bool:
    """True when ``img`` repeats ``prev``: bit for bit or nearly (mean absolute difference
    at most ``tol`` and no pixel off by more than ``max_step``, 0-255). A repeated frame
    (a stalled camera or link, a decoder showing the last frame again) is a copy; a static
    scene is not (sensor noise everywhere), nor is a frame in which a heavily compressed
    stream updated only a few blocks (little changes, but what changes changes a lot)."""
    if prev is None or prev.shape != img.shape:
        return False
    cv2 = require("cv2", purpose="frame repair")
    d = cv2.absdiff(img, prev)
    return float(np.mean(d)) <= tol and int(d.max()) <= max_step


class GapDetector:
    """Dropped frames from timestamps. The frame period is ``1 / fps`` when given, else the
    median of the steps seen so far (up to the last 32). :meth:`step` returns how many
    frames are missing before the frame with timestamp ``t``."""

    def __init__(self, fps: float | None = None, factor: float = 1.5):
        self.period = 1.0 / fps if fps else None
        self.factor = factor
        self.last: float | None = None
        self.steps: list[float] = []

    def nominal(self) -> float | None:
        if self.period:
            return self.period
        if not self.steps:
            return None
        return float(np.median(self.steps))

    def step(self, t: float | None) -> int:
        if t is None:
            return 0
        missing = 0
        if self.last is not None:
            dt = t - self.last
            nom = self.nominal()
            if nom and dt > self.factor * nom:
                missing = max(0, int(round(dt / nom)) - 1)
            elif dt > 0:
                self.steps = (self.steps + [dt])[-32:]
        self.last = t
        return missing
