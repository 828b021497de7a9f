"""A batch job: plan the units, skip what the manifest says is done, run the rest on an
executor (local process pool or Ray), join chunks, show progress and write the report.

Chunks: a video longer than ``chunk_frames`` is cut into ``[start, stop)`` ranges; each
chunk is restored with ``overlap`` extra frames on each side (the sum of the window
stages' ``radius``: what a frame's window can reach) and keeps its own frames only, so
every frame sees the same neighbours as in one unchunked run. Chunks are written as
lossless FFV1 parts and joined in order into the final output, with the input's time
base, timestamps and audio. Pipelines whose result depends on all earlier frames (frame
stages such as ``repair``, causal recursive window stages such as ``temporal_live``)
are not chunked (the report says so).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgerestore import __version__
from edgerestore.batch.manifest import Manifest, manifest_dir
from edgerestore.batch.units import chunk_ranges, find_inputs, output_for, unit_key
from edgerestore.errors import EdgeRestoreError
from edgerestore.imageio import write_bytes_atomic


OPEN_END = 2**62
"""The last chunk's ``stop``: to the end of the video, whatever the container announced."""


@dataclass
class BatchOptions:
    """What a job does. ``on``: None (local pool), ``"ray"`` (a local Ray) or a Ray
    address (``ray://head:10001``, ``auto``). ``workers``: processes (local) or tasks in
    flight (Ray); None: the CPUs. ``tries``: attempts per unit before it is reported
    failed. ``chunk_frames``: split longer videos (None: one unit per video)."""

    pipeline: str = "default"
    on: str | None = None
    workers: int | None = None
    tries: int = 3
    chunk_frames: int | None = None
    codec: str | None = None
    crf: int | None = None
    lossless: bool = False
    progress: bool = True


@dataclass
class BatchReport:
    """The job's report: one entry per input video, and the totals."""

    pipeline: str
    executor: str
    version: str = __version__
    files: list[dict] = field(default_factory=list)
    units_total: int = 0
    units_run: int = 0
    units_skipped: int = 0
    frames: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f["status"] in ("done", "skipped") for f in self.files)

    def write_json(self, path: str | os.PathLike) -> None:
        data = asdict(self) | {"ok": self.ok}
        write_bytes_atomic(Path(path), (json.dumps(data, indent=2) + "\n").encode())


def chunk_overlap(stages) -> int | None:
    """Frames of overlap a chunk needs for ``stages`` (0 for per-frame pipelines), or None
    when the pipeline cannot be chunked (a frame stage or a causal recursive window stage
    carries state over the whole video)."""
    from edgerestore.runtime import FrameStage, WindowStage

    overlap = 0
    for s in stages:
        if isinstance(s, FrameStage):
            return None
        if isinstance(s, WindowStage):
            if s.frames_ahead() < s.radius:
                return None
            overlap += s.radius
    return overlap


def recipe_of(options: BatchOptions) -> tuple[str, str]:
    """(canonical pipeline string, recipe string for the manifest key)."""
    from edgerestore.runtime.spec import expand

    pipeline = "|".join(part.strip() for part in expand(options.pipeline or "").split("|") if part.strip())
    recipe = json.dumps({"pipeline": pipeline, "codec": options.codec, "crf": options.crf,
                         "lossless": options.lossless}, sort_keys=True)
    return pipeline, recipe


