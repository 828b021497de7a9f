"""The pipeline: a source, stages in their own threads, sinks; offline and live modes.

::

    capture thread ─q0─> stage 1 thread ─q1─> ... stage n thread ─qn─> sinks (calling thread)

Queues are bounded, so decode, restoration and encode overlap while memory stays flat.

* ``offline``: every frame comes out, in order; a full queue blocks its producer, so
  the run goes as fast as the slowest stage.
* ``live``: latency stays bounded. The capture thread never blocks: when the first
  queue is full, the oldest waiting input frame is dropped and counted. Cameras and
  streams that are lost are reopened with back-off.

Sinks run in the calling thread (GUI toolkits want windows there). Ctrl-C, an input that
ends early (corrupt file, lost camera in offline mode) or :class:`StopRun` finalise the
outputs with every frame produced so far; a failing stage discards them (they were
written under temporary names) and raises :class:`StageError` naming the stage.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Sequence

import numpy as np

from edgerestore.errors import EdgeRestoreError, InputError
from edgerestore.runtime.errors import DecodeError, StageError, StopRun
from edgerestore.runtime.report import LatencyLog, Progress, RunReport, StageTimer
from edgerestore.runtime.sinks import NullSink, Sink, open_sink
from edgerestore.runtime.sources import Frame, Source, _CaptureSource, open_source
from edgerestore.runtime.stages import Stage, as_stage

log = logging.getLogger("edgerestore.runtime")

MODES = ("offline", "live")
_END = object()    # end of stream, travels through every queue
_STOP = object()   # returned by get() when the run is being torn down
_EMPTY = object()  # returned by get() on timeout


class _Channel:
    """A bounded FIFO between two threads; in ``drop_oldest`` mode put() never blocks."""

    def __init__(self, maxsize: int, drop_oldest: bool = False):
        self.maxsize = max(1, int(maxsize))
        self.drop_oldest = drop_oldest
        self.items: deque = deque()
        self.cv = threading.Condition()
        self.dropped = 0

    def put(self, item, stop: threading.Event, *, force: bool = False) -> None:
        with self.cv:
            if not force:
                if self.drop_oldest:
                    while len(self.items) >= self.maxsize:
                        self.items.popleft()
                        self.dropped += 1
                else:
                    while len(self.items) >= self.maxsize and not stop.is_set():
                        self.cv.wait(0.1)
                    if stop.is_set():
                        return
            self.items.append(item)
            self.cv.notify_all()

    def get(self, stop: threading.Event, timeout: float = 0.1):
        with self.cv:
            if not self.items:
                if stop.is_set():
                    return _STOP
                self.cv.wait(timeout)
                if not self.items:
                    return _STOP if stop.is_set() else _EMPTY
            item = self.items.popleft()
            self.cv.notify_all()
            return item


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 frame -> float32 in [0, 1] (float frames pass through as float32)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1.0 / 255.0)
    return img.astype(np.float32, copy=False)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float frame in [0, 1] -> uint8, rounded and clipped (uint8 passes through)."""
    if img.dtype == np.uint8:
        return img
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _check_output(stage: Stage, frame: Frame, out: Any) -> np.ndarray:
    """The stage's result as float32 HxW / HxWx3, or StageError saying what is wrong."""
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


def _frame_call(st: Stage, fn, item: Frame | None) -> list[Frame]:
    """Call a frame-level stage method; errors become StageError naming the stage."""
    where = f"frame {item.index}" if item is not None else "the end of the stream"
    try:
        return list(fn(item) if item is not None else fn())
    except (StopRun, StageError):
        raise
    except EdgeRestoreError as exc:
        raise StageError(f"stage '{st.name}' failed at {where}: {exc}", stage=st.name,
                         frame_index=None if item is None else item.index) from exc
    except Exception as exc:
        raise StageError(f"stage '{st.name}' failed at {where}: {type(exc).__name__}: {exc}",
                         stage=st.name, frame_index=None if item is None else item.index) from exc


