"""Pipeline strings: ``"nlm(sigma=15)|upscale(scale=2)"`` and named pipelines.

Grammar: stages separated by ``|``. Each stage is ``name`` or ``name(key=value, ...)``
with Python literal values (numbers, strings, True/False/None); ``model`` also takes the
model as its one positional argument: ``model("dn-gray", backend="ort-cpu")``. A bare
path ending in ``.onnx`` is a model stage. A whole string that is the name of a named
pipeline (``default``, ``denoise``, ...) expands to its definition. Names are looked up
in :mod:`edgerestore.runtime.catalog`.
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any, Mapping

from edgerestore.runtime.catalog import DEFAULT_PIPELINE, NAMED_PIPELINES, STAGES, stage_parameters
from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages import ModelStage, Stage


def default_pipeline(mode: str = "offline") -> str:
    """The named pipeline a run uses when none is given: ``default``, or ``live`` in live mode."""
    return DEFAULT_PIPELINE.get(mode, "default")


def expand(text: str) -> str:
    """The definition of a named pipeline, or ``text`` itself."""
    key = text.strip()
    return NAMED_PIPELINES.get(key) if key in NAMED_PIPELINES else text


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


def apply_options(factory, kwargs: dict[str, Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``kwargs`` with ``options`` added for the parameters ``factory`` takes by name and
    that ``kwargs`` leaves out or sets to the parameter's default (so ``--backend``
    reaches ``model(...)`` unless the string names another backend)."""
    if not options:
        return kwargs
    params = inspect.signature(factory).parameters
    out = dict(kwargs)
    for key, value in options.items():
        p = params.get(key)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if key not in out or (p.default is not p.empty and out[key] == p.default):
            out[key] = value
    return out


def parse_stage(text: str, options: Mapping[str, Any] | None = None) -> Stage:
    """One stage from ``name`` / ``name(k=v, ...)`` / ``path.onnx``; ``options``: see
    :func:`apply_options`."""
    if not text:
        raise PipelineSpecError("empty stage in pipeline (two '|' in a row, or a '|' at an end?)")
    if text.lower().endswith(".onnx") and "(" not in text:
        return ModelStage(**apply_options(ModelStage, {"path": text}, options))
    unquoted = re.match(r"model\(\s*([^'\"\s=,)][^=,)]*?)\s*[,)]", text)
    if unquoted:
        raise PipelineSpecError(
            f"in stage {text!r}: quote the model, model('{unquoted.group(1)}'), or give a path "
            "ending in .onnx alone as a stage; in a shell, put the whole pipeline in double quotes")
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
    factory = STAGES.get(name)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())
    unknown = [k for k in kwargs if k not in stage_parameters(name)]
    if unknown and not accepts_any:
        raise PipelineSpecError(
            f"stage {name!r} has no parameter {', '.join(map(repr, unknown))}; it accepts: "
            f"{', '.join(stage_parameters(name)) or '(none)'}"
        )
    try:
        return factory(*args, **apply_options(factory, kwargs, options))
    except PipelineSpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise PipelineSpecError(f"stage {text!r}: {exc}") from None


def parse_pipeline(text: str, options: Mapping[str, Any] | None = None) -> list[Stage]:
    """Stages from a pipeline string or a named pipeline (see the module docstring).

    ``""`` or ``"none"`` is the empty pipeline (frames are copied through unchanged).
    ``options``: keyword arguments for every stage whose constructor takes them and whose
    string leaves them out or at their default (``{"backend": "ort-cpu"}``), so options
    from a command line are passed at construction.
    """
    text = expand(text)
    if text.strip().lower() in ("", "none", "copy"):
        return []
    return [parse_stage(part, options) for part in _split_top(text)]
