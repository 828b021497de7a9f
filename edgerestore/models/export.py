"""PyTorch -> ONNX export with the model metadata and a parity check.

:func:`export_checkpoint` is what ``edgerestore export edgerestore.models.<arch>:<ckpt>``
runs: build the architecture, load the checkpoint's weights (the EMA weights by
default), export to ONNX (opset 17, dynamic batch, height and width), run
``onnx.checker``, stamp the metadata with :func:`edgerestore.model_spec.write_spec`
(provenance included), compare ONNX Runtime with PyTorch on random inputs of several
sizes, and only then write the file, atomically (temp file + ``os.replace``). A model
whose outputs differ by more than ``atol`` is never written.
"""

from __future__ import annotations

import io
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError, ModelError

DEFAULT_OPSET = 17
# Max |ORT - torch| on outputs in [0, 1]; fp32 kernels of both agree to ~1e-6 on these
# nets, 1e-4 (0.03 of a gray level) leaves room for other CPUs' kernels.
DEFAULT_ATOL = 1e-4
# (batch, height, width): several sizes, including non-square and batch > 1.
DEFAULT_PARITY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 64, 64), (2, 48, 80), (1, 126, 94))
# Super-resolution inputs are low-resolution: odd sizes too (no size multiple).
SR_PARITY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 32, 32), (2, 27, 41), (1, 63, 47))


def parse_target(target: str) -> tuple[str, Path]:
    """``"edgerestore.models.ffdnet:path/last.pt"`` -> (arch module name, checkpoint path)."""
    arch, sep, ckpt = target.partition(":")
    if not sep or not arch or not ckpt:
        raise InputError(
            f"export target {target!r} must look like edgerestore.models.<arch>:<checkpoint>, "
            "e.g. edgerestore.models.ffdnet:training/checkpoints/dn_gray/best.pt"
        )
    return arch, Path(ckpt)


def to_onnx_bytes(model, arch, config: Mapping[str, Any], *, opset: int = DEFAULT_OPSET) -> bytes:
    """The ONNX bytes of ``model`` (eval mode) with dynamic N, H and W."""
    torch = require("torch", purpose="exporting a model to ONNX")
    model.eval()
    inputs = arch.example_inputs(config, 64, 64)
    names = list(arch.INPUT_NAMES)
    dyn = {n: {0: "N", 2: "H", 3: "W"} for n in [*names, arch.OUTPUT_NAME]}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, inputs, buf, input_names=names, output_names=[arch.OUTPUT_NAME],
                          dynamic_axes=dyn, opset_version=opset, do_constant_folding=True,
                          dynamo=False)
    return buf.getvalue()


def parity_check(onnx_bytes: bytes, model, arch, config: Mapping[str, Any], *,
                 atol: float = DEFAULT_ATOL,
                 sizes: Sequence[tuple[int, int, int]] = DEFAULT_PARITY_SIZES) -> dict[str, float]:
    """Run ONNX Runtime (CPU) and PyTorch on the same random inputs; raise if they differ.

    Returns ``{"NxHxW": max abs difference}``; raises :class:`ModelError` when any
    difference exceeds ``atol``.
    """
    torch = require("torch", purpose="the export parity check")
    ort = require("onnxruntime", purpose="the export parity check")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    model.eval()
    diffs: dict[str, float] = {}
    for i, (n, h, w) in enumerate(sizes):
        inputs = arch.example_inputs(config, h, w, batch=n, seed=1000 + i)
        with torch.no_grad():
            ref = model(*inputs).numpy()
        feed = {name: t.numpy() for name, t in zip(arch.INPUT_NAMES, inputs)}
        got = sess.run(None, feed)[0]
        if got.shape != ref.shape:
            raise ModelError(f"parity check: ONNX output shape {got.shape} != PyTorch {ref.shape} "
                             f"for input {n}x{h}x{w}")
        diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        diffs[f"{n}x{h}x{w}"] = diff
        if not diff <= atol:
            raise ModelError(
                f"parity check failed: ONNX Runtime and PyTorch outputs differ by {diff:.3g} "
                f"(> atol {atol:g}) on a {n}x{h}x{w} input; the file was not written"
            )
    return diffs