class Progress:
    """One line on stderr: units and frames done, throughput, ETA (from units)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.done = self.frames = 0
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, frames: int) -> None:
        self.done += 1
        self.frames += frames
        if not self.enabled:
            return
        dt = max(time.perf_counter() - self.t0, 1e-9)
        eta = (self.total - self.done) * dt / self.done if self.done else 0.0
        line = (f"batch: {self.done}/{self.total} units, {self.frames} frames, {self.frames / dt:.1f} frames/s, "
                f"{self.done / dt:.2f} units/s, ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def make_executor(options: BatchOptions):
    """The local pool, or Ray for ``on``."""
    if options.on:
        from edgerestore.batch.ray_executor import RayExecutor

        return RayExecutor(options.on, options.workers)
    from edgerestore.batch.local import LocalPool

    return LocalPool(options.workers)


def run_batch(pattern: str, outdir: str | os.PathLike, options: BatchOptions) -> BatchReport:
    """Restore every video of ``pattern`` into ``outdir`` (see the module docstring)."""
    from edgerestore.runtime import parse_pipeline
    from edgerestore.runtime.sources import VideoFileSource

    t0 = time.perf_counter()
    outdir = Path(outdir)
    root, videos = find_inputs(pattern)
    outdir.mkdir(parents=True, exist_ok=True)
    pipeline, recipe = recipe_of(options)
    stages = parse_pipeline(pipeline) if pipeline else []  # refuses a bad spec before any work
    overlap = chunk_overlap(stages)
    executor = make_executor(options)
    report = BatchReport(pipeline=pipeline, executor=executor.name)
    if options.chunk_frames and overlap is None:
        report.notes.append("the pipeline carries state over the whole video (frame stage or recursive "
                            "window stage): videos are not chunked")
    outputs: dict[Path, Path] = {}
    entries: dict[str, dict] = {}  # video key -> report entry
    units: list[dict] = []
    with Manifest(outdir) as manifest:
        for video in videos:
            out = output_for(root, video, outdir)
            if out in outputs:
                raise EdgeRestoreError(f"{video} and {outputs[out]} would both be written to {out}; "
                                       "rename one, or restore them in separate jobs")
            outputs[out] = video
            content = manifest.file_hash(video)
            key = unit_key(content, recipe, __version__)
            entry = {"input": str(video), "output": str(out), "key": key, "status": "pending", "frames": 0,
                     "seconds": 0.0, "workers": [], "tries": 0, "error": "", "chunks": 1}
            report.files.append(entry)
            entries[key] = entry
            if manifest.is_done(key, out):
                rec = manifest.get(key)
                entry.update(status="skipped", frames=rec["frames"], workers=[rec["worker"]])
                report.units_skipped += 1
                continue
            base = {"input": str(video), "outdir": str(outdir), "pipeline": pipeline, "codec": options.codec,
                    "crf": options.crf, "lossless": options.lossless, "video_key": key}
            ranges = [(0, 0)]
            if options.chunk_frames and overlap is not None:
                src = VideoFileSource(video)
                try:
                    src.open()
                    count = src.frame_count
                except EdgeRestoreError:
                    count = None  # a corrupt file: one unit, whose error is reported
                finally:
                    src.close()
                if count:
                    ranges = chunk_ranges(count, options.chunk_frames)
            if len(ranges) == 1:
                units.append(base | {"key": key, "output": str(out)})
                continue
            entry["chunks"] = len(ranges)
            parts = manifest_dir(outdir) / "parts" / key
            for start, stop in ranges:
                ckey = unit_key(content, recipe, __version__, (start, stop))
                if stop == ranges[-1][1]:
                    stop = OPEN_END  # the container's frame count may be short: read to the end
                part = parts / f"{start:09d}.mkv"
                entry.setdefault("parts", []).append(str(part))
                if manifest.is_done(ckey, part):
                    report.units_skipped += 1
                    continue
                units.append(base | {"key": ckey, "output": str(part), "start": start, "stop": stop,
                                     "overlap": overlap})
        report.units_total = len(units) + report.units_skipped
        progress = Progress(len(units), options.progress)

        def finished(unit: dict, result: dict | None, error: str | None, tries: int) -> None:
            entry = entries[unit["video_key"]]
            entry["tries"] = max(entry["tries"], tries)
            if result is not None:
                manifest.record(unit["key"], input=unit["input"], output=unit["output"], status="done",
                                frames=result["frames"], seconds=result["seconds"], worker=result["worker"],
                                tries=tries, recipe=recipe, version=__version__)
                entry["frames"] += result["frames"]
                entry["seconds"] += result["seconds"]
                entry["workers"].append(result["worker"])
                report.frames += result["frames"]
                progress.update(result["frames"])
            else:
                manifest.record(unit["key"], input=unit["input"], output=unit["output"], status="failed",
                                tries=tries, error=error or "", recipe=recipe, version=__version__)
                entry["status"] = "failed"
                entry["error"] = error or ""
                progress.update(0)
            report.units_run += 1

        try:
            if units:
                executor.run(units, options.tries, finished)
        finally:
            progress.close()
            executor.close()
            remove_partials(units)
        for entry in report.files:
            if entry["status"] != "pending":
                continue
            if entry["chunks"] > 1:
                try:
                    frames = join_parts([Path(p) for p in entry["parts"]], Path(entry["input"]), Path(entry["output"]),
                                        options)
                except EdgeRestoreError as exc:
                    entry.update(status="failed", error=f"joining the chunks failed: {exc}")
                    continue
                entry["frames"] = frames
                shutil.rmtree(Path(entry["parts"][0]).parent, ignore_errors=True)
            entry["status"] = "done"
            entry["workers"] = sorted(set(entry["workers"]))
            manifest.record(entry["key"], input=entry["input"], output=entry["output"], status="done",
                            frames=entry["frames"], seconds=entry["seconds"], worker=",".join(entry["workers"]),
                            tries=entry["tries"], recipe=recipe, version=__version__)
    report.seconds = time.perf_counter() - t0
    return report


def remove_partials(units: list[dict]) -> None:
    """Remove the temporary files that workers killed mid-unit left beside the outputs
    of ``units`` (``.<name>.<pid>.partial.mkv`` and the video sink's own temporary file
    inside it); called when no unit of the job is running any more."""
    for unit in units:
        out = Path(unit["output"])
        prefixes = (f".{out.stem}.", f"..{out.stem}.")
        for stale in out.parent.glob(f"*{glob.escape(out.stem)}.*partial*"):
            if stale.name.startswith(prefixes):
                stale.unlink(missing_ok=True)


def join_parts(parts: list[Path], original: Path, output: Path, options: BatchOptions) -> int:
    """Write the frames of ``parts`` (in order) into ``output`` with the time base,
    timestamps and audio of ``original``; returns the frames written."""
    from edgerestore.batch.work import ConcatSource
    from edgerestore.runtime import Pipeline, sinks
    from edgerestore.runtime.sources import VideoFileSource

    orig = VideoFileSource(original)
    orig.open()
    orig.close()
    sink = sinks.VideoFileSink(output, codec=options.codec, crf=options.crf, lossless=options.lossless, source=orig)
    with Pipeline([], mode="offline") as pipe:
        report = pipe.run(ConcatSource(parts, orig.fps), sink, progress=False)
    if report.status != "ok":
        raise EdgeRestoreError(str(report.source_error or report.error or report.status))
    return report.frames_out
