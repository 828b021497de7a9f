"""Many streams in one process: one capture per stream, the stages shared.

::

    capture 0 ─┐                               ┌─> sinks of stream 0 (its own thread)
    capture 1 ─┼─> stage 1 ─> ... ─> stage n ──┼─> sinks of stream 1
    capture k ─┘   (one thread each, shared)   └─> sinks of stream k

Each stream has its own channels between the stages (so its frames stay in order, its
live drops and latency are its own) and its own :class:`RunControl`: a stream that ends,
fails (its source, a stage on one of its frames, its output) or reconnects stops only
itself. Each shared stage runs in one thread that takes the frames waiting on all the
streams' channels **round-robin** (the stream after the last served goes first, so a
fast stream cannot starve a slow one). A :class:`BatchStage` (a model) gathers at most
one frame per stream into one call (``process_batch``: one inference with batch
dimension N when the model allows it), waiting at most ``batch_wait_s`` for streams
still open that have no frame yet; frames of different sizes go into separate calls.
Other stages (classical kernels) run frame by frame. Stateful kinds (frame and window
stages) keep state per stream and are refused here.

:meth:`MultiStreamRunner.run` returns a :class:`MultiStreamReport`: one
:class:`RunReport` per stream and the totals.

The shared stage worker and the runner that wires it stay together, which is why one
module is a little over 400 lines: the worker's round-robin, batch and per-stream
failure rules only make sense with the runner's channels and controls beside them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from edgerestore.errors import InputError
from edgerestore.imageio import to_float
from edgerestore.runtime.channel import END_OF_STREAM, Channel
from edgerestore.runtime.errors import StageError, StopRun
from edgerestore.runtime.report import LatencyLog, MultiStreamReport, Progress, RunReport, StageTimer, finish_report, stage_entry
from edgerestore.runtime.sinks import NullSink, Sink, open_sink
from edgerestore.runtime.sinks.base import check_apart_from_inputs, clean_stale_partials
from edgerestore.runtime.sources import Frame, Source, open_source
from edgerestore.runtime.stages import BatchStage, FrameStage, Stage, WindowStage
from edgerestore.runtime.workers import Capture, RunControl, SinkLoop, call_stage, check_stage_result

log = logging.getLogger("edgerestore.runtime")

DEFAULT_BATCH_WAIT_MS = {"offline": 50.0, "live": 5.0}
"""How long a batch stage waits for the streams that have no frame yet, by mode."""


class StreamRun:
    """One stream of a multi-stream run: its source, sinks, channels, control, counters."""

    def __init__(self, key: int, source: Source, sinks: list[Sink], n_stages: int, queue_size: int, live: bool):
        self.key, self.source, self.sinks = key, source, sinks
        self.control = RunControl(source)
        self.channels = [Channel(queue_size, drop_oldest=live and i == 0) for i in range(n_stages + 1)]
        self.latency = LatencyLog()
        self.capture: Capture | None = None
        self.sink_loop: SinkLoop | None = None
        self.report = RunReport(source=source.name, mode="live" if live else "offline", pipeline=[],
                                outputs=[str(getattr(s, "path", None) or s.name) for s in sinks])


class SharedStageWorker:
    """Runs one stage for every stream: frames from ``inboxes[k]``, results to
    ``outboxes[k]`` (k: the stream). Round-robin over the streams; a :class:`BatchStage`
    gets up to one frame per stream in one call (at most ``batch_wait_s`` of waiting
    for stragglers). A failure on one stream's frame stops that stream only."""

    def __init__(self, stage: Stage, level: int, streams: list[StreamRun], timer: StageTimer,
                 batch_wait_s: float, stop: threading.Event):
        self.stage, self.level, self.streams, self.timer = stage, level, streams, timer
        self.batch_wait_s, self.stop = batch_wait_s, stop
        self.inboxes = [s.channels[level] for s in streams]
        self.outboxes = [s.channels[level + 1] for s in streams]
        self.cv = threading.Condition()
        for ch in self.inboxes:  # one condition for all inboxes: one wait covers every stream
            ch.cv = self.cv
        self.closed = [False] * len(streams)
        self.next = 0
        self.batching = isinstance(stage, BatchStage)
        self.batch_size = max(1, int(getattr(stage, "batch_size", 1))) if self.batching else 1
        self.batches = 0
        self.batched_frames = 0

    # -- gathering ------------------------------------------------------------------------
    def gather(self) -> list[tuple[int, Frame]]:
        """Frames to run now, at most one per stream, round-robin from ``self.next``."""
        picked: list[tuple[int, Frame]] = []
        ended: list[int] = []
        n = len(self.streams)
        deadline = None
        with self.cv:
            while not self.stop.is_set():
                for j in range(n):
                    k = (self.next + j) % n
                    if self.closed[k] or any(k == p for p, _ in picked):
                        continue
                    ch = self.inboxes[k]
                    if self.streams[k].control.stop.is_set():
                        ch.items.clear()
                        self.closed[k] = True
                        ended.append(k)
                        continue
                    if not ch.items:
                        continue
                    item = ch.items.popleft()
                    self.cv.notify_all()
                    if item is END_OF_STREAM:
                        self.closed[k] = True
                        ended.append(k)
                        continue
                    picked.append((k, item))
                    if len(picked) >= self.batch_size:
                        break
                waiting = [k for k in range(n) if not self.closed[k] and all(k != p for p, _ in picked)]
                if picked and (not waiting or len(picked) >= self.batch_size):
                    break
                if not picked and all(self.closed):
                    break
                if ended and not picked:
                    break  # pass the end markers on at once
                now = time.perf_counter()
                if picked:
                    deadline = deadline or now + self.batch_wait_s
                    if now >= deadline:
                        break
                    self.cv.wait(min(0.1, deadline - now))
                else:
                    self.cv.wait(0.1)
        for k in ended:
            self.outboxes[k].put(END_OF_STREAM, self.streams[k].control.stop, force=True)
        if picked:
            self.next = (picked[-1][0] + 1) % n
        return picked

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.stop.is_set() and not all(self.closed):
                picked = self.gather()
                if not picked:
                    continue
                for frame in (f for _, f in picked):
                    frame.image = to_float(frame.image)
                if self.batching and len(picked) > 1:
                    by_size: dict[tuple, list[tuple[int, Frame]]] = {}
                    for k, f in picked:
                        by_size.setdefault(f.image.shape, []).append((k, f))
                    for group in by_size.values():
                        self.run_batch(group)
                else:
                    for k, f in picked:
                        self.run_one(k, f)
        except BaseException as exc:  # noqa: BLE001 - a fault of the runner itself: every stream stops
            for s in self.streams:
                s.control.fail(exc)

    def run_batch(self, group: list[tuple[int, Frame]]) -> None:
        if len(group) == 1:
            self.run_one(*group[0])
            return
        t0 = time.perf_counter()
        try:
            outs = self.stage.process_batch([f.image for _, f in group])
        except StopRun:
            raise
        except Exception as exc:  # noqa: BLE001 - find the frame (and stream) at fault, one by one
            log.debug("batch of %d failed (%s); running its frames one by one", len(group), exc)
            for k, f in group:
                self.run_one(k, f)
            return
        dt = (time.perf_counter() - t0) / len(group)
        self.batches += 1
        self.batched_frames += len(group)
        for (k, f), out in zip(group, outs):
            self.timer.add(dt)
            self.emit(k, f, out)

    def run_one(self, k: int, frame: Frame) -> None:
        control = self.streams[k].control
        t0 = time.perf_counter()
        try:
            out = call_stage(self.stage, self.stage, frame, frame.image, origin=control.source.frame_origin(frame.index))
        except StopRun as exc:
            control.stop_cleanly(exc, f"stage {self.stage.name} asked stream {k} to stop")
            return
        except StageError as exc:
            if not control.skip_frame(frame, exc):
                control.fail(exc)
            return
        self.timer.add(time.perf_counter() - t0)
        if self.batching:
            self.batches += 1
            self.batched_frames += 1
        self.emit(k, frame, out)

    def emit(self, k: int, frame: Frame, out: Any) -> None:
        control = self.streams[k].control
        try:
            frame.image = check_stage_result(self.stage, frame, out)
        except StageError as exc:
            control.fail(exc)
            return
        self.outboxes[k].put(frame, control.stop)