class Pipeline:
    """Stages run over frames from a source into sinks.

    ``stages``: a pipeline string (``"nlm(sigma=15)|upscale(scale=2)"`` or a named pipeline
    such as ``"default"``), or a sequence of stages, callables or stage strings; None
    (the default) takes the named pipeline ``default`` offline and ``live`` in live mode.
    ``mode``: ``offline`` (every frame, in order) or ``live`` (bounded latency, drops).
    ``queue_size``: frames waiting between two threads (default 4 offline, 1 live).

    >>> report = Pipeline("nlm(sigma=15)").run("in.mp4", "out.mkv")   # doctest: +SKIP
    """

    def __init__(self, stages: str | Sequence[Any] | None = None, *, mode: str = "offline",
                 queue_size: int | None = None):
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if stages is None:
            from edgerestore.runtime.spec import default_pipeline

            stages = default_pipeline(mode)
        if isinstance(stages, str):
            from edgerestore.runtime.spec import expand, parse_pipeline

            self.description = expand(stages)
            self.stages: list[Stage] = parse_pipeline(stages)
        else:
            self.stages = [as_stage(s) for s in stages]
            self.description = "|".join(s.name for s in self.stages)
        self.mode = mode
        self.queue_size = queue_size or (1 if mode == "live" else 4)
        self.report: RunReport | None = None
        self._opened = False

    def __repr__(self) -> str:
        return f"Pipeline({self.description!r}, mode={self.mode!r})"

    # -- stage lifecycle ---------------------------------------------------------------
    def open(self) -> "Pipeline":
        """Open every stage (load models, compile kernels). run() does it when needed."""
        if not self._opened:
            opened = []
            try:
                for st in self.stages:
                    st.open()
                    opened.append(st)
            except BaseException:
                for st in reversed(opened):
                    st.close()
                raise
            self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            self._opened = False
            for st in reversed(self.stages):
                try:
                    st.close()
                except Exception as exc:  # pragma: no cover - best effort
                    log.warning("closing stage %s: %s", st.name, exc)

    def __enter__(self) -> "Pipeline":
        # Stages open in run()/process(), after the outputs are checked: a bad output
        # path fails before a model is loaded or a kernel compiled.
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process(self, img: np.ndarray) -> np.ndarray:
        """Run the stages on one image, in this thread; uint8 in -> uint8 out, float -> float."""
        self.open()
        frame = Frame(img, 0, 0.0)
        x = to_float(img)
        for st in self.stages:
            x = _check_output(st, frame, st(x))
        return to_uint8(x) if img.dtype == np.uint8 else x

    # -- the run -------------------------------------------------------------------------
    def run(self, source: Any, sinks: Any = None, *, max_frames: int | None = None,
            progress: bool | Progress | None = None) -> RunReport:
        """Run the pipeline from ``source`` into ``sinks`` and return a :class:`RunReport`.

        ``source``: a :class:`Source` or what :func:`open_source` takes (path, camera
        index, URL, folder). ``sinks``: a sink, a path, a callable ``fn(frame)``, or a
        list of them; None discards frames. ``max_frames``: stop after that many input
        frames. ``progress``: a progress bar on stderr (None: when stderr is a terminal and
        the run is offline with a known length).

        Raises before any work if an output cannot be written or a stage cannot open;
        raises :class:`StageError` if a stage fails (outputs discarded) and re-raises
        KeyboardInterrupt after finalising the outputs. ``self.report`` always holds the
        report of the last run, also when it raised.
        """
        src = open_source(source) if not isinstance(source, Source) else source
        if sinks is None:
            sink_list: list[Sink] = [NullSink()]
        elif isinstance(sinks, (list, tuple)):
            sink_list = [open_sink(s, fps=None) for s in sinks]
        else:
            sink_list = [open_sink(sinks)]
        live = self.mode == "live"
        report = RunReport(source=src.name, mode=self.mode, pipeline=[s.name for s in self.stages],
                           outputs=[str(getattr(s, "path", None) or s.name) for s in sink_list])
        self.report = report

        # 1. Everything that can fail before any work: outputs, the source, stages.
        for s in sink_list:
            s.check()
        if isinstance(src, _CaptureSource) and src.reconnect is None:
            src.reconnect = live
        src.open()
        try:
            self.open()
        except BaseException:
            src.close()
            raise
        for s in sink_list:
            if getattr(s, "fps", "absent") is None:
                s.fps = src.fps
            if getattr(s, "keep_time", "absent") is None:
                s.keep_time = live  # live recordings play at capture speed
        total = src.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total is not None else max_frames
        report.frames_expected = total
        if isinstance(progress, Progress):
            bar = progress
        else:
            enabled = progress if progress is not None else (None if not live and total else False)
            bar = Progress(total, enabled=enabled)

        # 2. Threads and queues.
        stop = threading.Event()
        errors: list[BaseException] = []
        channels = [_Channel(self.queue_size, drop_oldest=live and i == 0) for i in range(len(self.stages) + 1)]
        timers = [StageTimer(st.name) for st in self.stages]
        latency = LatencyLog()
        counts = {"in": 0}
        source_error: list[DecodeError] = []
        stopped = threading.Event()  # graceful stop requested by a stage (StopRun)

        def fail(exc: BaseException) -> None:
            errors.append(exc)
            stop.set()
            src.interrupt()

        def capture() -> None:
            try:
                while not stop.is_set():
                    if max_frames is not None and counts["in"] >= max_frames:
                        break
                    frame = src.read()
                    if frame is None:
                        break
                    frame.t_capture = time.perf_counter()
                    counts["in"] += 1
                    channels[0].put(frame, stop)
            except DecodeError as exc:
                source_error.append(exc)
                log.warning("%s", exc)
            except BaseException as exc:  # noqa: BLE001 - reported in the main thread
                fail(exc)
            finally:
                channels[0].put(_END, stop, force=True)

        def work(k: int) -> None:
            st, cin, cout, timer = self.stages[k], channels[k], channels[k + 1], timers[k]
            # frame-level stages (e.g. repair) see whole Frames and may hold some back or
            # add some: push_frame(frame) -> [frames], flush_frames() -> [frames] at the end
            frame_level = callable(getattr(st, "push_frame", None))
            try:
                while True:
                    item = cin.get(stop)
                    if item is _STOP:
                        return
                    if item is _EMPTY:
                        continue
                    if item is _END:
                        if frame_level:
                            for o in _frame_call(st, st.flush_frames, None):
                                o.image = _check_output(st, o, o.image)
                                cout.put(o, stop)
                        cout.put(_END, stop, force=True)
                        return
                    x = to_float(item.image)
                    t0 = time.perf_counter()
                    if frame_level:
                        item.image = x
                        outs = _frame_call(st, st.push_frame, item)
                        timer.add(time.perf_counter() - t0)
                        for o in outs:
                            o.image = _check_output(st, o, o.image)
                            cout.put(o, stop)
                        continue
                    try:
                        out = st(x)
                    except (StopRun, StageError):
                        raise
                    except EdgeRestoreError as exc:
                        raise StageError(f"stage '{st.name}' failed at frame {item.index}: {exc}",
                                         stage=st.name, frame_index=item.index) from exc
                    except Exception as exc:
                        raise StageError(
                            f"stage '{st.name}' failed at frame {item.index}: {type(exc).__name__}: {exc}",
                            stage=st.name, frame_index=item.index) from exc
                    timer.add(time.perf_counter() - t0)
                    item.image = _check_output(st, item, out)
                    cout.put(item, stop)
            except StopRun as exc:
                log.info("stage %s asked to stop: %s", st.name, exc)
                stopped.set()
                stop.set()
                src.interrupt()
            except BaseException as exc:  # noqa: BLE001
                fail(exc)

        threads = [threading.Thread(target=capture, name="er-capture", daemon=True)]
        threads += [threading.Thread(target=work, args=(k,), name=f"er-stage{k}", daemon=True)
                    for k in range(len(self.stages))]
        t_start = time.perf_counter()
        for t in threads:
            t.start()

        # 3. Sinks in this thread.
        interrupted = False
        last = channels[-1]
        try:
            with _sigint_between_frames() as sigint:
                while True:
                    if sigint:
                        raise KeyboardInterrupt
                    item = last.get(stop)
                    if item is _STOP or item is _END:
                        break
                    if item is _EMPTY:
                        continue
                    item.image = to_uint8(item.image)
                    for s in sink_list:
                        s.write(item)
                    latency.add(time.perf_counter() - item.t_capture)
                    report.frames_out += 1
                    bar.update(report.frames_out)
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            src.interrupt()
        except StopRun as exc:
            log.info("stopping: %s", exc)
            stopped.set()
            stop.set()
            src.interrupt()
        except BaseException as exc:  # noqa: BLE001 - sink failure
            fail(exc)
        finally:
            stop.set()
            src.interrupt()
            bar.close()
            elapsed = time.perf_counter() - t_start
            for t in threads[1:]:
                t.join()
            threads[0].join(timeout=5.0)
            capture_done = not threads[0].is_alive()
            if errors:
                for s in sink_list:
                    s.abort()
            else:
                for s in sink_list:
                    s.close()
            if capture_done:
                src.close()

            report.frames_in = counts["in"]
            report.frames_dropped = channels[0].dropped
            report.frames_skipped = len(src.skipped)
            report.skipped = list(src.skipped)
            report.reconnects = src.reconnects
            report.frames_resized = sum(getattr(s, "resized", 0) for s in sink_list)
            report.frames_repeated = sum(getattr(s, "repeated", 0) for s in sink_list)
            report.elapsed_s = round(elapsed, 3)
            report.fps = round(report.frames_out / elapsed, 3) if elapsed > 0 and report.frames_out else None
            report.latency_ms = latency.summary_ms()
            report.stages = [
                {"name": st.name, "mean_ms": None if tm.mean_ms() is None else round(tm.mean_ms(), 2),
                 "first_ms": None if tm.first is None else round(tm.first * 1000.0, 2),
                 "frames": tm.count, **st.describe()}
                for st, tm in zip(self.stages, timers)
            ]
            if source_error:
                report.source_error = str(source_error[0])
                report.source_error_frame = source_error[0].frame_index
            if errors:
                report.status = "error"
                report.error = str(errors[0])
            elif interrupted:
                report.status = "interrupted"
            elif source_error:
                report.status = "input_error"
            elif stopped.is_set():
                report.status = "stopped"
        if errors:
            raise errors[0]
        if interrupted:
            raise KeyboardInterrupt
        return report


@contextmanager
def _sigint_between_frames():
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


def run(source: Any, sinks: Any = None, pipeline: str | Sequence[Any] | None = None, *,
        mode: str = "offline", max_frames: int | None = None) -> RunReport:
    """One call: ``run("in.mp4", "out.mkv", "denoise")``; see :class:`Pipeline` (None: the
    mode's default pipeline)."""
    with Pipeline(pipeline, mode=mode) as p:
        return p.run(source, sinks, max_frames=max_frames)

