"""Bring your own model: describe a plain ONNX file (exported by the user, e.g. from
PyTorch) with edgerestore's metadata, after checking that it follows the contract.

:func:`annotate` is what ``edgerestore annotate plain.onnx -o model.onnx --task denoise
--color gray --input image [--noise-map sigma] [--scale N] ...`` runs:

1. read the file (``onnx.checker``) and match the graph's inputs to roles: the image
   input (``input``; the only input when there is one), a noise-level map
   (``noise_map``), a damage mask (``mask``); every graph input needs a role;
2. check the image input: 4-D ``N x C x H x W``, channels as ``color`` says; height and
   width dynamic, or both fixed (then every run is tiled to exactly that size);
3. probe the model once with ONNX Runtime on the CPU at an awkward size (61 x 47) to
   find the ``size_multiple`` it needs (when not given) and its real scale (refused
   when it differs from ``scale``);
4. stamp the metadata (:func:`edgerestore.model_spec.write_spec`), run the stamped model
   through :class:`~edgerestore.restorer.ModelRestorer` on a test frame (a smooth
   synthetic image: with Gaussian noise of sigma 25 for a denoiser, shrunk by the scale
   for super-resolution) and report the PSNR against the noisy frame or bicubic, which
   shows at once a wrong ``value_range`` or colour order; then write the file
   atomically. Nothing is written when a step fails.

Nothing here imports torch; onnx and onnxruntime are imported on first use.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgerestore.errors import InputError, ModelError
from edgerestore.model_spec import (COLORS, MAX_SIZE_MULTIPLE, TASKS, ModelSpec, fixed_input_size,
                                    graph_inputs, load_onnx, write_spec)

log = logging.getLogger(__name__)

PROBE_SIZE = (61, 47)
"""``(H, W)`` of the probe frame: odd and prime, so a model that needs a multiple shows it."""
TEST_FRAME_SIZE = (96, 128)
TEST_SIGMA = 25.0
DEFAULT_NOISE_LEVEL_RANGE = (0.0, 75.0)


@dataclass
class AnnotateReport:
    """What :func:`annotate` found and wrote."""

    spec: ModelSpec
    output: str
    fixed_size: tuple[int, int] | None
    size_multiple_detected: bool
    test_frame: tuple[int, int]
    test_output_shape: tuple[int, ...]
    test_output_range: tuple[float, float]
    seconds: float
    psnr_before: float | None = None
    psnr_after: float | None = None
    notes: list[str] = field(default_factory=list)

    def baseline_name(self) -> str:
        """What ``psnr_before`` measures: the noisy frame, or bicubic upscaling."""
        return "bicubic" if self.spec.task == "super_resolution" else "the noisy frame"

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "spec"}
        d["spec"] = self.spec.to_dict()
        return d

    def lines(self) -> list[str]:
        """The report for a terminal, one finding per line."""
        s = self.spec
        roles = ", ".join(f"{name} ({role})" for name, role in s.inputs.items())
        out = [f"{self.output}: {s.task} model {s.name!r}, color {s.color}, scale {s.scale}",
               f"  inputs      {roles}; output {s.output}",
               "  input size  " + (f"fixed {self.fixed_size[0]}x{self.fixed_size[1]}: frames are "
                                   f"tiled to it (overlap {s.tile_overlap})" if self.fixed_size
                                   else "dynamic height and width"),
               f"  size_multiple {s.size_multiple}"
               + (" (found by the probe)" if self.size_multiple_detected else " (given)"),
               f"  test frame  {self.test_frame[1]}x{self.test_frame[0]} -> "
               f"{self.test_output_shape[1]}x{self.test_output_shape[0]} in {self.seconds:.2f} s, "
               f"output values [{self.test_output_range[0]:.3g}, {self.test_output_range[1]:.3g}]"]
        if self.psnr_before is not None:
            out.append(f"  quality     {self.baseline_name()} {self.psnr_before:.2f} dB -> model "
                       f"{self.psnr_after:.2f} dB (PSNR on a synthetic frame"
                       + (f", noise sigma {TEST_SIGMA:g})" if self.spec.task == "denoise" else ")"))
        out += [f"  note: {n}" for n in self.notes]
        return out


def _roles(found: dict[str, list], image: str | None, noise_map: str | None,
           mask: str | None, where: str) -> dict[str, str]:
    names = list(found)
    if image is None:
        if len(names) != 1:
            raise InputError(f"{where}: the graph has inputs {names}; say which one is the image "
                             "with --input NAME")
        image = names[0]
    roles = {image: "image"}
    for name, role, option in ((noise_map, "noise_level", "--noise-map"), (mask, "mask", "--mask")):
        if name is None:
            continue
        if name in roles:
            raise InputError(f"{where}: input {name!r} cannot be both {roles[name]} and {role}")
        roles[name] = role
    unknown = [n for n in roles if n not in found]
    if unknown:
        raise InputError(f"{where}: the graph has no input named {', '.join(map(repr, unknown))}; "
                         f"its inputs are {names}")
    unassigned = [n for n in names if n not in roles]
    if unassigned:
        raise InputError(
            f"{where}: graph input(s) {unassigned} have no role; name the noise-level map with "
            "--noise-map NAME (N x 1 x H x W, sigma/255 per pixel) or the damage mask with --mask NAME")
    for name, role in roles.items():
        dims = found[name]
        if len(dims) != 4:
            raise ModelError(f"{where}: input {name!r} ({role}) must be 4-D N x C x H x W; the graph "
                             f"gives {dims}")
    return roles


def _probe(session, spec: ModelSpec, size: tuple[int, int]) -> np.ndarray | None:
    """The raw output for a mid-grey frame of ``size``, or None when the model refuses it."""
    h, w = size
    feed = {}
    for name, role in spec.inputs.items():
        c = spec.channels if role == "image" else 1
        lo, hi = spec.value_range
        value = (lo + hi) / 2 if role == "image" else (TEST_SIGMA / 255 if role == "noise_level" else 0.0)
        feed[name] = np.full((1, c, h, w), value, np.float32)
    try:
        return session.run(None, feed)[0]
    except Exception as exc:  # ORT's own exception types
        log.debug("probe at %dx%d failed: %s", w, h, exc)
        return None


def _integer_scale(out: np.ndarray | None, size: tuple[int, int]) -> int | None:
    """The output/input size ratio of a probe's output when it is one integer for both
    axes, else None (a failed run, another rank, a non-integer or uneven ratio)."""
    if out is None or out.ndim != 4:
        return None
    (oh, ow), (h, w) = out.shape[2:], size
    if oh % h or ow % w or oh // h != ow // w or oh < h:
        return None
    return oh // h


def _find_size_multiple(session, spec: ModelSpec, where: str) -> tuple[int, int]:
    """``(size_multiple, measured scale)``: the smallest power of two for which the
    probe frame padded up to a multiple runs and gives an integer scale."""
    ph, pw = PROBE_SIZE
    m = 1
    while m <= MAX_SIZE_MULTIPLE:
        h, w = -(-ph // m) * m, -(-pw // m) * m
        scale = _integer_scale(_probe(session, spec, (h, w)), (h, w))
        if scale is not None:
            return m, scale
        m *= 2
    raise ModelError(
        f"{where}: ONNX Runtime could not run the model on a {pw}x{ph} frame padded to any multiple "
        f"up to {MAX_SIZE_MULTIPLE} with the roles given; check --input/--noise-map/--color "
        "(run with -vv for ONNX Runtime's messages)")


def _test_frame(channels: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth synthetic frame in [0.1, 0.9] (gradients and a bright square), gray or BGR."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = 0.5 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    img[h // 4:h // 2, w // 4:w // 2] = 0.85
    if channels == 3:
        img = np.dstack([img, img[::-1], 1 - img])
    return img.astype(np.float32)


def annotate(source: str | os.PathLike, output: str | os.PathLike, *, task: str, color: str,
             image_input: str | None = None, noise_map: str | None = None, mask: str | None = None,
             scale: int | None = None, name: str | None = None, description: str = "",
             value_range: tuple[float, float] = (0.0, 1.0),
             noise_level_range: tuple[float, float] | None = None,
             size_multiple: int | None = None, tile_size: int = 0, tile_overlap: int | None = None,
             provenance: dict[str, Any] | None = None) -> AnnotateReport:
    """Check the plain ONNX model at ``source`` against the contract, write it with the
    metadata to ``output`` (atomically; ``source`` is never changed unless it is
    ``output``) and test it once. See the module docstring for the steps.

    ``task``/``color``: as in the metadata (:data:`~edgerestore.model_spec.TASKS`,
    :data:`~edgerestore.model_spec.COLORS`). ``image_input``/``noise_map``/``mask``: graph
    input names. ``scale``: None takes the probe's measurement (1 for other tasks).
    ``size_multiple`` None: found by the probe. ``tile_overlap`` None: 16 pixels when the
    input size is fixed (it must stay below half the fixed size), else 0.
    ``noise_level_range``: sigma range (0-255 scale) the model was trained for; with a
    noise map and None, 0-75 is assumed and the report says so.

    Raises InputError for arguments that do not fit the graph, ModelError for a model
    that breaks the contract; nothing is written then.
    """
    from edgerestore._lazy import require

    src, dst = Path(source), Path(output)
    where = str(src)
    if task not in TASKS:
        raise InputError(f"task {task!r}; expected one of {', '.join(TASKS)}")
    if color not in COLORS:
        raise InputError(f"color {color!r}; expected one of {', '.join(COLORS)}")
    model = load_onnx(src)
    notes = []
    if any(p.key == "edgerestore_format" for p in model.metadata_props):
        notes.append("the file already had edgerestore metadata; it is replaced")
    found = graph_inputs(model)
    roles = _roles(found, image_input, noise_map, mask, where)
    image = next(n for n, r in roles.items() if r == "image")
    channels = found[image][1]
    if isinstance(channels, int) and channels != COLORS[color]:
        raise ModelError(f"{where}: input {image!r} has {channels} channels; --color {color} means "
                         f"{COLORS[color]} (gray/luma 1, bgr/rgb 3)")
    if len(model.graph.output) != 1:
        raise ModelError(f"{where}: the graph must have exactly one output, it has "
                         f"{len(model.graph.output)}")
    fixed = fixed_input_size(model, image, where=where)
    if "noise_level" in roles.values() and noise_level_range is None:
        noise_level_range = DEFAULT_NOISE_LEVEL_RANGE
        notes.append(f"noise-level range {noise_level_range[0]:g}-{noise_level_range[1]:g} assumed "
                     "(sigma, 0-255 scale); give the range it was trained for with --noise-level-range")
    overlap = (16 if fixed else 0) if tile_overlap is None else int(tile_overlap)
    if fixed and 2 * overlap >= min(fixed):
        overlap = max(0, (min(fixed) - 1) // 4)
        notes.append(f"tile overlap cut to {overlap} to fit the fixed {fixed[0]}x{fixed[1]} input")
    spec = ModelSpec(
        name=name or dst.stem, task=task, scale=1, color=color, value_range=tuple(value_range),
        inputs=roles, noise_level_range=noise_level_range,
        size_multiple=1 if size_multiple is None else int(size_multiple),
        tile_size=int(tile_size), tile_overlap=overlap, description=description,
        provenance={"annotated_from": src.name, **(provenance or {})})

    ort = require("onnxruntime", purpose="checking the model")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{where}: ONNX Runtime cannot load the model: {type(exc).__name__}: {exc}") from None
    if fixed:
        measured = _integer_scale(_probe(session, spec, fixed), fixed)
        if measured is None:
            raise ModelError(f"{where}: the model did not run on its own fixed {fixed[1]}x{fixed[0]} input "
                             "with the roles given; check --input/--noise-map/--color")
        multiple, detected = spec.size_multiple, False
    else:
        multiple, measured = _find_size_multiple(session, spec, where)
        detected = size_multiple is None
        if size_multiple is not None and multiple > size_multiple:
            raise ModelError(f"{where}: the model needs height and width multiples of {multiple}; "
                             f"--size-multiple {size_multiple} is too small (leave it out to detect it)")
        multiple = multiple if size_multiple is None else int(size_multiple)
    if task != "super_resolution" and measured != 1:
        raise ModelError(f"{where}: the output is {measured}x the input size; a {task} model keeps the "
                         "size (use --task super_resolution)")
    if scale is not None and scale != measured:
        raise ModelError(f"{where}: --scale {scale}, but the model's output is {measured}x its input")
    if task == "super_resolution" and measured < 2:
        raise ModelError(f"{where}: a super-resolution model must enlarge; this one keeps the size")
    spec = replace(spec, scale=measured, size_multiple=multiple)
    write_spec(model, spec)  # validates the whole spec against the graph first
    data = model.SerializeToString()

    import tempfile

    from edgerestore.imageio import write_bytes_atomic

    with tempfile.TemporaryDirectory(prefix="edgerestore-annotate-") as tmp:
        trial = Path(tmp) / "model.onnx"  # tested before anything is written at ``output``
        trial.write_bytes(data)
        report = _test_run(trial, spec, fixed, detected, notes)
    write_bytes_atomic(dst, data)
    report.output = str(dst)
    return report


def _test_run(path: Path, spec: ModelSpec, fixed, detected: bool, notes: list[str]) -> AnnotateReport:
    """Run the model at ``path`` through ModelRestorer on the test frame; the report. A
    denoiser gets the frame with Gaussian noise, a super-resolution model the frame
    shrunk by its scale (compared with bicubic), a repair model the frame itself."""
    import cv2

    from edgerestore.metrics import psnr
    from edgerestore.restorer import ModelRestorer

    clean = _test_frame(spec.channels if spec.color in ("bgr", "rgb") else 1, TEST_FRAME_SIZE)
    frame, baseline = clean, None
    if spec.task == "denoise":
        rng = np.random.default_rng(0)
        frame = (clean + rng.normal(0, TEST_SIGMA / 255, clean.shape)).astype(np.float32)
        baseline = np.clip(frame, 0, 1)
    elif spec.task == "super_resolution":
        h, w = (d // spec.scale for d in clean.shape[:2])
        clean = np.ascontiguousarray(clean[:h * spec.scale, :w * spec.scale])
        frame = cv2.resize(clean, (w, h), interpolation=cv2.INTER_AREA)
        baseline = np.clip(cv2.resize(frame, clean.shape[1::-1], interpolation=cv2.INTER_CUBIC), 0, 1)
    kwargs = {"sigma": TEST_SIGMA} if spec.input_for("noise_level") else {}
    if spec.input_for("mask"):
        kwargs["mask"] = np.zeros(frame.shape[:2], bool)
    with ModelRestorer.open(path, backend="ort-cpu") as restorer:
        t0 = time.perf_counter()
        result = restorer(frame, **kwargs)
        seconds = time.perf_counter() - t0
    report = AnnotateReport(spec=spec, output="", fixed_size=fixed, size_multiple_detected=detected,
                            test_frame=frame.shape[:2], test_output_shape=result.shape,
                            test_output_range=(float(result.min()), float(result.max())),
                            seconds=seconds, notes=notes)
    if baseline is not None:
        report.psnr_before, report.psnr_after = psnr(clean, baseline), psnr(clean, result)
        if report.psnr_after < report.psnr_before - 1.0:
            notes.append(f"the model's output is worse than {report.baseline_name()} on the test frame: "
                         "check --value-range (0,255 for a model trained on 8-bit values), --color "
                         "(bgr or rgb?) and, with a noise map, its convention (sigma/255 per pixel)")
    if float(result.max() - result.min()) < 1e-6:
        notes.append("the model's output is constant on the test frame: is it the right model?")
    return report


__all__ = ["annotate", "AnnotateReport"]
