"""Run report (JSON and a stderr summary) and the progress bar.

Why one module: the report of one stream and the report of several streams
(:class:`MultiStreamReport`, one :class:`RunReport` per stream and the totals) share the
latency log, the JSON writing and the summary conventions: that is why one module holds
both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgerestore.imageio import IMAGE_EXTENSIONS, write_bytes_atomic
from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sinks.base import check_writable_folder, clean_stale_partials


class StageTimer:
    """Per-stage timing: mean over frames after the first (the first includes warm-up)."""

    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self.total = 0.0
        self.first: float | None = None

    def add(self, seconds: float) -> None:
        if self.first is None:
            self.first = seconds
        else:
            self.total += seconds
        self.count += 1

    def mean_ms(self) -> float | None:
        if self.count == 0:
            return None
        if self.count == 1:
            return 1000.0 * (self.first or 0.0)
        return 1000.0 * self.total / (self.count - 1)


class LatencyLog:
    """Capture-to-output latencies; percentiles over the last ``keep`` frames, exact max."""

    def __init__(self, keep: int = 100_000):
        self.values: deque[float] = deque(maxlen=keep)
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.values.append(seconds)
        self.max = max(self.max, seconds)

    def summary_ms(self) -> dict[str, float | None]:
        if not self.values:
            return {"p50": None, "p95": None, "max": None}
        a = np.fromiter(self.values, dtype=np.float64) * 1000.0
        return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
                "max": round(self.max * 1000.0, 2)}


@dataclass
class RunReport:
    """What a run did. ``status``: ``ok`` | ``input_error`` (input ended early: corrupt file,
    lost camera; outputs hold every frame produced) | ``stopped`` (a sink or stage asked to
    stop, e.g. 'q' in the window) | ``interrupted`` (Ctrl-C or SIGTERM; outputs finalised)
    | ``no_frames`` (the run ended normally but produced no frame: an empty input, only
    unreadable images; no output written) | ``error`` (a stage, sink or the start failed;
    outputs discarded). ``outputs``: the outputs this run wrote (a file output that got
    no frame, or was discarded, is not listed)."""

    source: str
    mode: str
    pipeline: list[str]
    outputs: list[str]
    status: str = "ok"
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    frames_skipped: int = 0
    frames_resized: int = 0
    frames_repeated: int = 0
    frames_expected: int | None = None
    fps: float | None = None
    elapsed_s: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p95": None, "max": None})
    stages: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0
    source_error: str | None = None
    source_error_frame: int | None = None
    error: str | None = None
    skipped: list[str] = field(default_factory=list)
    duration_in_s: float | None = None
    duration_out_s: float | None = None
    encoders: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "stopped")

    def add_video_io(self, source: Any, sinks: Any) -> None:
        """Fill the video I/O fields from a run's source and sinks: ``duration_in_s`` (what
        decoded: first frame's start to the last frame's end, or the container's duration
        when the source cannot say), ``duration_out_s`` (the same span measured on the
        first video file written), and ``encoders``: one entry per
        video sink (encoder, ``encode_ms`` per frame, ``encoder_dropped`` at its queue)."""
        span = getattr(source, "decoded_span_s", None)
        d = span() if callable(span) else None
        d = getattr(source, "duration_s", None) if d is None else d
        self.duration_in_s = None if d is None else round(float(d), 6)
        self.encoders = [s.describe() for s in sinks if hasattr(s, "encode_ms")]
        outs = [e["duration_s"] for e in self.encoders if e.get("duration_s") is not None]
        self.duration_out_s = outs[0] if outs else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON (temporary file, then moved into place). Raises
        :class:`SinkError` when it cannot be written (disk full, ...); no partial file is
        left and an earlier file at ``path`` is kept."""
        p = Path(path)
        data = (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")
        try:
            write_bytes_atomic(p, data)
        except OSError as exc:
            raise SinkError(f"cannot write the report {p}: {exc.strerror or exc}") from None
        return p

    def summary(self) -> str:
        """A few human lines for stderr."""
        lat = self.latency_ms
        fps = f"{self.fps:.2f}" if self.fps is not None else "-"
        lines = [
            f"{self.status}: {self.frames_out} frames out of {self.frames_in} read"
            + (f" ({self.frames_dropped} dropped to keep latency bounded)" if self.frames_dropped else "")
            + (f", {self.frames_skipped} unreadable/unusable skipped" if self.frames_skipped else "")
            + f" in {self.elapsed_s:.1f} s: {fps} fps ({self.mode} mode)",
        ]
        if lat.get("p50") is not None:
            lines.append(f"latency ms: p50 {lat['p50']:.0f}, p95 {lat['p95']:.0f}, max {lat['max']:.0f}")
        for st in self.stages:
            mean = st.get("mean_ms")
            extra = f" on {st['backend']} ({st.get('backend_reason')})" if st.get("backend") else ""
            lines.append(f"  stage {st['name']}: {mean:.1f} ms/frame{extra}" if mean is not None
                         else f"  stage {st['name']}: no frames")
            lines.extend(noise_lines(st))
        for enc in self.encoders:
            ms = enc.get("encode_ms")
            lines.append(f"  encoder {enc.get('encoder')}: " + (f"{ms:.1f} ms/frame" if ms is not None else "no frames")
                         + (f", {enc['encoder_dropped']} frames dropped at its queue" if enc.get("encoder_dropped") else "")
                         + f" -> {enc.get('path')}")
        if self.duration_in_s is not None or self.duration_out_s is not None:
            fmt = lambda v: "-" if v is None else f"{v:.3f} s"  # noqa: E731
            lines.append(f"duration in {fmt(self.duration_in_s)}, out {fmt(self.duration_out_s)}")
        if self.reconnects:
            lines.append(f"source reopened {self.reconnects} time(s)")
        if self.frames_repeated:
            lines.append(f"{self.frames_repeated} frames repeated in the video over dropped frames "
                         "(it plays at capture speed)")
        if self.frames_resized:
            lines.append(f"{self.frames_resized} frames resized to the video's frame size")
        if self.source_error:
            lines.append(f"input error: {self.source_error}")
        if self.error and self.status != "no_frames":  # no_frames: the caller says why
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


STREAM_FAILED = ("error", "input_error", "no_frames")
"""Stream statuses that make a multi-stream run fail (exit 1 in the CLI)."""


@dataclass
class MultiStreamReport:
    """What a run of several streams did: ``streams``, one :class:`RunReport` per stream
    (frames in/out/dropped, fps, latency p50/p95, its own status and error); ``totals``:
    frames summed, ``fps`` = all frames out per second of the whole run, latency over
    every frame; ``stages``: the shared stages (a batch stage adds ``batches`` and
    ``mean_batch``, frames per call). ``status``: ``ok`` when every stream is ok or
    stopped, ``interrupted``, ``error`` (the run could not start), else ``partial``
    (some streams failed; the others' outputs are complete)."""

    mode: str
    pipeline: list[str]
    streams: list[RunReport]
    status: str = "ok"
    error: str | None = None
    elapsed_s: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def finish(self, *, elapsed_s: float, stages: list[dict[str, Any]], latency: LatencyLog,
               interrupted: bool) -> None:
        """Fill the totals and the status at the end of the run."""
        self.elapsed_s = round(elapsed_s, 3)
        self.stages = stages
        out = sum(r.frames_out for r in self.streams)
        fps = [r.fps for r in self.streams if r.fps]
        self.totals = {
            "streams": len(self.streams),
            "frames_in": sum(r.frames_in for r in self.streams),
            "frames_out": out,
            "frames_dropped": sum(r.frames_dropped for r in self.streams),
            "fps": round(out / elapsed_s, 3) if elapsed_s > 0 and out else None,
            "stream_fps_spread": round((max(fps) - min(fps)) / max(fps), 4) if len(fps) > 1 else None,
            "latency_ms": latency.summary_ms(),
        }
        if interrupted:
            self.status = "interrupted"
        elif any(r.status in STREAM_FAILED for r in self.streams):
            self.status = "partial" if any(r.ok for r in self.streams) else "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | os.PathLike) -> Path:
        """As :meth:`RunReport.write_json`."""
        p = Path(path)
        try:
            write_bytes_atomic(p, (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8"))
        except OSError as exc:
            raise SinkError(f"cannot write the report {p}: {exc.strerror or exc}") from None
        return p

    def summary(self) -> str:
        """One line per stream and the totals, for stderr."""
        def ms(v):
            return "-" if v is None else f"{v:.0f}"

        lines = []
        for k, r in enumerate(self.streams):
            lat = r.latency_ms
            line = (f"stream {k} {r.source}: {r.status}, {r.frames_out}/{r.frames_in} frames"
                    + (f" ({r.frames_dropped} dropped)" if r.frames_dropped else "")
                    + f", {r.fps or 0:.2f} fps, latency p50 {ms(lat.get('p50'))} / p95 {ms(lat.get('p95'))} ms")
            if r.reconnects:
                line += f", reopened {r.reconnects} time(s)"
            lines.append(line)
            if r.source_error:
                lines.append(f"  input error: {r.source_error}")
            if r.error:
                lines.append(f"  error: {r.error}")
        t = self.totals
        if t:
            lat = t["latency_ms"]
            lines.append(f"{self.status}: {t['streams']} streams, {t['frames_out']} frames out of {t['frames_in']} read"
                         + (f" ({t['frames_dropped']} dropped)" if t["frames_dropped"] else "")
                         + f" in {self.elapsed_s:.1f} s: {t['fps'] or 0:.2f} fps in all ({self.mode} mode), "
                         f"latency p50 {ms(lat.get('p50'))} / p95 {ms(lat.get('p95'))} ms")
        for st in self.stages:
            mean = st.get("mean_ms")
            batch = f", {st['mean_batch']} frames per call" if st.get("mean_batch") else ""
            extra = f" on {st['backend']}" if st.get("backend") else ""
            lines.append(f"  stage {st['name']}: " + (f"{mean:.1f} ms/frame" if mean is not None else "no frames")
                         + batch + extra)
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def noise_lines(stage: dict[str, Any]) -> list[str]:
    """Summary lines for a kernel stage's noise estimates (``sigma_estimated``: min /
    median / max over the frames, 0-255 scale) and the frames it passed through unchanged
    because the estimate was below its threshold, with a hint when it passed half or more."""
    est = stage.get("sigma_estimated")
    if not est:
        return []
    lines = [f"    estimated noise sigma (0-255) over {est['frames']} frame(s): min {est['min']:.2f}, "
             f"median {est['median']:.2f}, max {est['max']:.2f}"]
    passed = stage.get("passed_through") or 0
    if passed:
        frames = stage.get("frames") or passed
        lines.append(f"    {passed} of {frames} frame(s) passed through unchanged: estimated sigma below "
                     f"{stage.get('pass_threshold')}")
        if 2 * passed >= frames:
            what = "the input looks clean" if passed >= frames else "most frames look clean"
            lines.append(f"    hint: {what}, so they were left unchanged; to denoise anyway give a "
                         "level, e.g. --pipeline \"nlm(sigma=5)\"")
    return lines


def sigma_summary(values: list[float]) -> dict[str, float | int] | None:
    """``{"frames", "min", "median", "max"}`` of per-frame noise estimates (0-255), or None."""
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"frames": int(a.size), "min": round(float(a.min()), 3), "median": round(float(np.median(a)), 3),
            "max": round(float(a.max()), 3)}


REPORT_REFUSED_SUFFIXES = tuple(IMAGE_EXTENSIONS) + (".mkv", ".mp4", ".m4v", ".mov", ".avi", ".webm")
"""Suffixes a report path may not have: JSON under a video's or image's name would pass for one."""


def check_report_path(path: str | os.PathLike, *, inputs=(), outputs=()) -> Path:
    """Refuse, before any work, a report path that cannot be written or that would replace
    something: an input or an output of the run (same path, or the same file through a
    link), a path inside an output folder, a name with a video or image extension, a
    folder, or a path in a missing or read-only folder. Removes the temporary files that
    ended runs left in its folder. Returns the path; raises :class:`SinkError`."""
    p = Path(path)
    what = f"the report {p}"
    resolved = p.resolve()
    for kind, paths in (("input", inputs), ("output", outputs)):
        for other in paths:
            o = Path(other).resolve()
            if resolved == o or (p.exists() and o.exists() and os.path.samefile(p, o)):
                raise SinkError(f"{what} is the run's {kind} {other}; give the report another name")
            if kind == "output" and o in resolved.parents:
                raise SinkError(f"{what} is inside the output folder {other}; write it elsewhere")
    if p.suffix.lower() in REPORT_REFUSED_SUFFIXES:
        raise SinkError(f"{what} has a video/image extension ({p.suffix}); the JSON would pass for "
                        "one. Give the report a .json name")
    if p.is_dir():
        raise SinkError(f"cannot write {what}: it is a folder; give a file name, e.g. {p / 'report.json'}")
    check_writable_folder(resolved.parent, what)
    clean_stale_partials(resolved.parent)
    return p


def stage_entry(name: str, timer: StageTimer, extra: dict[str, Any]) -> dict[str, Any]:
    """One item of :attr:`RunReport.stages`: name, mean/first time in ms, frames, and the
    stage's own fields (``describe()``)."""
    mean = timer.mean_ms()
    return {"name": name, "mean_ms": None if mean is None else round(mean, 2),
            "first_ms": None if timer.first is None else round(timer.first * 1000.0, 2),
            "frames": timer.count, **extra}


def finish_report(report: RunReport, *, frames_in: int, frames_out: int, frames_dropped: int,
                  skipped: list[str], reconnects: int, frames_resized: int, frames_repeated: int,
                  elapsed_s: float, latency: LatencyLog, stages: list[dict[str, Any]],
                  error: BaseException | None, interrupted: bool, stopped: bool,
                  source_error: Any = None, outputs: list[str] | None = None) -> RunReport:
    """Fill ``report`` at the end of a run (the report step of a pipeline run).

    ``source_error``: a :class:`~edgerestore.runtime.errors.DecodeError` when the input
    ended early. The status is the first that applies of ``error`` (``error`` given),
    ``interrupted``, ``input_error`` (``source_error``), ``stopped``, ``no_frames`` (no
    frame came out), else ``ok``. ``outputs``: the outputs written (None: left as they are).
    """
    report.frames_in = frames_in
    report.frames_out = frames_out
    report.frames_dropped = frames_dropped
    report.frames_skipped = len(skipped)
    report.skipped = list(skipped)
    report.reconnects = reconnects
    report.frames_resized = frames_resized
    report.frames_repeated = frames_repeated
    report.elapsed_s = round(elapsed_s, 3)
    report.fps = round(frames_out / elapsed_s, 3) if elapsed_s > 0 and frames_out else None
    report.latency_ms = latency.summary_ms()
    report.stages = stages
    if source_error is not None:
        report.source_error = str(source_error)
        report.source_error_frame = source_error.frame_index
    if error is not None:
        report.status = "error"
        report.error = str(error)
    elif interrupted:
        report.status = "interrupted"
    elif source_error is not None:
        report.status = "input_error"
    elif stopped:
        report.status = "stopped"
    elif frames_out == 0:
        report.status = "no_frames"
        report.error = no_frames_reason(frames_in, frames_dropped, skipped)
    if outputs is not None:
        report.outputs = list(outputs)
    return report


def no_frames_reason(frames_in: int, frames_dropped: int, skipped: list[str]) -> str:
    """Why a run that ended normally produced no frame, in words."""
    if skipped:
        return (f"no frames came out: {len(skipped)} input image(s) were skipped as unreadable "
                "or unusable (see the warnings), none was left")
    if frames_in == 0:
        return "no frames came out: the input holds no frames"
    if frames_dropped:
        return f"no frames came out: all {frames_in} frame(s) read were dropped (live mode)"
    return f"no frames came out of the pipeline ({frames_in} frame(s) read)"


class Progress:
    """``frames done / total, fps, ETA`` on one terminal line (stderr), at most 5 times/s."""

    def __init__(self, total: int | None, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - self.t0, 1e-9)
        fps = done / elapsed
        if self.total:
            frac = min(done / self.total, 1.0)
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (self.total - done) / fps if fps > 0 else float("inf")
            eta_s = _clock(eta) if eta != float("inf") else "?"
            text = f"[{bar}] {done}/{self.total} frames {fps:5.2f} fps ETA {eta_s}"
        else:
            text = f"{done} frames {fps:5.2f} fps {_clock(elapsed)}"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
