"""The jobs of a run, one object each: the :class:`Capture` (source thread), a stage
worker per stage (its own thread), the :class:`SinkLoop` (calling thread), and the
:class:`RunControl` they share to stop the run and record why it ended.

Which worker runs a stage depends on the stage's kind (its class): :data:`STAGE_WORKERS`
maps kinds to worker classes, and :func:`worker_for` looks a stage up along its class
hierarchy. A new kind of stage (window, batch: ``docs/runtime.md``) is a new base class
in ``stages/base.py``, a new worker class here and one more entry in the table.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Sequence

import numpy as np

from edgerestore.errors import EdgeRestoreError
from edgerestore.imageio import to_float, to_uint8
from edgerestore.runtime.channel import END_OF_STREAM, NOTHING_YET, STOPPING, Channel
from edgerestore.runtime.errors import DecodeError, StageError, StopRun
from edgerestore.runtime.report import LatencyLog, Progress, StageTimer
from edgerestore.runtime.sinks import Sink
from edgerestore.runtime.sources import Frame, Source
from edgerestore.runtime.stages import FrameStage, Stage, WindowStage

log = logging.getLogger("edgerestore.runtime")


class RunControl:
    """What the threads of one run share: the ``stop`` event and how the run ended.

    ``errors``: failures (the first is re-raised by the pipeline; outputs are discarded);
    ``stopped``: a stage or sink raised :class:`StopRun`; ``interrupted``: Ctrl-C;
    ``source_error``: the input ended early (:class:`DecodeError`).
    """

    def __init__(self, source: Source):
        self.source = source
        self.stop = threading.Event()
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []
        self.interrupted = False
        self.source_error: DecodeError | None = None

    def halt(self) -> None:
        """Stop every thread soon (a source waiting on pacing or reconnection too)."""
        self.stop.set()
        self.source.interrupt()

    def fail(self, exc: BaseException) -> None:
        """Record a failure and stop the run."""
        self.errors.append(exc)
        self.halt()

    def stop_cleanly(self, exc: StopRun, who: str) -> None:
        """A stage or sink asked to end the run; outputs keep what was written."""
        log.info("%s: %s", who, exc)
        self.stopped.set()
        self.halt()


# ----------------------------------------------------------------- capture
class Capture:
    """Reads frames from the source into the first channel, stamping ``t_capture``;
    ``max_frames`` limits the frames read. Runs in its own thread (:meth:`run`)."""

    def __init__(self, source: Source, channel: Channel, control: RunControl, max_frames: int | None):
        self.source, self.channel, self.control = source, channel, control
        self.max_frames = max_frames
        self.frames_in = 0

    def run(self) -> None:
        control = self.control
        try:
            while not control.stop.is_set():
                if self.max_frames is not None and self.frames_in >= self.max_frames:
                    break
                frame = self.source.read()
                if frame is None:
                    break
                frame.t_capture = time.perf_counter()
                self.frames_in += 1
                self.channel.put(frame, control.stop)
        except DecodeError as exc:
            control.source_error = exc
            log.warning("%s", exc)
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            control.fail(exc)
        finally:
            self.channel.put(END_OF_STREAM, control.stop, force=True)


# ----------------------------------------------------------------- stage workers
def check_stage_result(stage: Stage, frame: Frame, out: Any) -> np.ndarray:
    """Validate what ``stage`` returned for ``frame``: a float ``H x W`` or ``H x W x 3``
    numpy array of finite values. Returns it as float32; raises :class:`StageError`
    naming the stage, the frame and what is wrong."""
    where = f"stage '{stage.name}' at frame {frame.index}"
    if not isinstance(out, np.ndarray):
        raise StageError(f"{where} returned {type(out).__name__}, not a numpy array",
                         stage=stage.name, frame_index=frame.index)
    if out.dtype.kind != "f":
        raise StageError(f"{where} returned dtype {out.dtype}; stages return float32 in [0, 1]",
                         stage=stage.name, frame_index=frame.index)
    if not (out.ndim == 2 or (out.ndim == 3 and out.shape[2] == 3)) or out.size == 0:
        raise StageError(f"{where} returned shape {out.shape}; expected H x W or H x W x 3",
                         stage=stage.name, frame_index=frame.index)
    finite = np.isfinite(out)
    if not finite.all():
        bad = int(out.size - np.count_nonzero(finite))
        raise StageError(f"{where} produced {bad} NaN/Inf values (of {out.size})",
                         stage=stage.name, frame_index=frame.index)
    return out.astype(np.float32, copy=False)


def call_stage(stage: Stage, fn: Callable[..., Any], frame: Frame | None, *args) -> Any:
    """``fn(*args)`` for ``stage`` at ``frame`` (None: at the end of the stream); any
    failure but :class:`StopRun` becomes a :class:`StageError` naming the stage and frame."""
    where = f"frame {frame.index}" if frame is not None else "the end of the stream"
    index = None if frame is None else frame.index
    try:
        return fn(*args)
    except (StopRun, StageError):
        raise
    except EdgeRestoreError as exc:
        raise StageError(f"stage '{stage.name}' failed at {where}: {exc}", stage=stage.name,
                         frame_index=index) from exc
    except Exception as exc:
        raise StageError(f"stage '{stage.name}' failed at {where}: {type(exc).__name__}: {exc}",
                         stage=stage.name, frame_index=index) from exc


class StageWorker:
    """Runs one stage in its own thread: frames from ``inbox``, results to ``outbox``.

    Subclasses say what one frame does (:meth:`process`) and what the end of the stream
    does (:meth:`finish`); the loop, the end marker, :class:`StopRun` and failures are
    handled here. ``timer`` collects the stage's time per frame for the report.
    """

    def __init__(self, stage: Stage, inbox: Channel, outbox: Channel, control: RunControl, timer: StageTimer):
        self.stage, self.inbox, self.outbox = stage, inbox, outbox
        self.control, self.timer = control, timer

    def run(self) -> None:
        stop = self.control.stop
        try:
            while True:
                item = self.inbox.get(stop)
                if item is STOPPING:
                    return
                if item is NOTHING_YET:
                    continue
                if item is END_OF_STREAM:
                    self.finish()
                    self.outbox.put(END_OF_STREAM, stop, force=True)
                    return
                self.process(item)
        except StopRun as exc:
            self.control.stop_cleanly(exc, f"stage {self.stage.name} asked to stop")
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            self.control.fail(exc)

    def process(self, frame: Frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self) -> None:
        """At the end of the stream, before the end marker is passed on."""

    def emit(self, frame: Frame) -> None:
        """Check ``frame``'s image as this stage's result and pass the frame on."""
        frame.image = check_stage_result(self.stage, frame, frame.image)
        self.outbox.put(frame, self.control.stop)


class ArrayStageWorker(StageWorker):
    """For :class:`Stage`: ``stage(img)`` on each frame's float32 image, timed; the frame
    keeps its index, timestamp and capture time."""

    def process(self, frame: Frame) -> None:
        x = to_float(frame.image)
        t0 = time.perf_counter()
        out = call_stage(self.stage, self.stage, frame, x)
        self.timer.add(time.perf_counter() - t0)
        frame.image = out
        self.emit(frame)


class FrameStageWorker(StageWorker):
    """For :class:`FrameStage`: ``push_frame(frame)`` (image as float32) passes on the
    frames it returns; ``flush_frames()`` at the end of the stream."""

    def process(self, frame: Frame) -> None:
        frame.image = to_float(frame.image)
        t0 = time.perf_counter()
        outs = list(call_stage(self.stage, self.stage.push_frame, frame, frame))
        self.timer.add(time.perf_counter() - t0)
        for out in outs:
            self.emit(out)

    def finish(self) -> None:
        for out in list(call_stage(self.stage, self.stage.flush_frames, None)):
            self.emit(out)


STAGE_WORKERS: dict[type, type[StageWorker]] = {
    FrameStage: FrameStageWorker,
    Stage: ArrayStageWorker,
}
"""Kind of stage (base class) -> the worker that runs it."""

# The window worker builds on StageWorker above, so its module is imported here, last.
from edgerestore.runtime.window_worker import WindowStageWorker  # noqa: E402

STAGE_WORKERS[WindowStage] = WindowStageWorker


def _register_window_worker() -> None:
    from edgerestore.runtime.stages import WindowStage

    if WindowStage not in STAGE_WORKERS:
        from edgerestore.runtime.window_worker import WindowStageWorker

        STAGE_WORKERS[WindowStage] = WindowStageWorker


def worker_for(stage: Stage) -> type[StageWorker]:
    """The worker class for ``stage``: the entry of its nearest class in :data:`STAGE_WORKERS`."""
    _register_window_worker()  # its module builds on this one: added on first use
    for cls in type(stage).__mro__:
        if cls in STAGE_WORKERS:
            return STAGE_WORKERS[cls]
    raise TypeError(f"{stage!r} is not a Stage; wrap it with edgerestore.runtime.stages.as_stage")


# ----------------------------------------------------------------- sinks
class SinkLoop:
    """Runs in the calling thread: takes the frames of the last channel, converts them to
    uint8, hands them to every sink, and counts frames out and latency. Ctrl-C (between
    frames, see :func:`sigint_between_frames`), :class:`StopRun` and sink failures end it
    and are recorded in ``control``."""

    def __init__(self, channel: Channel, sinks: Sequence[Sink], control: RunControl,
                 progress: Progress, latency: LatencyLog):
        self.channel, self.sinks, self.control = channel, list(sinks), control
        self.progress, self.latency = progress, latency
        self.frames_out = 0

    def run(self) -> None:
        control = self.control
        try:
            with sigint_between_frames() as sigint:
                while True:
                    if sigint:
                        raise KeyboardInterrupt
                    item = self.channel.get(control.stop)
                    if item is STOPPING or item is END_OF_STREAM:
                        break
                    if item is NOTHING_YET:
                        continue
                    item.image = to_uint8(item.image)
                    for s in self.sinks:
                        s.write(item)
                    self.latency.add(time.perf_counter() - item.t_capture)
                    self.frames_out += 1
                    self.progress.update(self.frames_out)
        except KeyboardInterrupt:
            control.interrupted = True
            control.halt()
        except StopRun as exc:
            control.stop_cleanly(exc, "stopping")
        except BaseException as exc:  # noqa: BLE001 - sink failure
            control.fail(exc)


@contextmanager
def sigint_between_frames():
    """While the sink loop runs in the main thread, the first Ctrl-C (SIGINT) only sets
    a flag (the yielded list becomes truthy) and the loop stops at the next frame
    boundary, so that a KeyboardInterrupt never lands between a sink's write and its
    frame count. A second Ctrl-C raises at once. Outside the main thread, or when the
    process does not use Python's default SIGINT handler, nothing changes."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield []
        return
    requested: list[bool] = []

    def on_sigint(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(True)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
