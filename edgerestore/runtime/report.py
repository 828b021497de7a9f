"""Run report (JSON and a stderr summary) and the progress bar."""

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
    stop, e.g. 'q' in the window) | ``interrupted`` (Ctrl-C; outputs finalised) | ``error``
    (a stage failed; outputs discarded)."""

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
        """Write the report as JSON (temporary file, then moved into place)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.partial-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        os.replace(tmp, p)
        return p

    def summary(self) -> str:
        """A few human lines for stderr."""
        lat = self.latency_ms
        fps = f"{self.fps:.2f}" if self.fps is not None else "-"
        lines = [
            f"{self.status}: {self.frames_out} frames out of {self.frames_in} read"
            + (f" ({self.frames_dropped} dropped to keep latency bounded)" if self.frames_dropped else "")
            + (f", {self.frames_skipped} unreadable skipped" if self.frames_skipped else "")
            + f" in {self.elapsed_s:.1f} s: {fps} fps ({self.mode} mode)",
        ]
        if lat.get("p50") is not None:
            lines.append(f"latency ms: p50 {lat['p50']:.0f}, p95 {lat['p95']:.0f}, max {lat['max']:.0f}")
        for st in self.stages:
            mean = st.get("mean_ms")
            extra = f" on {st['backend']} ({st.get('backend_reason')})" if st.get("backend") else ""
            lines.append(f"  stage {st['name']}: {mean:.1f} ms/frame{extra}" if mean is not None
                         else f"  stage {st['name']}: no frames")
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
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


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
                  source_error: Any = None) -> RunReport:
    """Fill ``report`` at the end of a run (the report step of a pipeline run).

    ``source_error``: a :class:`~edgerestore.runtime.errors.DecodeError` when the input
    ended early. The status is the first that applies of ``error`` (``error`` given),
    ``interrupted``, ``input_error`` (``source_error``), ``stopped``, else ``ok``.
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
    return report


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
