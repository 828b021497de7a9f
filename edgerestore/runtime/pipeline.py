"""The pipeline: a source, stages in their own threads, sinks; offline and live modes.

::

    capture thread ─q0─> stage 1 thread ─q1─> ... stage n thread ─qn─> sinks (calling thread)

Channels are bounded, so decode, restoration and encode overlap while memory stays flat.

* ``offline``: every frame comes out, in order; a full channel blocks its producer, so
  the run goes as fast as the slowest stage.
* ``live``: latency stays bounded. The capture thread never blocks: when the first
  channel is full, the oldest waiting input frame is dropped and counted. Cameras and
  streams that are lost are reopened with back-off.

Sinks run in the calling thread (GUI toolkits want windows there). Ctrl-C (and SIGTERM
where the program maps it to a KeyboardInterrupt, as the CLI does), an input that ends
early (corrupt file, lost camera in offline mode) or :class:`StopRun` finalise the
outputs with every frame produced so far; a failing stage discards them (they were
written under temporary names) and raises :class:`StageError` naming the stage. The
teardown waits at most ``JOIN_TIMEOUT_S`` for the stage threads, so an interrupt ends a
run within about a second even inside a slow stage call. Before any work, outputs are
checked apart from the inputs and temporary files of ended runs in their folders removed.

:meth:`Pipeline.run` wires the pieces of ``workers.py`` (capture, one worker per stage
chosen by the stage's kind, sink loop) with ``channel.py``'s channels, then tears down
and fills the report (``report.finish_report``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgerestore.errors import InputError
from edgerestore.imageio import to_float, to_uint8
from edgerestore.runtime.channel import Channel
from edgerestore.runtime.report import LatencyLog, Progress, RunReport, StageTimer, finish_report, stage_entry
from edgerestore.runtime.sinks import NullSink, Sink, open_sink
from edgerestore.runtime.sinks.base import check_apart_from_inputs, clean_stale_partials
from edgerestore.runtime.sources import Frame, Source, open_source
from edgerestore.runtime.stages import Stage, as_stage
from edgerestore.runtime.workers import (Capture, RunControl, SinkLoop, check_stage_result, raise_pending,
                                         signals_between_frames, worker_for)

log = logging.getLogger("edgerestore.runtime")

MODES = ("offline", "live")

JOIN_TIMEOUT_S = 1.0
"""At the end of a run, how long to wait for the stage threads together. A stage still
inside a slow call (a big BM3D frame, a slow model) after that is left to finish in its
daemon thread: its frame is dropped, the outputs are finalised with the frames so far
and the stage is not closed under it (Ctrl-C ends a run within about a second)."""


class Pipeline:
    """Stages run over frames from a source into sinks.

    ``stages``: a pipeline string (``"nlm(sigma=15)|upscale(scale=2)"`` or a named pipeline
    such as ``"default"``), or a sequence of stages, callables or stage strings; None
    (the default) takes the named pipeline ``default`` offline and ``live`` in live mode.
    ``mode``: ``offline`` (every frame, in order) or ``live`` (bounded latency, drops).
    ``queue_size``: frames waiting between two threads (default 4 offline, 1 live).
    ``stage_options``: keyword arguments for the stages built from a pipeline string that
    take them and whose string leaves them out or at their default, e.g.
    ``{"backend": "ort-cpu"}`` (see :func:`edgerestore.runtime.spec.parse_pipeline`).

    >>> report = Pipeline("nlm(sigma=15)").run("in.mp4", "out.mkv")   # doctest: +SKIP
    """

    def __init__(self, stages: str | Sequence[Any] | None = None, *, mode: str = "offline",
                 queue_size: int | None = None, stage_options: Mapping[str, Any] | None = None):
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if stages is None:
            from edgerestore.runtime.spec import default_pipeline

            stages = default_pipeline(mode)
        if isinstance(stages, str):
            from edgerestore.runtime.spec import expand, parse_pipeline

            self.description = expand(stages)
            self.stages: list[Stage] = parse_pipeline(stages, stage_options)
        else:
            self.stages = [as_stage(s) for s in stages]
            self.description = "|".join(s.name for s in self.stages)
        self.mode = mode
        self.queue_size = queue_size or (1 if mode == "live" else 4)
        self.report: RunReport | None = None
        self._opened = False
        self._busy: dict[int, threading.Thread] = {}  # id(stage) -> thread still running it

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

    def busy_stages(self) -> list[str]:
        """Stages whose thread of an ended run is still inside a call (see JOIN_TIMEOUT_S)."""
        self._busy = {k: t for k, t in self._busy.items() if t.is_alive()}
        return [st.name for st in self.stages if id(st) in self._busy]

    def mark_busy(self, stage: Stage, thread: threading.Thread) -> None:
        """``stage``'s ``thread`` is still inside a call after a run ended: :meth:`close`
        leaves the stage open under it and a new run refuses to start (see JOIN_TIMEOUT_S)."""
        self._busy[id(stage)] = thread

    def close(self) -> None:
        if self._opened:
            self._opened = False
            busy = self.busy_stages()
            for st in reversed(self.stages):
                if st.name in busy:
                    log.debug("not closing stage %s: its thread is still inside a call", st.name)
                    continue
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
            x = check_stage_result(st, frame, st(x))
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
        try:
            self._prepare(src, sink_list, live)
        except KeyboardInterrupt:
            report.status, report.outputs = "interrupted", []
            raise
        except BaseException as exc:
            report.status, report.error, report.outputs = "error", str(exc) or type(exc).__name__, []
            raise
        for s in sink_list:
            if getattr(s, "fps", "absent") is None:
                s.fps = src.fps
            if getattr(s, "keep_time", "absent") is None:
                s.keep_time = live  # live recordings play at capture speed
            if getattr(s, "source", "absent") is None:
                s.source = src  # a video sink takes the time base, audio and metadata from it
        total = src.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total is not None else max_frames
        report.frames_expected = total
        if isinstance(progress, Progress):
            bar = progress
        else:
            enabled = progress if progress is not None else (None if not live and total else False)
            bar = Progress(total, enabled=enabled)

        # 2. Channels, and the jobs that run between them.
        control = RunControl(src)
        channels = [Channel(self.queue_size, drop_oldest=live and i == 0) for i in range(len(self.stages) + 1)]
        timers = [StageTimer(st.name) for st in self.stages]
        latency = LatencyLog()
        capture = Capture(src, channels[0], control, max_frames)
        workers = [worker_for(st)(st, channels[k], channels[k + 1], control, timers[k])
                   for k, st in enumerate(self.stages)]
        sink_loop = SinkLoop(channels[-1], sink_list, control, bar, latency)

        capture_thread = threading.Thread(target=capture.run, name="er-capture", daemon=True)
        worker_threads = [threading.Thread(target=w.run, name=f"er-stage{k}", daemon=True)
                          for k, w in enumerate(workers)]
        t_start = time.perf_counter()
        for t in [capture_thread, *worker_threads]:
            t.start()

        # 3-4. Ctrl-C / SIGTERM wait for a frame boundary, and for the outputs to be final.
        with signals_between_frames() as pending:
            # 3. Sinks in this thread, until the end of the stream or a stop.
            sink_loop.run(pending)

            # 4. Tear down (waiting at most JOIN_TIMEOUT_S for the stages), then the report.
            control.halt()
            bar.close()
            elapsed = time.perf_counter() - t_start
            deadline = time.perf_counter() + JOIN_TIMEOUT_S
            for st, t in zip(self.stages, worker_threads):
                t.join(timeout=max(0.0, deadline - time.perf_counter()))
                if t.is_alive():
                    self._busy[id(st)] = t
                    log.warning("stage %s is still inside a call; not waiting for it (its frame is dropped)",
                                st.name)
            capture_thread.join(timeout=max(0.0, deadline - time.perf_counter()) if self._busy else 5.0)
            capture_done = not capture_thread.is_alive()
            sink_errors = []
            for s in sink_list:
                try:
                    if control.errors:
                        s.abort()
                    else:
                        s.close()
                except Exception as exc:  # noqa: BLE001 - e.g. disk full while finalising
                    sink_errors.append(exc)
            if capture_done:
                src.close()
            if sink_errors and not control.errors:
                control.errors.append(sink_errors[0])
        finish_report(
            report, frames_in=capture.frames_in, frames_out=sink_loop.frames_out,
            frames_dropped=channels[0].dropped, skipped=src.skipped, reconnects=src.reconnects,
            frames_resized=sum(getattr(s, "resized", 0) for s in sink_list),
            frames_repeated=sum(getattr(s, "repeated", 0) for s in sink_list),
            elapsed_s=elapsed, latency=latency,
            stages=[stage_entry(st.name, tm, st.describe()) for st, tm in zip(self.stages, timers)],
            error=control.errors[0] if control.errors else None, interrupted=control.interrupted is not None,
            stopped=control.stopped.is_set(), source_error=control.source_error,
            outputs=[] if control.errors else written_outputs(sink_list),
        )
        report.add_video_io(src, sink_list)
        if control.errors:
            raise control.errors[0]
        if control.interrupted is not None:
            raise control.interrupted
        if pending:  # a signal during the teardown: the outputs are complete, then it is raised
            report.status = "interrupted"
            raise_pending(pending)
        return report

    def _prepare(self, src: Source, sink_list: list[Sink], live: bool) -> None:
        """Step 1 of a run: check the outputs (writable, apart from the input; temporary
        files of ended runs in their folders removed), open the source and the stages."""
        busy = self.busy_stages()
        if busy:
            raise InputError(f"stage {busy[0]} is still busy with a frame of the previous (interrupted) "
                             "run; make a new Pipeline")
        inputs = src.input_paths()
        for s in sink_list:
            check_apart_from_inputs(s, inputs)
            s.check()
            if s.path is not None:
                clean_stale_partials(Path(s.path) if getattr(s, "is_folder", False) else Path(s.path).parent)
        src.prepare_for_mode(live)
        src.prepare_for_stages(self.stages)
        src.open()
        try:
            self.open()
        except BaseException:
            src.close()
            raise


def written_outputs(sink_list: Sequence[Sink]) -> list[str]:
    """What a report lists as outputs: file outputs that got frames, and the other sinks
    (window, callback) by name."""
    return [str(s.path) if s.path is not None else s.name for s in sink_list
            if s.path is None or s.frames_written]


def run(source: Any, sinks: Any = None, pipeline: str | Sequence[Any] | None = None, *,
        mode: str = "offline", max_frames: int | None = None) -> RunReport:
    """One call: ``run("in.mp4", "out.mkv", "denoise")``; see :class:`Pipeline` (None: the
    mode's default pipeline)."""
    with Pipeline(pipeline, mode=mode) as p:
        return p.run(source, sinks, max_frames=max_frames)