class MultiStreamRunner:
    """Run one pipeline over several sources at once, stages shared (see the module doc).

    ``stages``: a pipeline string or a list of stages (as :class:`Pipeline`); frame and
    window stages are refused (their state is per stream). ``mode``: ``offline`` or
    ``live``. ``queue_size``: frames waiting per stream between two threads (default 4
    offline, 1 live). ``batch_wait_s``: the longest a batch stage waits for stragglers
    (None: :data:`DEFAULT_BATCH_WAIT_MS` of the mode). ``batch_size``: the most frames
    in one batch (None: the stage's own, 8 for a model stage).
    """

    def __init__(self, stages: str | Sequence[Any] | None = None, *, mode: str = "offline",
                 queue_size: int | None = None, stage_options: Mapping[str, Any] | None = None,
                 batch_wait_s: float | None = None, batch_size: int | None = None):
        from edgerestore.runtime.pipeline import Pipeline

        self.pipeline = Pipeline(stages, mode=mode, queue_size=queue_size, stage_options=stage_options)
        for st in self.pipeline.stages:
            if isinstance(st, (FrameStage, WindowStage)):
                raise InputError(f"stage {st.name} keeps state from frame to frame; a run of several "
                                 "streams shares its stages and cannot take it yet (run one stream per "
                                 "process for it)")
            if batch_size is not None and isinstance(st, BatchStage):
                st.batch_size = int(batch_size)
        self.mode = mode
        if batch_wait_s is not None and not batch_wait_s >= 0:
            raise InputError(f"batch wait must be >= 0 seconds, got {batch_wait_s!r}")
        self.batch_wait_s = DEFAULT_BATCH_WAIT_MS[mode] / 1000.0 if batch_wait_s is None else float(batch_wait_s)
        self.report: MultiStreamReport | None = None

    @property
    def stages(self) -> list[Stage]:
        return self.pipeline.stages

    def __enter__(self) -> "MultiStreamRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.close()

    def run(self, sources: Sequence[Any], outputs: Sequence[Any], *,
            max_frames: int | Sequence[int | None] | None = None) -> MultiStreamReport:
        """Run every source into its outputs (``outputs[k]``: a sink, a path or a list of
        them, None to discard). Returns the :class:`MultiStreamReport`. Raises before any
        work when an output cannot be written, a source cannot open or a stage cannot
        open; later failures stop only their stream and are in its report.
        KeyboardInterrupt stops every stream (outputs finalised) and is re-raised.
        ``max_frames``: input frames per stream at most (one number, or one per stream)."""
        if len(sources) != len(outputs):
            raise InputError(f"{len(sources)} sources but {len(outputs)} outputs")
        if not sources:
            raise InputError("no source given")
        live = self.mode == "live"
        stages = self.pipeline.stages
        queue_size = self.pipeline.queue_size
        streams: list[StreamRun] = []
        for k, (src, out) in enumerate(zip(sources, outputs)):
            src = src if isinstance(src, Source) else open_source(src)
            outs = out if isinstance(out, (list, tuple)) else [out]
            sink_list = [NullSink() if o is None else open_sink(o, fps=None) for o in outs]
            streams.append(StreamRun(k, src, sink_list, len(stages), queue_size, live))
        report = MultiStreamReport(mode=self.mode, pipeline=[s.name for s in stages],
                                   streams=[s.report for s in streams])
        self.report = report

        # 1. Before any work: outputs apart from every input, sources and stages opened.
        opened: list[Source] = []
        try:
            inputs = [p for s in streams for p in s.source.input_paths()]
            for s in streams:
                for sink in s.sinks:
                    check_apart_from_inputs(sink, inputs)
                    sink.check()
                    if sink.path is not None:
                        clean_stale_partials(Path(sink.path) if getattr(sink, "is_folder", False)
                                             else Path(sink.path).parent)
            for s in streams:
                s.source.prepare_for_mode(live)
                s.source.open()
                opened.append(s.source)
            self.pipeline.open()
        except BaseException as exc:
            for src in opened:
                src.close()
            report.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            report.error = str(exc) or type(exc).__name__
            raise
        for s in streams:
            for sink in s.sinks:
                if getattr(sink, "fps", "absent") is None:
                    sink.fps = s.source.fps
                if getattr(sink, "keep_time", "absent") is None:
                    sink.keep_time = live
                if getattr(sink, "source", "absent") is None:
                    sink.source = s.source

        # 2. Threads: a capture and a sink loop per stream, a worker per shared stage.
        stop_all = threading.Event()
        timers = [StageTimer(st.name) for st in stages]
        workers = [SharedStageWorker(st, i, streams, timers[i], self.batch_wait_s, stop_all)
                   for i, st in enumerate(stages)]
        threads: list[threading.Thread] = []
        sink_threads: list[threading.Thread] = []
        limits = list(max_frames) if isinstance(max_frames, (list, tuple)) else [max_frames] * len(streams)
        for s, limit in zip(streams, limits):
            s.capture = Capture(s.source, s.channels[0], s.control, limit)
            s.sink_loop = SinkLoop(s.channels[-1], s.sinks, s.control, Progress(None, enabled=False), s.latency)
            threads.append(threading.Thread(target=s.capture.run, name=f"er-capture{s.key}", daemon=True))
            sink_threads.append(threading.Thread(target=s.sink_loop.run, args=([],), name=f"er-sinks{s.key}",
                                                 daemon=True))
        worker_threads = [threading.Thread(target=w.run, name=f"er-shared{i}", daemon=True)
                          for i, w in enumerate(workers)]
        t_start = time.perf_counter()
        for t in [*threads, *worker_threads, *sink_threads]:
            t.start()

        # 3. Wait for every stream's sinks; Ctrl-C stops them all.
        interrupted: BaseException | None = None
        ended_at: dict[int, float] = {}
        try:
            while len(ended_at) < len(streams):
                for s, t in zip(streams, sink_threads):
                    t.join(timeout=0.05)
                    if not t.is_alive() and s.key not in ended_at:
                        ended_at[s.key] = time.perf_counter()
                        s.control.halt()  # its capture too, should the sinks have ended first
        except KeyboardInterrupt as exc:
            interrupted = exc
            for s in streams:
                s.control.interrupted = exc
                s.control.halt()
            for t in sink_threads:
                t.join(timeout=5.0)
        elapsed = time.perf_counter() - t_start

        # 4. Tear down: stop the shared workers, finalise each stream's outputs, the reports.
        from edgerestore.runtime.pipeline import JOIN_TIMEOUT_S, written_outputs

        stop_all.set()
        deadline = time.perf_counter() + JOIN_TIMEOUT_S
        for st, t in zip(stages, worker_threads):
            t.join(timeout=max(0.0, deadline - time.perf_counter()))
            if t.is_alive():
                self.pipeline.mark_busy(st, t)
                log.warning("stage %s is still inside a call; not waiting for it (its frames are dropped)", st.name)
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.perf_counter()))
        for s, capture_thread in zip(streams, threads):
            control = s.control
            errors = []
            for sink in s.sinks:
                try:
                    sink.abort() if control.errors else sink.close()
                except Exception as exc:  # noqa: BLE001 - disk full while finalising
                    errors.append(exc)
            if not capture_thread.is_alive():  # a capture stuck in a read keeps its source
                s.source.close()
            if errors and not control.errors:
                control.errors.append(errors[0])
            s_elapsed = ended_at.get(s.key, t_start + elapsed) - t_start
            finish_report(
                s.report, frames_in=s.capture.frames_in, frames_out=s.sink_loop.frames_out,
                frames_dropped=s.channels[0].dropped, skipped=s.source.skipped, reconnects=s.source.reconnects,
                frames_resized=sum(getattr(x, "resized", 0) for x in s.sinks),
                frames_repeated=sum(getattr(x, "repeated", 0) for x in s.sinks),
                elapsed_s=s_elapsed, latency=s.latency, stages=[],
                error=control.errors[0] if control.errors else None,
                interrupted=control.interrupted is not None, stopped=control.stopped.is_set(),
                source_error=control.source_error,
                outputs=[] if control.errors else written_outputs(s.sinks))
            s.report.pipeline = report.pipeline
            s.report.add_video_io(s.source, s.sinks)
        stage_entries = []
        for st, tm, w in zip(stages, timers, workers):
            entry = stage_entry(st.name, tm, st.describe())
            if w.batching:
                entry["batches"] = w.batches
                entry["mean_batch"] = round(w.batched_frames / w.batches, 2) if w.batches else None
            stage_entries.append(entry)
        all_latency = LatencyLog()
        for s in streams:
            for v in s.latency.values:
                all_latency.add(v)
        report.finish(elapsed_s=elapsed, stages=stage_entries, latency=all_latency,
                      interrupted=interrupted is not None)
        if interrupted is not None:
            raise interrupted
        return report


def stream_output_names(sources: Sequence[Any], suffix: str = ".mkv") -> list[str]:
    """A file name per source, after it: ``cam0.mp4`` -> ``cam0_restored.mkv``; a camera or
    URL (or synthetic frames) -> ``stream<k>_restored.mkv``; names made unique with ``_<k>`` where two sources
    share a stem."""
    stems = []
    for k, src in enumerate(sources):
        text = str(src)
        if "://" in text or text.isdigit() or text.startswith(("/dev/", "synthetic")):
            stem = f"stream{k}"
        else:
            p = Path(text)
            stem = (p.resolve().name if p.is_dir() else p.stem) or f"stream{k}"
        stems.append(stem)
    names = []
    for k, stem in enumerate(stems):
        if stems.count(stem) > 1:
            stem = f"{stem}_{k}"
        names.append(f"{stem}_restored{suffix}")
    return names
