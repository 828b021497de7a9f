"""Stages: what a pipeline does to the frames.

``base``: the kinds of stage (:class:`Stage` for arrays, :class:`FrameStage` for frame
sequences, :class:`WindowStage` for a frame and its neighbours), :class:`FunctionStage` for plain callables, :func:`as_stage`. The built-in
stages, by kind: ``kernel`` (``nlm``, ``bm3d``, ``opencv_nlm``), ``model`` (``model``,
``upscale``), ``format`` (``resize``, ``gray``, ``color``). They are registered by name
in :mod:`edgerestore.runtime.catalog`; ``docs/runtime.md`` documents the protocol.
"""

from edgerestore.runtime.stages.base import BatchStage, FrameStage, FunctionStage, Stage, WindowStage, as_stage
from edgerestore.runtime.stages.format import ColorStage, GrayStage, ResizeStage
from edgerestore.runtime.stages.kernel import BM3DStage, NLMStage, OpenCVNLMStage
from edgerestore.runtime.stages.model import ModelStage, UpscaleStage

__all__ = [
    "Stage", "FrameStage", "WindowStage", "BatchStage", "FunctionStage", "as_stage",
    "NLMStage", "BM3DStage", "OpenCVNLMStage", "ModelStage", "UpscaleStage",
    "ResizeStage", "GrayStage", "ColorStage",
]
