"""The streaming runtime: sources -> stages (each in its own thread) -> sinks.

Python API (the ``edgerestore run`` command is a thin layer over it)::

    from edgerestore.runtime import Pipeline, sources, sinks

    pipe = Pipeline("nlm(sigma=15)|upscale(scale=2)", mode="offline")
    report = pipe.run(sources.VideoFileSource("in.mp4"), sinks.VideoFileSink("out.mkv"))
    print(report.fps, report.latency_ms)

See ``docs/runtime.md`` for modes, the stage protocol and the report fields.

Layout: ``sources/`` (one module per kind of source), ``stages/`` (the kinds of stage and
the built-in stages), ``catalog`` (the one place stages and named pipelines are
registered), ``spec`` (pipeline strings), ``channel`` and ``workers`` (the threads of a
run), ``pipeline`` (wires them), ``multistream`` (several streams in one process, stages
shared) and ``streams_file`` (its TOML file), ``sinks``, ``report``, ``errors``.
"""

from edgerestore.runtime import sinks, sources
from edgerestore.runtime.errors import (
    DecodeError,
    PipelineSpecError,
    SinkError,
    SourceError,
    SourceLost,
    StageError,
    StopRun,
)
from edgerestore.runtime.pipeline import Pipeline, run
from edgerestore.runtime.report import RunReport
from edgerestore.runtime.catalog import NAMED_PIPELINES, STAGES, register_stage
from edgerestore.runtime.sources import Frame
from edgerestore.runtime.spec import parse_pipeline
from edgerestore.runtime.stages import BatchStage, FrameStage, Stage, WindowStage

__all__ = [
    "Pipeline", "run", "RunReport", "Frame", "Stage", "FrameStage", "WindowStage", "BatchStage", "register_stage", "STAGES",
    "NAMED_PIPELINES", "parse_pipeline", "sources", "sinks",
    "DecodeError", "PipelineSpecError", "SinkError", "SourceError", "SourceLost", "StageError", "StopRun",
]
