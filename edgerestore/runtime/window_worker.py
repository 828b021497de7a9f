"""The worker that runs a :class:`~edgerestore.runtime.stages.WindowStage`: it buffers
frames, cuts the stream into runs of neighbours, and calls the stage once per frame with
the frame's window, in stream order.

A *run* is a sequence of frames with consecutive indices and one size: a gap in the
indices (frames dropped in live mode) or a change of size (a folder of mixed images)
ends it, and the stage is ``reset()`` (a causal stage may bridge gaps of up to
``stage.bridge`` frames). Within a run, the window of the frame at position
``p`` holds positions ``p - radius .. p + ahead`` clipped to the run (``ahead`` =
``stage.frames_ahead()``: ``radius`` offline, 0 for a causal stage), so a frame comes
out ``ahead`` frames late and the last frames of a run when it ends. The buffer holds
at most ``radius + ahead + 1`` frames.
"""

from __future__ import annotations

import dataclasses
import time

from edgerestore.imageio import to_float
from edgerestore.runtime.sources import Frame
from edgerestore.runtime.stages.window import Window
from edgerestore.runtime.workers import StageWorker, call_stage


def breaks_run(previous: Frame, frame: Frame, bridge: int = 0) -> bool:
    """True when ``frame`` cannot be a neighbour of ``previous`` (the frame before it):
    more than ``bridge`` frames were skipped between them (or the index went back), or
    their sizes differ."""
    skipped = frame.index - previous.index - 1
    return not 0 <= skipped <= bridge or frame.image.shape != previous.image.shape


class WindowStageWorker(StageWorker):
    """For :class:`~edgerestore.runtime.stages.WindowStage` (module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frames: list[Frame] = []      # the current run, from the oldest frame still needed
        self.outputs: list = []            # the stage's output for each of them (None: not yet)
        self.next = 0                      # position in ``frames`` of the next frame to produce

    def process(self, frame: Frame) -> None:
        frame.image = to_float(frame.image)
        if self.frames and breaks_run(self.frames[-1], frame, int(getattr(self.stage, "bridge", 0))):
            self.finish()
            call_stage(self.stage, self.stage.reset, frame)
        self.frames.append(frame)
        self.outputs.append(None)
        ahead = self.stage.frames_ahead()
        while self.next < len(self.frames) and len(self.frames) - 1 - self.next >= ahead:
            self.produce()
        keep_from = max(0, self.next - int(self.stage.radius))
        del self.frames[:keep_from], self.outputs[:keep_from]
        self.next -= keep_from

    def finish(self) -> None:
        """The run ended (cut or end of stream): produce the frames still waiting."""
        while self.next < len(self.frames):
            self.produce()
        self.frames, self.outputs, self.next = [], [], 0

    def produce(self) -> None:
        p, r = self.next, int(self.stage.radius)
        lo, hi = max(0, p - r), min(len(self.frames) - 1, p + self.stage.frames_ahead())
        run = self.frames[lo:hi + 1]
        window = Window([f.image for f in run], p - lo, [f.index for f in run],
                        [f.timestamp for f in run], self.outputs[lo:hi + 1])
        frame = self.frames[p]
        t0 = time.perf_counter()
        out = call_stage(self.stage, self.stage.process_window, frame, window)
        self.timer.add(time.perf_counter() - t0)
        self.outputs[p] = out
        self.next += 1
        self.emit(dataclasses.replace(frame, image=out))
