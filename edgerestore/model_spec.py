"""The model file contract: one ONNX file that describes itself.

A model that edgerestore can run is a single ONNX file whose ``metadata_props`` say
what it does and how to feed it, so the runtime configures pre- and post-processing
from the file alone. The contract is documented for users in ``docs/model-contract.md``;
this module is its single implementation: :func:`write_spec` stamps it into a model,
:func:`read_spec` reads a file and refuses, with a message naming the problem and the
fix, anything that breaks it.

Metadata keys (all values are strings, as ONNX stores them):

==================  ==========================================================
``edgerestore_format``  contract version, currently ``"1"`` (required)
``name``            short model name, e.g. ``"dn-gray-s"`` (required)
``task``            ``denoise`` | ``super_resolution`` | ``repair`` (required)
``scale``           integer output/input size ratio, ``1`` unless SR (required)
``color``           ``gray`` | ``luma`` | ``bgr`` | ``rgb``: what the image input's
                    channels hold; gray/luma have 1 channel, bgr/rgb 3 (required)
``value_range``     ``"lo,hi"`` of image values, e.g. ``"0,1"`` (required)
``inputs``          JSON object: graph input name -> role, roles being ``image``
                    (N x C x H x W), ``noise_level`` (N x 1 x H x W, sigma/255 per
                    pixel at the image's resolution) and ``mask`` (N x 1 x H x W,
                    1 where damaged). Exactly one ``image`` (required)
``noise_level_range`` ``"lo,hi"`` sigma on the 0-255 scale the model was trained for
                    (required when a ``noise_level`` input exists)
``size_multiple``   H and W must be multiples of this; the runtime pads (default 1)
``tile_size``       suggested square tile edge in input pixels, 0 = whole frame
``tile_overlap``    overlap between tiles in input pixels
``profile``         JSON ``{"min": [h, w], "opt": [h, w], "max": [h, w]}`` frame
                    sizes for TensorRT optimisation profiles (optional)
``precision``       ``fp32`` | ``fp16`` | ``int8`` (default ``fp32``)
``description``     one line for ``edgerestore models``
``provenance``      JSON object: training data, recipe, commit, metrics, ...
==================  ==========================================================

Why one module: the contract's keys, their parsing and their checks against the graph
are one description; split, a key's rule and its check would drift apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edgerestore.errors import ModelError

FORMAT_VERSION = "1"
TASKS = ("denoise", "super_resolution", "repair")
COLORS = {"gray": 1, "luma": 1, "bgr": 3, "rgb": 3}
ROLES = ("image", "noise_level", "mask")
PRECISIONS = ("fp32", "fp16", "int8")
MAX_SIZE_MULTIPLE = 256
"""Largest ``size_multiple`` taken: the runtime pads each frame (or tile) up to a multiple
of it, so a huge one turns every frame into a huge one (100000 would pad a 1080p frame
to 100000 x 100000 pixels, 37 GB of float32 per channel)."""
MIN_TILE_SIZE = 8
"""Smallest non-zero ``tile_size`` in metadata: tiles of a few pixels make millions of
model calls per frame (tile_size=3 cuts a 1080p frame into 230 400 tiles)."""
REQUIRED_KEYS = ("edgerestore_format", "name", "task", "scale", "color", "value_range", "inputs")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What a model file says about itself (see the module docstring for each field)."""

    name: str
    task: str
    scale: int = 1
    color: str = "gray"
    value_range: tuple[float, float] = (0.0, 1.0)
    inputs: Mapping[str, str] = field(default_factory=lambda: {"image": "image"})
    output: str = "output"
    noise_level_range: tuple[float, float] | None = None
    size_multiple: int = 1
    tile_size: int = 0
    tile_overlap: int = 0
    profile: Mapping[str, tuple[int, int]] | None = None
    precision: str = "fp32"
    description: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    # Filled by read_spec, not stored in the metadata:
    path: str | None = None
    size_bytes: int | None = None
    fixed_size: tuple[int, int] | None = None
    """``(H, W)`` when the graph fixes the image input's height and width (a model
    exported without dynamic axes): every run then gets exactly that size, tiled and
    padded (:class:`~edgerestore.restorer.ModelRestorer`)."""

    @property
    def channels(self) -> int:
        """Channels of the image input (1 for gray/luma, 3 for bgr/rgb)."""
        return COLORS[self.color]

    def input_for(self, role: str) -> str | None:
        """Graph input name that plays ``role``, or None if the model has none."""
        for name, r in self.inputs.items():
            if r == role:
                return name
        return None

    @property
    def image_input(self) -> str:
        name = self.input_for("image")
        assert name is not None  # guaranteed by validation
        return name

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` dictionary that stores this spec."""
        meta = {
            "edgerestore_format": FORMAT_VERSION,
            "name": self.name,
            "task": self.task,
            "scale": str(int(self.scale)),
            "color": self.color,
            "value_range": _pair_to_str(self.value_range),
            "inputs": json.dumps(dict(self.inputs)),
            "size_multiple": str(int(self.size_multiple)),
            "tile_size": str(int(self.tile_size)),
            "tile_overlap": str(int(self.tile_overlap)),
            "precision": self.precision,
            "description": self.description,
            "provenance": json.dumps(dict(self.provenance), sort_keys=True),
        }
        if self.noise_level_range is not None:
            meta["noise_level_range"] = _pair_to_str(self.noise_level_range)
        if self.profile is not None:
            meta["profile"] = json.dumps({k: list(v) for k, v in self.profile.items()})
        return meta

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (what ``edgerestore models --json`` prints)."""
        d = asdict(self)
        d["inputs"] = dict(self.inputs)
        d["channels"] = self.channels
        d["provenance"] = dict(self.provenance)
        if self.profile is not None:
            d["profile"] = {k: list(v) for k, v in self.profile.items()}
        return d


def _pair_to_str(pair: tuple[float, float]) -> str:
    return ",".join(f"{float(v):g}" for v in pair)


def _parse_pair(key: str, text: str, where: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ModelError(
            f"{where}: metadata '{key}' must be two numbers 'lo,hi', got {text!r}"
        ) from None
    if not lo < hi:
        raise ModelError(f"{where}: metadata '{key}' must have lo < hi, got {text!r}")
    return lo, hi


def _parse_int(key: str, text: str, where: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ModelError(f"{where}: metadata '{key}' must be an integer, got {text!r}") from None
    if value < minimum:
        raise ModelError(f"{where}: metadata '{key}' must be >= {minimum}, got {value}")
    return value


def _parse_json(key: str, text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{where}: metadata '{key}' is not valid JSON ({exc}): "
                         f"{printable(text, MAX_SHOWN_CHARS)!r}") from None
    except RecursionError:
        raise ModelError(f"{where}: metadata '{key}' is JSON nested too deeply to read "
                         f"({len(text)} characters); re-stamp the model with flat metadata") from None


MAX_SHOWN_CHARS = 200
"""How much of a metadata text (description, a bad value) listings and messages show."""


def printable(text: str, limit: int | None = MAX_SHOWN_CHARS) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, line
    breaks, tabs) each become one ``?`` (the printable rest of an escape sequence is
    kept: harmless once its ESC is gone), and text longer than ``limit`` characters is
    cut with ``... (N characters)``. Metadata comes from files a user downloaded: a model
    must not be able to recolour or clear the terminal, or flood it."""
    cleaned = "".join("?" if (ord(ch) < 32 or 127 <= ord(ch) < 160) else ch
                      for ch in (text if limit is None else text[: limit + 1]))
    if limit is not None and len(text) > limit:
        return f"{cleaned[:limit]}... ({len(text)} characters)"
    return cleaned


def spec_from_metadata(meta: Mapping[str, str], *, where: str = "model") -> ModelSpec:
    """Parse and validate ``metadata_props`` into a :class:`ModelSpec`.

    Checks the metadata on its own; :func:`read_spec` also checks it against the graph.
    """
    if "edgerestore_format" not in meta:
        raise ModelError(
            f"{where}: this ONNX file has no edgerestore metadata (key 'edgerestore_format' "
            "is missing), so edgerestore does not know what it does or how to feed it. "
            "Describe it with `edgerestore annotate MODEL.onnx -o OUT.onnx --task ... --color ... "
            "--input NAME` (checks it and writes the metadata), or "
            "edgerestore.model_spec.write_spec() (see docs/model-contract.md)."
        )
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(
            f"{where}: required metadata missing: {', '.join(missing)} "
            "(see docs/model-contract.md for what each key holds)"
        )
    if meta["edgerestore_format"] != FORMAT_VERSION:
        raise ModelError(
            f"{where}: metadata format version {meta['edgerestore_format']!r} is not "
            f"supported by this edgerestore (supports {FORMAT_VERSION!r}); upgrade edgerestore"
        )
    task = meta["task"]
    if task not in TASKS:
        raise ModelError(f"{where}: metadata 'task' is {task!r}; expected one of {', '.join(TASKS)}")
    color = meta["color"]
    if color not in COLORS:
        raise ModelError(
            f"{where}: metadata 'color' is {color!r}; expected one of {', '.join(COLORS)}"
        )
    scale = _parse_int("scale", meta["scale"], where, 1)
    if task != "super_resolution" and scale != 1:
        raise ModelError(f"{where}: a {task} model must have scale 1, metadata says {scale}")
    value_range = _parse_pair("value_range", meta["value_range"], where)

    inputs = _parse_json("inputs", meta["inputs"], where)
    if not isinstance(inputs, dict) or not inputs:
        raise ModelError(f"{where}: metadata 'inputs' must be a JSON object name -> role")
    bad_roles = {n: r for n, r in inputs.items() if r not in ROLES}
    if bad_roles:
        raise ModelError(
            f"{where}: metadata 'inputs' has unknown roles {bad_roles}; roles are {', '.join(ROLES)}"
        )
    for role in ROLES:
        count = sum(1 for r in inputs.values() if r == role)
        if count > 1 or (role == "image" and count != 1):
            raise ModelError(
                f"{where}: metadata 'inputs' must name exactly one 'image' input and at most "
                f"one of each other role; got {inputs}"
            )

    noise_level_range = None
    if "noise_level" in inputs.values():
        if "noise_level_range" not in meta:
            raise ModelError(
                f"{where}: the model has a noise_level input but no 'noise_level_range' "
                "metadata (the sigma range, 0-255 scale, it was trained for)"
            )
        noise_level_range = _parse_pair("noise_level_range", meta["noise_level_range"], where)

    profile = None
    if meta.get("profile"):
        raw = _parse_json("profile", meta["profile"], where)
        try:
            profile = {k: (int(raw[k][0]), int(raw[k][1])) for k in ("min", "opt", "max")}
        except (KeyError, TypeError, IndexError, ValueError):
            raise ModelError(
                f"{where}: metadata 'profile' must be {{\"min\": [h, w], \"opt\": [h, w], "
                f"\"max\": [h, w]}}, got {meta['profile']!r}"
            ) from None

    precision = meta.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ModelError(
            f"{where}: metadata 'precision' is {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    provenance = _parse_json("provenance", meta["provenance"], where) if meta.get("provenance") else {}
    if not isinstance(provenance, dict):
        raise ModelError(f"{where}: metadata 'provenance' must be a JSON object")

    size_multiple = _parse_int("size_multiple", meta.get("size_multiple", "1"), where, 1)
    if size_multiple > MAX_SIZE_MULTIPLE:
        raise ModelError(
            f"{where}: metadata 'size_multiple' is {size_multiple}; at most {MAX_SIZE_MULTIPLE} "
            f"is taken (every frame is padded to a multiple of it: a 1920x1080 frame would "
            f"become {-(-1920 // size_multiple) * size_multiple}x{-(-1080 // size_multiple) * size_multiple}). "
            "Re-stamp the model with the multiple its layers really need (e.g. 2, 4 or 8)")
    tile_size = _parse_int("tile_size", meta.get("tile_size", "0"), where, 0)
    tile_overlap = _parse_int("tile_overlap", meta.get("tile_overlap", "0"), where, 0)
    if tile_size and tile_size < MIN_TILE_SIZE:
        raise ModelError(
            f"{where}: metadata 'tile_size' is {tile_size}; give 0 (whole frames) or at least "
            f"{MIN_TILE_SIZE} pixels (tiles of {tile_size} would mean "
            f"{-(-1920 // tile_size) * -(-1080 // tile_size)} model calls per 1080p frame)")
    if tile_size and 2 * tile_overlap >= tile_size:
        raise ModelError(
            f"{where}: metadata 'tile_overlap' ({tile_overlap}) must be less than half of "
            f"'tile_size' ({tile_size})")
    return ModelSpec(
        name=meta["name"],
        task=task,
        scale=scale,
        color=color,
        value_range=value_range,
        inputs=inputs,
        noise_level_range=noise_level_range,
        size_multiple=size_multiple,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        profile=profile,
        precision=precision,
        description=meta.get("description", ""),
        provenance=provenance,
    )


def load_onnx(path: Path):
    """An ONNX file as an ``onnx.ModelProto``, checked by ``onnx.checker``; ModelError
    naming the problem (missing, unreadable, not ONNX, invalid) otherwise."""
    from edgerestore._lazy import require

    onnx = require("onnx", purpose="reading a model file")
    where = str(path)
    if not path.exists():
        raise ModelError(f"{where}: model file not found")
    if not path.is_file():
        raise ModelError(f"{where}: not a file")
    try:
        model = onnx.load(str(path))
    except PermissionError:
        raise ModelError(f"{where}: model file is not readable (permission denied)") from None
    except Exception as exc:  # onnx raises DecodeError and others for garbage bytes
        raise ModelError(
            f"{where}: not an ONNX model (could not parse it: {type(exc).__name__}: {exc}). "
            "Is the file complete? Re-download or re-export it."
        ) from None
    if len(model.graph.node) == 0 and len(model.graph.output) == 0:
        # protobuf happily parses many non-ONNX byte strings into an empty message
        raise ModelError(
            f"{where}: not an ONNX model (the file parses to an empty graph). "
            "Is the file complete? Re-download or re-export it."
        )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelError(f"{where}: the ONNX model is invalid (onnx.checker: {exc})") from None
    return model


def graph_inputs(model) -> dict[str, list]:
    """Graph inputs that are not initializers: name -> dims (int, str for symbolic, None)."""
    initializers = {init.name for init in model.graph.initializer}
    result = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = []
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        result[value.name] = dims
    return result


def check_against_graph(spec: ModelSpec, model, *, where: str = "model") -> str:
    """Check that the graph's inputs and output agree with ``spec``; return the output name."""
    found = graph_inputs(model)
    if set(found) != set(spec.inputs):
        raise ModelError(
            f"{where}: metadata 'inputs' names {sorted(spec.inputs)} but the graph's inputs are "
            f"{sorted(found)}; they must match exactly"
        )
    for name, role in spec.inputs.items():
        dims = found[name]
        if len(dims) != 4:
            raise ModelError(
                f"{where}: input '{name}' ({role}) must be 4-D N x C x H x W, the graph gives {dims}"
            )
        want_c = spec.channels if role == "image" else 1
        if isinstance(dims[1], int) and dims[1] != want_c:
            raise ModelError(
                f"{where}: input '{name}' ({role}) has {dims[1]} channels in the graph but the "
                f"metadata (color={spec.color!r}) implies {want_c}"
            )
    if len(model.graph.output) != 1:
        raise ModelError(
            f"{where}: the graph must have exactly one output, it has {len(model.graph.output)}"
        )
    return model.graph.output[0].name


def read_spec(path: str | os.PathLike) -> ModelSpec:
    """Read a model file, validate it against the contract and return its spec.

    Raises :class:`ModelError` when the file is missing or unreadable, is not ONNX, fails
    ``onnx.checker``, lacks the metadata, or has inputs that differ from the metadata.
    """
    p = Path(path)
    model = load_onnx(p)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    spec = spec_from_metadata(meta, where=str(p))
    output = check_against_graph(spec, model, where=str(p))
    from dataclasses import replace

    return replace(spec, output=output, path=str(p), size_bytes=p.stat().st_size,
                   fixed_size=fixed_input_size(model, spec.image_input, where=str(p)))


def fixed_input_size(model, image_input: str, *, where: str = "model") -> tuple[int, int] | None:
    """``(H, W)`` of ``image_input`` when the graph fixes both, None when both are dynamic;
    ModelError when only one is fixed (no tiling can feed that)."""
    dims = graph_inputs(model)[image_input]
    fixed_h, fixed_w = (isinstance(d, int) and d > 0 for d in dims[2:4])
    if fixed_h != fixed_w:
        raise ModelError(f"{where}: input '{image_input}' fixes one of height and width "
                         f"({dims}); export it with both dynamic (or both fixed)")
    return (dims[2], dims[3]) if fixed_h else None


def write_spec(model, spec: ModelSpec):
    """Stamp ``spec`` into the ``metadata_props`` of an ``onnx.ModelProto`` (in place).

    Validates first, so a model that breaks the contract is never written. Returns the
    model for chaining.
    """
    meta = spec.to_metadata()
    spec_from_metadata(meta, where=spec.name)  # same checks as reading
    check_against_graph(spec, model, where=spec.name)
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    for prop in keep:
        model.metadata_props.add(key=prop.key, value=prop.value)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    return model
