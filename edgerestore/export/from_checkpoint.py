"""A training checkpoint -> an ONNX file with metadata and provenance (``edgerestore export``).

:func:`export_checkpoint` builds the checkpoint's architecture, loads its weights (the
EMA weights by default), gathers the provenance (training data, recipe, steps, held-out
validation, commits) and hands the model to
:func:`edgerestore.export.torch_to_onnx.export_model` (checker, parity, metadata,
atomic write).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Mapping

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.export.parity import DEFAULT_ATOL, SR_PARITY_SIZES
from edgerestore.export.torch_to_onnx import DEFAULT_OPSET, export_model
from edgerestore.models import load_arch
from edgerestore.models.checkpoint import git_commit, load_checkpoint


def parse_target(target: str) -> tuple[str, Path]:
    """``"edgerestore.models.ffdnet:path/last.pt"`` -> (arch module name, checkpoint path)."""
    arch, sep, ckpt = target.partition(":")
    if not sep or not arch or not ckpt:
        raise InputError(
            f"export target {target!r} must look like edgerestore.models.<arch>:<checkpoint>, "
            "e.g. edgerestore.models.ffdnet:training/checkpoints/dn_gray/best.pt"
        )
    return arch, Path(ckpt)


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
        real = recipe.get("degradation") == "real"
        # a "real" run picks best.pt by the mean gain over the clean and the degraded held-out sets
        provenance["best_validation_gain_mean_heldout" + ("_clean_and_degraded" if real else "")] = ckpt.get("best_gain")
        provenance["heldout_bicubic"] = ckpt.get("heldout_bicubic")
        if real:
            provenance["heldout_bicubic_degraded"] = ckpt.get("heldout_bicubic_real")
        provenance["lr_generation"] = ckpt.get("lr_generation")
        if ckpt.get("init_from"):
            provenance["init_from"] = ckpt["init_from"]
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
