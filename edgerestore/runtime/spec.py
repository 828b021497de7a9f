"""Pipeline strings: ``"nlm(sigma=15)|upscale(scale=2)"`` and named pipelines.

Grammar: stages separated by ``|``. Each stage is ``name`` or ``name(key=value, ...)``
with Python literal values (numbers, strings, True/False/None); ``model`` also takes the
model as its one positional argument: ``model("dn-gray", backend="ort-cpu")``. A bare
path ending in ``.onnx`` is a model stage. A whole string that is the name of a named
pipeline (``default``, ``denoise``, ...) expands to its definition.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys

from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages import STAGES, ModelStage, Stage, stage_parameters

# Named pipelines: name -> (definition, one-line description). `default` is what
# `edgerestore run` uses; see docs/runtime.md for how it was chosen (measured PSNR/speed).
NAMED_PIPELINES: dict[str, tuple[str, str]] = {
    "denoise": ("nlm()", "non-local means, colour, noise level estimated per frame"),
    "denoise-fast": ("nlm(search_size=11)", "NLM with an 11x11 search window: about 2x faster, "
                     "-0.2 dB at sigma 15 (-0.7 at 25); for live mode on a CPU"),
    "denoise-strong": ("bm3d()", "BM3D, slower, for heavier noise (sigma estimated per frame)"),
    "upscale2": ("nlm()|upscale(scale=2)", "denoise, then 2x super-resolution (sr-x2)"),
}
NAMED_PIPELINES["default"] = (NAMED_PIPELINES["denoise"][0], "the default: same as 'denoise'")
# Live mode on a CPU wants frames out quickly more than the last 0.2 dB: measured at
# 640x360 against a 30 fps source (benchmarks/results/runtime.md, docs/runtime.md), this
# gives several times the frames per second of 'default' at a fraction of its latency.
NAMED_PIPELINES["live"] = ("nlm(search_size=11, estimate_every=10)",
                           "the default in live mode: 'denoise-fast' with the noise level "
                           "estimated on every 10th frame only")
DEFAULT_PIPELINE = {"offline": "default", "live": "live"}


def default_pipeline(mode: str = "offline") -> str:
    """The named pipeline a run uses when none is given: ``default``, or ``live`` in live mode."""
    return DEFAULT_PIPELINE.get(mode, "default")


def expand(text: str) -> str:
    """The definition of a named pipeline, or ``text`` itself."""
    key = text.strip()
    return NAMED_PIPELINES[key][0] if key in NAMED_PIPELINES else text


def _split_top(text: str) -> list[str]:
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _available() -> str:
    return (f"stages: {', '.join(sorted(STAGES))}; named pipelines: {', '.join(sorted(NAMED_PIPELINES))}; "
            "or a model file path ending in .onnx")


def parse_stage(text: str) -> Stage:
    """One stage from ``name`` / ``name(k=v, ...)`` / ``path.onnx``."""
    if not text:
        raise PipelineSpecError("empty stage in pipeline (two '|' in a row, or a '|' at an end?)")
    if text.lower().endswith(".onnx") and "(" not in text:
        return ModelStage(path=text)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise PipelineSpecError(f"cannot parse stage {text!r}: {exc.msg}; write name(key=value, ...)") from None
    if isinstance(node, ast.Name):
        name, args, kwargs = node.id, [], {}
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise PipelineSpecError(
                f"in stage {text!r}: argument values must be literals (numbers, 'strings', True, None)"
            ) from None
        if any(k is None for k in kwargs):
            raise PipelineSpecError(f"in stage {text!r}: **kwargs are not allowed")
    else:
        raise PipelineSpecError(f"cannot parse stage {text!r}; write name or name(key=value, ...)")
    if name in NAMED_PIPELINES and name not in STAGES:  # 'repair' is both: stage and pipeline
        raise PipelineSpecError(f"{name!r} is a named pipeline; use it alone, not as a stage in a chain")
    if name not in STAGES:
        raise PipelineSpecError(f"unknown stage {name!r}. Available {_available()}")
    if args and name != "model":
        raise PipelineSpecError(f"stage {name!r} takes keyword arguments only (name(key=value)), got {text!r}")
    if len(args) > 1:
        raise PipelineSpecError(f"model stage takes one positional argument (the model), got {text!r}")
    allowed = stage_parameters(name)
    factory = STAGES[name]
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    unknown = [k for k in kwargs if k not in allowed]
    if unknown and not accepts_any:
        raise PipelineSpecError(
            f"stage {name!r} has no parameter {', '.join(map(repr, unknown))}; it accepts: "
            f"{', '.join(allowed) or '(none)'}"
        )
    try:
        return factory(*args, **kwargs)
    except PipelineSpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise PipelineSpecError(f"stage {text!r}: {exc}") from None


def parse_pipeline(text: str) -> list[Stage]:
    """Stages from a pipeline string or a named pipeline (see the module docstring).

    ``""`` or ``"none"`` is the empty pipeline (frames are copied through unchanged).
    """
    text = expand(text)
    if text.strip().lower() in ("", "none", "copy"):
        return []
    return [parse_stage(part) for part in _split_top(text)]


# Frame repair (edgerestore/repair, docs/repair.md) registers its stage and the named
# pipeline 'repair' at the end of its module; import it so they are always there (unless
# it is being imported right now, which registers them when it finishes).
if "edgerestore.repair.stage" not in sys.modules:
    importlib.import_module("edgerestore.repair.stage")
