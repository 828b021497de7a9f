"""The :class:`Frame`: one image and where it sits in time, as it travels from a source
through the stages to the sinks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class Frame:
    """One frame on its way through a pipeline.

    ``image``: uint8 ``H x W x 3`` BGR or ``H x W`` gray at the boundaries; float32 in
    [0, 1] between stages. ``index``: position in the source, 0-based. ``timestamp``:
    seconds of media time for files, seconds since the start for cameras and streams.
    ``t_capture`` is ``time.perf_counter()`` when the frame was read, used to measure
    latency. ``corrupt``: what the decoder knows of damage: True when the frame was
    decoded from damaged data or predicted from such a frame before the next intact
    keyframe, False when decoded cleanly, None when the source cannot tell (cameras,
    images, generated frames); see ``VideoFileSource``.
    """

    image: np.ndarray
    index: int
    timestamp: float
    t_capture: float = field(default_factory=time.perf_counter)
    corrupt: bool | None = None