def write_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def export_model(model, arch, config: Mapping[str, Any], spec, output: str | os.PathLike, *,
                 opset: int = DEFAULT_OPSET, atol: float = DEFAULT_ATOL,
                 sizes: Sequence[tuple[int, int, int]] = DEFAULT_PARITY_SIZES):
    """Export ``model`` with ``spec`` to ``output``; return the spec as written.

    The parity result (sizes, max differences, atol) is added to the provenance.
    """
    onnx = require("onnx", purpose="exporting a model to ONNX")
    raw = to_onnx_bytes(model, arch, config, opset=opset)
    proto = onnx.load_from_string(raw)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelError(f"the exported graph fails onnx.checker: {exc}") from None
    diffs = parity_check(raw, model, arch, config, atol=atol, sizes=sizes)
    provenance = dict(spec.provenance)
    provenance["parity"] = {"backend": "onnxruntime-cpu", "atol": atol, "max_abs_diff": diffs}
    provenance["opset"] = opset
    spec = replace(spec, provenance=provenance)
    from edgerestore.model_spec import write_spec

    write_spec(proto, spec)
    onnx.checker.check_model(proto)
    write_atomic(proto.SerializeToString(), output)
    return spec


def export_checkpoint(target: str, output: str | os.PathLike, *, name: str | None = None,
                      weights: str = "ema", description: str = "", opset: int = DEFAULT_OPSET,
                      atol: float = DEFAULT_ATOL, extra_provenance: Mapping[str, Any] | None = None,
                      scale: int | None = None):
    """``edgerestore export``: a training checkpoint -> an ONNX file with metadata.

    ``name`` defaults to ``dn-gray`` for a denoiser and ``sr-x<scale>`` for a
    super-resolution model; ``scale`` picks the head of a multi-scale SR checkpoint
    (required when it has several) and is refused for a denoiser.
    """
    torch = require("torch", purpose="exporting a model to ONNX")
    from edgerestore.models import load_arch
    from edgerestore.training.common import git_commit, load_checkpoint

    arch_name, ckpt_path = parse_target(target)
    arch = load_arch(arch_name)
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("arch") != arch.ARCH:
        raise InputError(f"{ckpt_path} holds a {ckpt.get('arch')!r} model, not {arch.ARCH!r}; "
                         f"use {ckpt.get('arch')}:{ckpt_path}")
    if weights not in ("ema", "raw"):
        raise InputError(f"weights must be 'ema' or 'raw', got {weights!r}")
    if weights == "raw" and "model" not in ckpt:
        raise InputError(f"{ckpt_path} holds only EMA weights (a best.pt); use weights='ema'")
    config = dict(ckpt["config"])
    state = ckpt["ema"] if weights == "ema" else ckpt["model"]
    is_sr = getattr(arch, "TASK", "denoise") == "super_resolution"
    if is_sr:
        scale = arch.check_scale(config, scale)
        model = arch.build(**config, scale=scale, clip_output=True)
        model.load_state_dict(arch.state_for_scale(state, scale))
        params = arch.count_params(config, scale)
        mflops = arch.mflops_per_megapixel(config, scale)
    else:
        if scale not in (None, 1):
            raise InputError(f"{ckpt_path} holds a denoiser (scale 1); --scale {scale} applies to "
                             "super-resolution checkpoints only")
        model = arch.build(**config, clip_output=True)
        model.load_state_dict(state)
        params = arch.count_params(config)
        mflops = arch.mflops_per_megapixel(config)
    recipe = dict(ckpt.get("recipe", {}))
    provenance: dict[str, Any] = {
        "architecture": arch.ARCH,
        "config": config,
        "params": params,
        "mflops_per_megapixel": round(mflops, 1),
        "training_data": ckpt.get("training_data"),
        "training_files": ckpt.get("training_files"),
        "heldout_files": ckpt.get("heldout_files"),
        "recipe": recipe,
        "steps": int(ckpt["step"]),
        "patches_seen": ckpt.get("patches_seen"),
        "train_seconds": round(float(ckpt.get("train_seconds", 0.0)), 1),
        "weights": weights,
        "checkpoint": ckpt_path.name,
        "training_commit": ckpt.get("commit"),
        "export_commit": git_commit(),
        "validation_psnr_heldout": ckpt.get("last_val"),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "platform": platform.machine(),
    }
    if is_sr:
        provenance["scale"] = scale
        provenance["best_validation_gain_mean_heldout"] = ckpt.get("best_gain")
        provenance["heldout_bicubic"] = ckpt.get("heldout_bicubic")
        provenance["lr_generation"] = ckpt.get("lr_generation")
    else:
        provenance["best_validation_psnr25_heldout"] = ckpt.get("best_psnr25")
    provenance.update(extra_provenance or {})
    if is_sr:
        spec = arch.model_spec(config, scale=scale, name=name or f"sr-x{scale}", provenance=provenance,
                               description=description)
        return export_model(model, arch, config, spec, output, opset=opset, atol=atol,
                            sizes=SR_PARITY_SIZES)
    lo, hi = float(recipe.get("sigma_min", 0.0)), float(recipe.get("sigma_max", 75.0))
    spec = arch.model_spec(config, name=name or "dn-gray", provenance=provenance, description=description,
                           noise_level_range=(lo, hi))
    return export_model(model, arch, config, spec, output, opset=opset, atol=atol)
