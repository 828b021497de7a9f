"""``edgerestore train qat``: fine-tune a trained denoiser with INT8 simulated, export it.

One run serves one quantization target (``cpu`` or ``tensorrt``: their Q/DQ placement
and ranges differ, see :mod:`edgerestore.calibration.quantize`). Steps:

1. the checkpoint's EMA weights are exported to ONNX and quantized by ONNX Runtime's
   quantizer (entropy ranges) on noisy crops of the training images: the INT8 model
   says what to simulate (:func:`edgerestore.training.qat.plan_from_qdq`);
2. the torch model is fine-tuned with that fake quantization on patches with the noise
   the runtime feeds (8-bit clipped and rounded, true noise-level map), time-boxed and
   resumable like the other recipes (``qat.pt`` in the run folder, ``log.jsonl``);
3. :func:`export_qat` writes the fine-tuned float model with the learned ranges in its
   provenance (``qat``) and makes the INT8 model with ``calibrate --method qat``, behind
   the same accuracy gate as any calibration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.metrics import psnr
from edgerestore.models import load_arch
from edgerestore.models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from edgerestore.training import data as D
from edgerestore.training.loop import JsonlLog, ThreadTuner, run_loop
from edgerestore.training.qat import ActivationPoint, FakeQuantized, QatPlan, plan_from_qdq
from edgerestore.training.state import LoopState

log = logging.getLogger("edgerestore.training")

QAT_VAL_SIGMAS = (15.0, 25.0, 50.0)
CALIBRATION_CROPS = 16
CALIBRATION_CROP = 96
# the FP32 model's squared error on a patch never counts as below this (0-1 scale: 1e-5 is
# an error of 0.8 levels of 255), so a patch the teacher restores perfectly (flat, sigma 0)
# cannot take over the loss
TEACHER_ERROR_FLOOR = 1e-5


@dataclass(frozen=True, kw_only=True)
class QatRecipe:
    """``target``: ``cpu`` or ``tensorrt``; ``lr``: Adam's rate for the weights (small:
    the model is trained already); ``scale_lr``: for the log step sizes; ``patch``,
    ``batch``: training patches; ``sigma_min``/``sigma_max``: noise levels drawn (0-255);
    ``val_every``/``log_every``: steps; ``seed``. ``loss``: ``teacher`` (default: match the
    FP32 model's output on the same input, knowledge distillation: the target has no
    noise of its own, so small steps keep the trained model's quality), each patch's
    squared error divided by the FP32 model's own squared error on it, so the loss is
    the sum of the patches' PSNR drops to first order (drop = 10 log10(1 + MSE(INT8 -
    FP32) / MSE(FP32 - clean)), docs/calibration.md) and flat, low-noise patches, where
    INT8 loses most, weigh as much as the rest; or ``clean`` (match the clean patch, as
    training did). ``chroma_share``: the share of patches made chrominance-like
    (:func:`~edgerestore.training.data.chroma_like`: low contrast around mid-gray), the
    planes a gray model gets from colour footage, where FP32 is so good that INT8's
    deviation costs the most dB (docs/calibration.md)."""

    target: str = "cpu"
    lr: float = 1e-5
    scale_lr: float = 1e-3
    patch: int = 64
    batch: int = 16
    sigma_min: float = 0.0
    sigma_max: float = 75.0
    val_every: int = 200
    log_every: int = 20
    seed: int = 20261207
    holdout_every: int = 50
    loss: str = "teacher"
    chroma_share: float = 0.0

    def __post_init__(self) -> None:
        if self.target not in ("cpu", "tensorrt"):
            raise InputError(f"target must be cpu or tensorrt, got {self.target!r}")
        if self.loss not in ("teacher", "clean"):
            raise InputError(f"loss must be teacher or clean, got {self.loss!r}")
        if not 0.0 <= self.chroma_share <= 1.0:
            raise InputError(f"chroma_share is a share of patches in [0, 1], got {self.chroma_share}")


def clipped_noisy(clean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (N x 1 x H x W in [0, 1]) plus Gaussian noise of ``sigma`` (per patch, on
    the 0-1 scale), clipped to [0, 1] and rounded to 8-bit levels: what the runtime feeds
    a model from an 8-bit frame."""
    return D.quantize8(clean + rng.standard_normal(clean.shape, dtype=np.float32) * sigma.reshape(-1, 1, 1, 1))


