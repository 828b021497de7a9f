"""Sinks that hand frames to Python code or discard them."""

from __future__ import annotations

from typing import Callable

from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sources import Frame


class CallbackSink(Sink):
    """Calls ``fn(frame)`` for each frame (``frame.image`` is uint8, ``frame.index`` ...)."""

    def __init__(self, fn: Callable[[Frame], object], name: str | None = None):
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callback")

    def write(self, frame: Frame) -> None:
        self.fn(frame)
        self.frames_written += 1


class ListSink(CallbackSink):
    """Collects the frames in ``self.frames`` (handy in notebooks and tests)."""

    def __init__(self):
        self.frames: list[Frame] = []
        super().__init__(self.frames.append, name="list")


class NullSink(Sink):
    """Discards frames (for benchmarks)."""

    name = "null"

    def write(self, frame: Frame) -> None:
        self.frames_written += 1
