"""Restoring one work unit: the code a worker process (local pool or Ray task) runs.

A unit restores ``input`` with ``pipeline`` into ``output`` (written atomically by the
video sink: a temporary name, moved into place when complete). A chunk unit
(``start``/``stop``) starts decoding at ``start - overlap`` (the video source seeks to the
keyframe at or before it and decodes forward from there), runs the pipeline on
``[start - overlap, stop + overlap)`` and keeps ``[start, stop)``; its output is a
lossless FFV1 part that :func:`edgerestore.batch.job.join_parts` joins.

While a unit runs, a claim file ``<outdir>/.edgerestore-batch/running/<key>`` holds the
worker's ``host:pid`` (what an operator, or a test, reads to find the process).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgerestore.batch.units import worker_name
from edgerestore.runtime import FrameStage
from edgerestore.runtime.sources import Frame, Source, VideoFileSource


class FrameRangeSource(VideoFileSource):
    """A video file read from frame ``first`` (the source seeks there: ``start_frame``)
    to frame ``last`` (exclusive); frames keep their index and timestamp in the file."""

    def __init__(self, path, first: int, last: int, **kwargs):
        super().__init__(path, start_frame=first, **kwargs)
        self.first, self.last = first, last

    def _read(self):
        frame = super()._read()
        if frame is None or frame.index >= self.last:
            return None
        return frame

    @property
    def frame_count(self):
        return self.last - self.first

    @frame_count.setter
    def frame_count(self, value):  # the base class sets it on open
        pass


class KeepRange(FrameStage):
    """The last stage of a chunk: passes frames with ``start <= index < stop`` only."""

    name = "keep_range"

    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def push_frame(self, frame):
        return [frame] if self.start <= frame.index < self.stop else []


class UnitFailed(RuntimeError):
    """A unit whose run ended without a complete output (the input ended early, ...)."""


def claim_path(outdir: str | os.PathLike, key: str) -> Path:
    """Where a running unit's ``host:pid`` is written."""
    return Path(outdir) / ".edgerestore-batch" / "running" / key


def restore_unit(unit: dict) -> dict:
    """Restore one unit (see the module docstring); returns ``frames``, ``seconds`` and
    ``worker``. Raises what the runtime raises (a corrupt input: DecodeError)."""
    from edgerestore.runtime import Pipeline, parse_pipeline, sinks

    t0 = time.perf_counter()
    claim = claim_path(unit["outdir"], unit["key"])
    claim.parent.mkdir(parents=True, exist_ok=True)
    tmp_claim = claim.with_name(f".{claim.name}.{os.getpid()}")
    tmp_claim.write_text(worker_name())
    os.replace(tmp_claim, claim)  # never seen empty
    try:
        out = Path(unit["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        # The sink moves a partial file into place when the input ends early; write beside
        # the target and rename only a complete run.
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")
        stages = parse_pipeline(unit["pipeline"]) if unit["pipeline"] else []
        if unit.get("stop") is not None:
            start, stop, overlap = unit["start"], unit["stop"], unit["overlap"]
            src = FrameRangeSource(unit["input"], max(0, start - overlap), stop + overlap)
            stages = stages + [KeepRange(start, stop)]
            sink = sinks.VideoFileSink(tmp, codec="ffv1", audio=False)
        else:
            src = VideoFileSource(unit["input"])
            sink = sinks.VideoFileSink(tmp, codec=unit.get("codec"), crf=unit.get("crf"),
                                       lossless=bool(unit.get("lossless")))
        try:
            with Pipeline(stages, mode="offline") as pipe:
                report = pipe.run(src, sink, progress=False)
            if report.status == "no_frames" and unit.get("stop") is not None and unit["start"] > 0:
                # a chunk past the real end (the container announced more frames): an empty part
                out.write_bytes(b"")
                return {"frames": 0, "seconds": time.perf_counter() - t0, "worker": worker_name()}
            if report.status != "ok":
                raise UnitFailed(f"{report.source_error or report.error or report.status}")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return {"frames": report.frames_out, "seconds": time.perf_counter() - t0, "worker": worker_name()}
    finally:
        claim.unlink(missing_ok=True)


class ConcatSource(Source):
    """The frames of the chunk parts of one video (lossless FFV1 files), in order, with
    their timestamps; ``fps`` is the original video's. Read with PyAV directly: a part
    starts mid-video, which the runtime's file source would take for a truncated file."""

    def __init__(self, paths, fps: float | None):
        super().__init__()
        self.paths = list(paths)
        self.fps = fps
        self.name = str(self.paths[0].parent) if self.paths else "parts"
        self._frames = None

    def _iter(self):
        import av

        index = 0
        for path in self.paths:
            if path.stat().st_size == 0:  # an empty chunk past the real end
                continue
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    yield Frame(frame.to_ndarray(format="bgr24"), index, float(frame.time))
                    index += 1

    def _open(self) -> None:
        self._frames = self._iter()

    def _read(self):
        return next(self._frames, None)

    def _close(self) -> None:
        if self._frames is not None:
            self._frames.close()