def _source_model(torch, ckpt: dict[str, Any]):
    arch = load_arch(ckpt["arch"])
    if getattr(arch, "TASK", "denoise") != "denoise":
        raise InputError("train qat fine-tunes denoisers for now; calibrate super-resolution models "
                         "with 'edgerestore calibrate'")
    model = arch.build(**ckpt["config"], clip_output=True)
    model.load_state_dict(ckpt["ema"])
    return arch, model


def _plan(torch, arch, model, config, images: list[np.ndarray], recipe: QatRecipe) -> QatPlan:
    """ORT's INT8 model of the FP32 export, calibrated on noisy crops -> the plan."""
    onnx = require("onnx", purpose="quantization-aware fine-tuning")
    from edgerestore.calibration.quantize import Int8Settings, Int8Quantizer
    from edgerestore.export.torch_to_onnx import to_onnx_bytes

    model.eval()
    fp32 = onnx.load_from_string(to_onnx_bytes(model, arch, config))
    rng = np.random.default_rng(recipe.seed)
    feeds = []
    for k in range(CALIBRATION_CROPS):
        im = images[int(rng.integers(len(images)))]
        c = min(CALIBRATION_CROP, *im.shape) // 2 * 2
        y, x = int(rng.integers(0, im.shape[0] - c + 1)), int(rng.integers(0, im.shape[1] - c + 1))
        clean = im[None, None, y:y + c, x:x + c]
        sigma = np.array([recipe.sigma_min + (recipe.sigma_max - recipe.sigma_min) * k / (CALIBRATION_CROPS - 1)],
                         np.float32) / 255.0
        feeds.append({"image": clipped_noisy(clean, sigma, rng),
                      "noise_level": np.full(clean.shape, sigma[0], np.float32)})
    with Int8Quantizer(fp32, feeds, Int8Settings(target=recipe.target, method="entropy")) as q:
        qdq = q.quantize()
        reduce_range = q.settings.resolved_reduce_range()
    model.train()
    return plan_from_qdq(qdq, model, list(arch.INPUT_NAMES), reduce_range=reduce_range)


#: Held-out chrominance-like check (``chroma_share`` > 0): the held-out images at this
#: contrast around mid-gray, at this sigma (25 on a colour frame is ~18 on its chroma planes).
CHROMA_VAL_CONTRAST = 0.1
CHROMA_VAL_SIGMA = 18.0


def validate(model, images: list[np.ndarray], seed: int, recipe: QatRecipe) -> dict[str, float]:
    """:func:`validate_clipped` at :data:`QAT_VAL_SIGMAS`, plus ``psnr18_chroma`` (the images
    made chrominance-like) when the recipe trains on such patches."""
    out = validate_clipped(model, images, seed)
    if recipe.chroma_share > 0:
        flat = [np.float32(0.5) + np.float32(CHROMA_VAL_CONTRAST) * (im - im.mean()) for im in images]
        got = validate_clipped(model, flat, seed, sigmas=(CHROMA_VAL_SIGMA,))
        out[f"psnr{CHROMA_VAL_SIGMA:g}_chroma"] = got[f"psnr{CHROMA_VAL_SIGMA:g}"]
    return out


