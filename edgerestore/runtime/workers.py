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
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from edgerestore.errors import EdgeRestoreError, InputError
from edgerestore.imageio import from_float, to_float, to_uint8
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
    ``stopped``: a stage or sink raised :class:`StopRun`; ``interrupted``: the
    KeyboardInterrupt (Ctrl-C, or SIGTERM where the program maps it to one) that ended
    the run, re-raised by the pipeline; ``source_error``: the input ended early
    (:class:`DecodeError`).
    """

    def __init__(self, source: Source):
        self.source = source
        self.stop = threading.Event()
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []
        self.interrupted: BaseException | None = None
        self.source_error: DecodeError | None = None

    def skip_frame(self, frame: Frame, exc: StageError) -> bool:
        """For a source of separate pictures (a folder), a frame that a stage refused as
        input (an :class:`InputError`, e.g. a 1x1 image) is skipped: warned about, naming
        the file, and listed in the source's ``skipped``. Returns False (the failure ends
        the run) for other sources and other errors."""
        if not (self.source.independent_frames and isinstance(exc.__cause__, InputError)):
            return False
        origin = self.source.frame_origin(frame.index)
        reason = f"stage '{exc.stage}' cannot take it: {exc.__cause__}"
        log.warning("skipping %s: %s", origin, reason)
        self.source.skipped.append(f"{origin}: {reason}")
        return True

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


def call_stage(stage: Stage, fn: Callable[..., Any], frame: Frame | None, *args, origin: str | None = None) -> Any:
    """``fn(*args)`` for ``stage`` at ``frame`` (None: at the end of the stream); any
    failure but :class:`StopRun` becomes a :class:`StageError` naming the stage and frame
    (and ``origin``, e.g. the image file the frame came from)."""
    where = f"frame {frame.index}" if frame is not None else "the end of the stream"
    if origin and frame is not None and origin != where:
        where += f" ({origin})"
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
            while not stop.is_set():  # stopping: frames still queued are not started
                item = self.inbox.get(stop)
                if item is STOPPING:
                    return
                if item is NOTHING_YET:
                    continue
                if item is END_OF_STREAM:
                    self.finish()
                    self.outbox.put(END_OF_STREAM, stop, force=True)
                    return
                try:
                    self.process(item)
                except StageError as exc:
                    if not self.control.skip_frame(item, exc):
                        raise
        except StopRun as exc:
            self.control.stop_cleanly(exc, f"stage {self.stage.name} asked to stop")
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            self.control.fail(exc)

    def process(self, frame: Frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def origin(self, frame: Frame) -> str:
        """Where ``frame`` came from (the file, for a folder of images), for messages."""
        return self.control.source.frame_origin(frame.index)

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
        out = call_stage(self.stage, self.stage, frame, x, origin=self.origin(frame))
        self.timer.add(time.perf_counter() - t0)
        frame.image = out
        self.emit(frame)


class FrameStageWorker(StageWorker):
    """For :class:`FrameStage`: ``push_frame(frame)`` (image as float32) passes on the
    frames it returns; ``flush_frames()`` at the end of the stream."""

    def process(self, frame: Frame) -> None:
        frame.image = to_float(frame.image)
        t0 = time.perf_counter()
        outs = list(call_stage(self.stage, self.stage.push_frame, frame, frame, origin=self.origin(frame)))
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
"""Kind of stage (base class) -> the worker that runs it. A :class:`BatchStage` has no
entry of its own: in a one-stream run it is an array stage (found through its base
class); :mod:`edgerestore.runtime.multistream` gathers its batches."""

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
    uint8 (or to a sink's ``sample_dtype``: uint16 for a video sink writing a > 8-bit
    source at 10 bits), hands them to every sink, and counts frames out and latency. Ctrl-C (between
    frames, see :func:`signals_between_frames`), :class:`StopRun` and sink failures end it
    and are recorded in ``control``."""

    def __init__(self, channel: Channel, sinks: Sequence[Sink], control: RunControl,
                 progress: Progress, latency: LatencyLog):
        self.channel, self.sinks, self.control = channel, list(sinks), control
        self.progress, self.latency = progress, latency
        self.frames_out = 0

    def run(self, pending: list | None = None) -> None:
        """Until the end of the stream or a stop. ``pending``: the list of an enclosing
        :func:`signals_between_frames` (None: the loop defers signals itself)."""
        if pending is None:
            with signals_between_frames() as own:
                return self.run(own)
        control = self.control
        try:
            while True:
                if pending:
                    raise_pending(pending)
                item = self.channel.get(control.stop)
                if item is STOPPING or item is END_OF_STREAM:
                    break
                if item is NOTHING_YET:
                    continue
                image = item.image
                item.image = to_uint8(image)
                for s in self.sinks:  # a sink may take deeper samples (10-bit video): sample_dtype
                    deep = np.dtype(s.sample_dtype)
                    s.write(item if deep == np.uint8 else replace(item, image=from_float(image, deep)))
                self.latency.add(time.perf_counter() - item.t_capture)
                self.frames_out += 1
                self.progress.update(self.frames_out)
        except KeyboardInterrupt as exc:
            control.interrupted = exc
            control.halt()
        except StopRun as exc:
            control.stop_cleanly(exc, "stopping")
        except BaseException as exc:  # noqa: BLE001 - sink failure
            control.fail(exc)


INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM")
"""Signals whose Python handler the sink loop defers to the next frame boundary."""


@contextmanager
def signals_between_frames():
    """While the sink loop runs in the main thread, the first SIGINT (Ctrl-C) or SIGTERM
    that has a Python handler (SIGINT's default raises KeyboardInterrupt; the CLI maps
    SIGTERM to the same) is only noted: the yielded list becomes truthy and the loop calls
    that handler at the next frame boundary (:func:`raise_pending`), so an interrupt never
    lands between a sink's write and its frame count. A second signal calls its handler
    at once. Outside the main thread nothing changes; SIG_DFL / SIG_IGN are left alone
    (a SIGTERM nobody handles ends the process, as the system intends)."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    pending: list[tuple[Callable, int]] = []
    previous: dict[int, Any] = {}

    def make_deferring(original):
        def deferring(signum, frame):
            if pending:
                original(signum, frame)
            else:
                pending.append((original, signum))
        return deferring

    for name in INTERRUPT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = handler
            signal.signal(signum, make_deferring(handler))
    try:
        yield pending
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def raise_pending(pending: list[tuple[Callable, int]]) -> None:
    """Call the handler of the signal :func:`signals_between_frames` deferred (it raises
    KeyboardInterrupt, or whatever the program's handler does)."""
    handler, signum = pending[0]
    handler(signum, None)
    pending.clear()  # a handler that did not raise: go on
