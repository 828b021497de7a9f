"""The one place where the runtime's stages and named pipelines are registered.

:data:`STAGES` maps stage names (``nlm``, ``upscale``, ...) to factories ``factory(**kwargs)
-> Stage``; :data:`NAMED_PIPELINES` maps names (``default``, ``denoise``, ...) to pipeline
strings. Both are :class:`edgerestore.registry.Registry` objects: a name is taken once,
and they list themselves for ``edgerestore run --list``. Stages of packages above the
runtime (frame repair) are registered by reference (``Ref("module:attr")``), imported
when a pipeline first uses them, so the runtime never imports them itself.

Users add stages with :func:`register_stage`.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from edgerestore.registry import Ref, Registry
from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages import (
    BM3DStage,
    Stage,
    ColorStage,
    GrayStage,
    ModelStage,
    NLMStage,
    OpenCVNLMStage,
    ResizeStage,
    UpscaleStage,
)
from edgerestore.runtime.stages.window import TemporalLiveStage, TemporalStage
from edgerestore.runtime.stages.base import keyword_parameters


def _check_stage_name(name: str) -> None:
    if not name.isidentifier():
        raise PipelineSpecError(f"stage name {name!r} must be a Python identifier")


STAGES: Registry[Callable[..., Any]] = Registry("stage", check_name=_check_stage_name)
"""Stage name -> factory (a Stage class or a function returning a stage)."""

NAMED_PIPELINES: Registry[str] = Registry("named pipeline")
"""Named pipeline -> its pipeline string (``"nlm(search_size=11)"``)."""

DEFAULT_PIPELINE = {"offline": "default", "live": "live"}
"""The named pipeline a run uses when none is given, per mode."""


def docstring_summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring as one line of plain text (reST roles and
    literals unwrapped: ``:func:`~a.b``` -> ``b``); '' without a docstring."""
    doc = inspect.getdoc(obj) or ""
    text = " ".join(doc.split("\n\n", 1)[0].split())
    text = re.sub(r":\w+:`~?([^`]*?)`", lambda m: m.group(1).rsplit(".", 1)[-1]
                  if m.group(0).startswith((":func:`~", ":class:`~", ":meth:`~")) else m.group(1), text)
    return text.replace("``", "")


def register_stage(name: str, factory: Callable[..., Any] | Ref | None = None, *,
                   description: str | None = None):
    """Make ``factory(**kwargs) -> stage`` usable as ``name(...)`` in pipeline strings.

    Use as a decorator (``@register_stage("sharpen")`` on a class or function) or call
    it. ``description`` (one line for ``run --list``) defaults to the first paragraph of
    the factory's docstring; a :class:`~edgerestore.registry.Ref` needs one. A name
    already registered, or one that is not a Python identifier, raises.
    """

    def deco(f):
        if isinstance(f, Ref) and description is None:
            raise PipelineSpecError(f"stage {name!r} is registered by reference; give a description")
        STAGES.add(name, f, description if description is not None else docstring_summary(f))
        return f

    return deco(factory) if factory is not None else deco


def stage_parameters(name: str) -> list[str]:
    """Keyword parameters the stage registered as ``name`` accepts, for listings and
    messages: the constructor's, plus those a stage passes on (``nlm``'s kernel
    parameters such as ``search_size``) when its class says so (``Stage.parameters``)."""
    factory = STAGES.get(name)
    if isinstance(factory, type) and issubclass(factory, Stage):
        return list(factory.parameters())
    return keyword_parameters(factory)


# ----------------------------------------------------------------- built-in stages
register_stage("nlm", NLMStage)
register_stage("bm3d", BM3DStage)
register_stage("opencv_nlm", OpenCVNLMStage)
register_stage("model", ModelStage)
register_stage("upscale", UpscaleStage)
register_stage("resize", ResizeStage)
register_stage("gray", GrayStage)
register_stage("color", ColorStage)
register_stage("temporal", TemporalStage)
register_stage("temporal_live", TemporalLiveStage)
register_stage("repair", Ref("edgerestore.repair.stage:RepairStage"),
               description="Find and repair damaged frames: lost/smeared macroblocks, dead pixels "
                           "(and a mask); report frozen and dropped frames (docs/repair.md).")

# ----------------------------------------------------------------- named pipelines
# `default` and `live` were chosen by measured quality and speed: docs/runtime.md.
NAMED_PIPELINES.add("denoise", "nlm()", "non-local means, colour, noise level estimated per frame")
NAMED_PIPELINES.add("denoise-fast", "nlm(search_size=11)",
                    "NLM with an 11x11 search window: about 2x faster, -0.2 dB at sigma 15 "
                    "(-0.7 at 25); for live mode on a CPU")
NAMED_PIPELINES.add("denoise-strong", "bm3d()",
                    "BM3D, slower, for heavier noise (sigma estimated per frame)")
NAMED_PIPELINES.add("upscale2", "nlm()|upscale(scale=2)", "denoise, then 2x super-resolution (sr-x2)")
NAMED_PIPELINES.add("default", "nlm()", "the default: same as 'denoise'")
NAMED_PIPELINES.add("live", "nlm(search_size=11, estimate_every=10)",
                    "the default in live mode: 'denoise-fast' with the noise level estimated "
                    "on every 10th frame only")
NAMED_PIPELINES.add("denoise-temporal", "temporal(radius=2)",
                    "motion-compensated temporal denoising (2 frames before and after, then one NLM "
                    "pass with the per-pixel residual level as its sigma); docs/temporal.md")
NAMED_PIPELINES.add("live-temporal", "temporal_live()",
                    "causal, recursive temporal denoising for live mode (no added latency)")
NAMED_PIPELINES.add("repair", "repair()",
                    "find and repair lost/smeared blocks and dead pixels; report frozen and "
                    "dropped frames (--mask, --fill-dropped)")