def validate_clipped(model, images: list[np.ndarray], seed: int, sigmas=QAT_VAL_SIGMAS) -> dict[str, float]:
    """Mean PSNR (dB) on ``images`` with seeded 8-bit clipped noise, per sigma."""
    torch = require("torch", purpose="validation")
    was = model.training
    model.eval()
    out = {}
    with torch.no_grad():
        for sigma in sigmas:
            vals = []
            for i, im in enumerate(images):
                h, w = (im.shape[0] // 2) * 2, (im.shape[1] // 2) * 2
                clean = im[None, None, :h, :w]
                rng = np.random.default_rng([seed, int(sigma * 100), i])
                noisy = clipped_noisy(clean, np.array([sigma / 255.0], np.float32), rng)
                y = model(torch.from_numpy(noisy), torch.full((1, 1, h, w), sigma / 255.0))
                vals.append(psnr(clean[0, 0], y[0, 0].numpy()))
            out[f"psnr{sigma:g}"] = float(np.mean(vals))
    model.train(was)
    return out


def train_qat(checkpoint: str | Path, data_dir: str | Path, out_dir: str | Path, *, minutes: float,
              recipe: QatRecipe | None = None, resume: bool = False, max_steps: int | None = None,
              overrides: dict[str, Any] | None = None,
              threads: int | str | None = "auto", save_minutes: float = 3.0,
              handle_signals: bool = True) -> dict[str, Any]:
    """Fine-tune the denoiser in ``checkpoint`` with INT8 simulated; returns the final
    validation (fake-quantized model) and where the run folder is. ``overrides``: recipe
    fields to change when resuming (not ``target``, ``loss``, ``patch`` or ``seed``, which
    the run's plan and data split depend on)."""
    torch = require("torch", purpose="quantization-aware fine-tuning")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "qat.pt"
    state_in = None
    if resume:
        if not last.exists():
            raise InputError(f"--resume given but there is no {last}")
        state_in = load_checkpoint(last)
        fixed = sorted(set(overrides or {}) & {"target", "loss", "patch", "seed", "holdout_every"})
        if fixed:
            raise InputError(f"a resumed run keeps its {', '.join(fixed)}: drop those options or start a new run")
        recipe = QatRecipe(**{**state_in["recipe"], **(overrides or {})})
        checkpoint = state_in["source_checkpoint"]
    elif last.exists():
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose another --out")
    recipe = recipe or QatRecipe()
    ckpt = load_checkpoint(checkpoint)
    tuner = ThreadTuner(torch, threads)
    files = D.list_images(data_dir)
    train_files, held_files = D.split_holdout(files, recipe.holdout_every)
    train_imgs = [D.load_gray(f) for f in train_files]
    held_imgs = [D.load_gray(f) for f in held_files]
    arch, model = _source_model(torch, ckpt)
    model.clip_output = False  # the gradient must flow (as in training)
    teacher = None
    if recipe.loss == "teacher":
        _, teacher = _source_model(torch, ckpt)
        teacher.clip_output = False
        teacher.eval().requires_grad_(False)
    if state_in is not None:
        plan = QatPlan([ActivationPoint(**p) for p in state_in["plan"]["points"]],
                       list(state_in["plan"]["weight_modules"]), int(state_in["plan"]["weight_qmax"]),
                       list(state_in["plan"]["unplaced"]))
    else:
        plan = _plan(torch, arch, model, ckpt["config"], train_imgs, recipe)
    changed = state_in is not None and recipe != QatRecipe(**state_in["recipe"])
    fp32_val = validate(model, held_imgs, recipe.seed, recipe) if held_imgs and (state_in is None or changed) else None
    fq = FakeQuantized(model, plan)
    weights = [p for n, p in model.named_parameters()]
    opt = torch.optim.Adam([{"params": weights, "lr": recipe.lr},
                            {"params": list(fq.log_scales), "lr": recipe.scale_lr}])
    rng = np.random.default_rng(recipe.seed)
    sampler = D.PatchSampler(train_imgs, recipe.patch, recipe.batch, (recipe.sigma_min, recipe.sigma_max), rng)
    st = LoopState()
    if state_in is not None:
        model.load_state_dict(state_in["model"])
        fq.log_scales.load_state_dict(state_in["log_scales"])
        opt.load_state_dict(state_in["optimizer"])
        sampler.set_state(state_in["sampler"])
        st.step, st.patches_seen = int(state_in["step"]), int(state_in["patches_seen"])
        st.train_seconds, st.best = float(state_in["train_seconds"]), state_in.get("best")
    logj = JsonlLog(out / "log.jsonl")
    logj.step = st.step

    def save(kind: str) -> None:
        if kind != "last":
            return
        save_checkpoint({
            "format": CHECKPOINT_FORMAT, "kind": "qat", "arch": ckpt["arch"], "config": ckpt["config"],
            "recipe": asdict(recipe), "source_checkpoint": str(checkpoint),
            "source_step": int(ckpt["step"]),
            "plan": {"points": [asdict(p) for p in plan.points], "weight_modules": plan.weight_modules,
                     "weight_qmax": plan.weight_qmax, "unplaced": plan.unplaced},
            "model": model.state_dict(), "log_scales": fq.log_scales.state_dict(),
            "optimizer": opt.state_dict(), "sampler": sampler.state(), "step": st.step,
            "patches_seen": st.patches_seen, "train_seconds": st.train_seconds, "best": st.best,
            "ranges": fq.learned_ranges(), "last_val": st.last_val,
        }, last)

    def train_step(step: int):
        clean, _, level = sampler.next()
        clean = D.chroma_like(clean, recipe.chroma_share, sampler.rng)
        sigma = level[:, 0, 0, 0]
        noisy = clipped_noisy(clean, sigma, sampler.rng)
        x, lvl = torch.from_numpy(noisy), torch.from_numpy(np.ascontiguousarray(level))
        pred, ref = model(x, lvl), torch.from_numpy(clean)
        if teacher is None:
            loss = torch.nn.functional.mse_loss(pred, ref)
        else:
            with torch.no_grad():
                target = teacher(x, lvl)
                own = (target - ref).square().mean(dim=(1, 2, 3)) + TEACHER_ERROR_FLOOR
            loss = ((pred - target).square().mean(dim=(1, 2, 3)) / own).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, recipe.lr

    def run_validation() -> dict[str, float]:
        return validate(model, held_imgs, recipe.seed, recipe)

    logj("start", resume=bool(state_in), recipe=asdict(recipe), minutes=minutes, source=str(checkpoint),
         points=len(plan.points), weight_layers=len(plan.weight_modules), unplaced=plan.unplaced)
    if fp32_val is not None:
        before = "the recipe change" if state_in is not None else "fine-tuning"
        logj("val", ema=False, best=False, when="fp32", **fp32_val)
        logj("val", ema=False, best=False, when=f"int8 simulated, before {before}", **run_validation())
    reason = run_loop(st, train_step=train_step, validate=run_validation if held_imgs else None,
                      best_key="psnr25", save=save, log=logj, tuner=tuner, batch=recipe.batch,
                      minutes=minutes, max_steps=max_steps, val_every=recipe.val_every,
                      log_every=recipe.log_every, save_minutes=save_minutes, last_path=last,
                      handle_signals=handle_signals)
    return {"step": st.step, "stopped_by": reason, "last_val": st.last_val, "run": str(out)}


def export_qat(run_dir: str | Path, fp32_output: str | Path, *, name: str | None = None) -> Path:
    """The fine-tuned float model of a QAT run as ONNX, with the learned ranges of its
    target in ``provenance["qat"]``; returns the path. Quantize it with
    ``edgerestore calibrate FP32 --method qat --target <its target>``."""
    torch = require("torch", purpose="exporting a QAT model")
    from edgerestore.export.from_checkpoint import export_checkpoint

    run = Path(run_dir)
    state = load_checkpoint(run / "qat.pt")
    src = load_checkpoint(state["source_checkpoint"])
    arch, model = _source_model(torch, src)
    plan = QatPlan([ActivationPoint(**p) for p in state["plan"]["points"]], list(state["plan"]["weight_modules"]),
                   int(state["plan"]["weight_qmax"]), list(state["plan"]["unplaced"]))
    fq = FakeQuantized(model, plan)
    model.load_state_dict(state["model"])
    fq.log_scales.load_state_dict(state["log_scales"])
    ranges = fq.learned_ranges()
    fq.remove()
    tuned = dict(src)
    tuned["ema"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tmp = run / "qat_weights.pt"
    save_checkpoint(tuned, tmp)
    target = state["recipe"]["target"]
    extra = {"qat": {
        "ranges": {target: {k: [float(lo), float(hi)] for k, (lo, hi) in ranges.items()}},
        "steps": int(state["step"]), "patches_seen": int(state["patches_seen"]),
        "train_seconds": round(float(state["train_seconds"]), 1), "recipe": state["recipe"],
        "source_step": int(state["source_step"]), "unplaced": plan.unplaced,
        "validation_clipped_fake_quant": state.get("last_val"),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }}
    try:
        export_checkpoint(f"{arch.ARCH}:{tmp}", fp32_output, name=name, extra_provenance=extra)
    finally:
        tmp.unlink(missing_ok=True)
    return Path(fp32_output)
