"""The streaming runtime: sources -> stages (each in its own thread) -> sinks.

Python API (the ``edgerestore run`` command is a thin layer over it)::

    from edgerestore.runtime import Pipeline, sources, sinks

    pipe = Pipeline("nlm(sigma=15)|upscale(scale=2)", mode="offline")
    report = pipe.run(sources.VideoFileSource("in.mp4"), sinks.VideoFileSink("out.mkv"))
    print(report.fps, report.latency_ms)

See ``docs/runtime.md`` for modes, the stage protocol and the report fields.
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
from edgerestore.runtime.sources import Frame
from edgerestore.runtime.spec import NAMED_PIPELINES, parse_pipeline
from edgerestore.runtime.stages import STAGES, Stage, register_stage

__all__ = [
    "Pipeline", "run", "RunReport", "Frame", "Stage", "register_stage", "STAGES",
    "NAMED_PIPELINES", "parse_pipeline", "sources", "sinks",
    "DecodeError", "PipelineSpecError", "SinkError", "SourceError", "SourceLost", "StageError", "StopRun",
]
