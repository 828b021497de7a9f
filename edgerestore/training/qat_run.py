"""``edgerestore train qat``: fine-tune a trained restorer with INT8 simulated, export it.

One run serves one quantization target (``cpu`` or ``tensorrt``: their Q/DQ placement
and ranges differ, see :mod:`edgerestore.calibration.quantize`) and, for a
super-resolution checkpoint, one scale (``recipe.scale``: each scale is its own ONNX
file with its own Q/DQ graph and ranges, so each gets its own fine-tuned copy of the
shared body). What differs per task (model, feeds, batches, validation, export) is a
small class in :mod:`edgerestore.training.qat_tasks`; the rest is here. Steps:

1. the checkpoint's EMA weights are exported to ONNX and quantized by ONNX Runtime's
   quantizer (the task's calibration method) on the task's calibration feeds: the INT8
   model says what to simulate (:func:`edgerestore.training.qat.plan_from_qdq`);
2. the torch model is fine-tuned with that fake quantization on the task's training
   batches (denoisers: the noise the runtime feeds; super-resolution: the SR training's
   own degradations), the FP32 model as teacher, time-boxed and resumable like the
   other recipes (``qat.pt`` in the run folder, ``log.jsonl``);
3. :func:`export_qat` writes the fine-tuned float model with the learned ranges in its
   provenance (``qat``) and makes the INT8 model with ``calibrate --method qat``, behind
   the same accuracy gate as any calibration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from edgerestore.training import data as D
from edgerestore.training.loop import JsonlLog, ThreadTuner, run_loop
from edgerestore.training.qat import ActivationPoint, FakeQuantized, QatPlan, plan_from_qdq
from edgerestore.training.qat_tasks import qat_task
from edgerestore.training.state import LoopState

log = logging.getLogger("edgerestore.training")

# the FP32 model's squared error on a patch never counts as below this (0-1 scale: 1e-5 is
# an error of 0.8 levels of 255), so a patch the teacher restores perfectly (flat, sigma 0)
# cannot take over the loss
TEACHER_ERROR_FLOOR = 1e-5
# recipe fields a resumed run cannot change: its plan, data split and task depend on them
PLAN_FIELDS = frozenset({"target", "loss", "patch", "seed", "holdout_every", "scale", "keep_float"})


@dataclass(frozen=True, kw_only=True)
class QatRecipe:
    """``target``: ``cpu`` or ``tensorrt``; ``lr``: Adam's rate for the weights (small:
    the model is trained already); ``scale_lr``: for the log step sizes; ``patch``
    (denoisers: the patch edge, default 64; super-resolution: the LR patch edge, default
    32), ``batch``: training patches; ``sigma_min``/``sigma_max``: noise levels drawn
    (0-255, denoisers); ``scale``: the head of a super-resolution checkpoint to
    fine-tune (needed when it has several); ``keep_float``: ONNX node names left in
    float, in the plan and (given to ``calibrate --keep-float``) in the INT8 model
    (default: the task's, see :mod:`edgerestore.training.qat_tasks`; ``()`` for none);
    ``val_every``/``log_every``: steps;
    ``seed``. ``loss``: ``teacher`` (default: match the FP32 model's output on the same
    input, knowledge distillation: the target has no noise of its own, so small steps
    keep the trained model's quality), each patch's squared error divided by the FP32
    model's own squared error on it, so the loss is the sum of the patches' PSNR drops
    to first order (drop = 10 log10(1 + MSE(INT8 - FP32) / MSE(FP32 - clean)),
    docs/calibration.md) and flat patches, where INT8 loses most, weigh as much as the
    rest; or ``clean`` (match the clean patch, as training did). ``chroma_share``
    (denoisers): the share of patches made chrominance-like
    (:func:`~edgerestore.training.data.chroma_like`: low contrast around mid-gray), the
    planes a gray model gets from colour footage, where FP32 is so good that INT8's
    deviation costs the most dB (docs/calibration.md)."""

    target: str = "cpu"
    lr: float = 1e-5
    scale_lr: float = 1e-3
    patch: int | None = None
    batch: int = 16
    sigma_min: float = 0.0
    sigma_max: float = 75.0
    scale: int | None = None
    keep_float: tuple[str, ...] | None = None
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
        if self.keep_float is not None:
            object.__setattr__(self, "keep_float", tuple(str(k) for k in self.keep_float))


def _task_and_recipe(ckpt: dict[str, Any], recipe: QatRecipe):
    """The checkpoint's task piece and the recipe with the task's defaults filled in."""
    task = qat_task(ckpt, recipe)
    if recipe.patch is None:
        recipe = replace(recipe, patch=task.default_patch)
    if recipe.keep_float is None:
        recipe = replace(recipe, keep_float=task.default_keep_float)
    task.recipe = recipe
    return task, recipe


def _plan(task, model, images: list[np.ndarray], recipe: QatRecipe) -> QatPlan:
    """ORT's INT8 model of the FP32 export, calibrated on the task's feeds -> the plan."""
    onnx = require("onnx", purpose="quantization-aware fine-tuning")
    from edgerestore.calibration.quantize import Int8Settings, Int8Quantizer
    from edgerestore.export.torch_to_onnx import to_onnx_bytes

    model.eval()
    fp32 = onnx.load_from_string(to_onnx_bytes(model, task.arch, task.ckpt["config"]))
    # the recipe's keep_float is the whole list of float layers (the SR task's default names
    # the image path), so calibrate's own image-path default does not apply
    settings = Int8Settings(target=recipe.target, method=task.calibration_method, keep_float=recipe.keep_float,
                            image_path_float=False)
    with Int8Quantizer(fp32, task.calibration_feeds(images), settings) as q:
        qdq = q.quantize()
        reduce_range = q.settings.resolved_reduce_range()
    model.train()
    return task.start_ranges(plan_from_qdq(qdq, model, task.input_names, reduce_range=reduce_range))


def _stored_plan(state: dict[str, Any]) -> QatPlan:
    p = state["plan"]
    return QatPlan([ActivationPoint(**x) for x in p["points"]], list(p["weight_modules"]),
                   int(p["weight_qmax"]), list(p["unplaced"]))


def train_qat(checkpoint: str | Path, data_dir: str | Path, out_dir: str | Path, *, minutes: float,
              recipe: QatRecipe | None = None, resume: bool = False, max_steps: int | None = None,
              overrides: dict[str, Any] | None = None, threads: int | str | None = "auto", save_minutes: float = 3.0,
              handle_signals: bool = True) -> dict[str, Any]:
    """Fine-tune the denoiser or super-resolution model in ``checkpoint`` with INT8
    simulated; returns the final validation (fake-quantized model) and where the run
    folder is. ``overrides``: recipe fields to change when resuming (not those the run's
    plan and data split depend on: ``target``, ``loss``, ``patch``, ``seed``,
    ``holdout_every``, ``scale``, ``keep_float``)."""
    torch = require("torch", purpose="quantization-aware fine-tuning")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "qat.pt"
    state_in, changed = None, False
    if resume:
        if not last.exists():
            raise InputError(f"--resume given but there is no {last}")
        state_in = load_checkpoint(last)
        fixed = sorted(set(overrides or {}) & PLAN_FIELDS)
        if fixed:
            raise InputError(f"a resumed run keeps its {', '.join(fixed)}: drop those options or start a new run")
        stored = QatRecipe(**state_in["recipe"])
        recipe = replace(stored, **(overrides or {}))
        changed = recipe != stored
        checkpoint = state_in["source_checkpoint"]
    elif last.exists():
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose another --out")
    ckpt = load_checkpoint(checkpoint)
    task, recipe = _task_and_recipe(ckpt, recipe or QatRecipe())
    tuner = ThreadTuner(torch, threads)
    files = D.list_images(data_dir)
    train_files, held_files = D.split_holdout(files, recipe.holdout_every)
    train_imgs = [D.load_gray(f) for f in train_files]
    held_imgs = [D.load_gray(f) for f in held_files]
    model = task.build()
    model.clip_output = False  # the gradient must flow (as in training)
    teacher = None
    if recipe.loss == "teacher":
        teacher = task.build()
        teacher.clip_output = False
        teacher.eval().requires_grad_(False)
    plan = _stored_plan(state_in) if state_in is not None else _plan(task, model, train_imgs, recipe)
    validate = task.validator(held_imgs) if held_imgs else None
    fp32_val = validate(model) if validate is not None and (state_in is None or changed) else None
    fq = FakeQuantized(model, plan)
    weights = [p for n, p in model.named_parameters()]
    opt = torch.optim.Adam([{"params": weights, "lr": recipe.lr},
                            {"params": list(fq.log_scales), "lr": recipe.scale_lr}])
    sampler = task.sampler(train_imgs, np.random.default_rng(recipe.seed))
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
        inputs, clean = task.batch(sampler)
        x = [torch.from_numpy(a) for a in inputs]
        pred, ref = task.loss_view(model(*x)), torch.from_numpy(clean)
        if teacher is None:
            loss = torch.nn.functional.mse_loss(pred, ref)
        else:
            with torch.no_grad():
                target = task.loss_view(teacher(*x))
                own = (target - ref).square().mean(dim=(1, 2, 3)) + TEACHER_ERROR_FLOOR
            loss = ((pred - target).square().mean(dim=(1, 2, 3)) / own).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, recipe.lr

    def run_validation() -> dict[str, float]:
        return validate(model)

    logj("start", resume=bool(state_in), recipe=asdict(recipe), minutes=minutes, source=str(checkpoint),
         points=len(plan.points), weight_layers=len(plan.weight_modules), unplaced=plan.unplaced)
    if fp32_val is not None:
        before = "the recipe change" if state_in is not None else "fine-tuning"
        logj("val", ema=False, best=False, when="fp32", **fp32_val)
        logj("val", ema=False, best=False, when=f"int8 simulated, before {before}", **run_validation())
    reason = run_loop(st, train_step=train_step, validate=run_validation if validate is not None else None,
                      best_key=task.best_key, save=save, log=logj, tuner=tuner, batch=recipe.batch,
                      minutes=minutes, max_steps=max_steps, val_every=recipe.val_every,
                      log_every=recipe.log_every, save_minutes=save_minutes, last_path=last,
                      handle_signals=handle_signals)
    return {"step": st.step, "stopped_by": reason, "last_val": st.last_val, "run": str(out)}


def export_qat(run_dir: str | Path, fp32_output: str | Path, *, name: str | None = None) -> Path:
    """The fine-tuned float model of a QAT run as ONNX, with the learned ranges of its
    target in ``provenance["qat"]`` (and the layers it kept in float, ``keep_float``);
    returns the path. Quantize it with ``edgerestore calibrate FP32 --method qat
    --target <its target> --keep-float <its keep_float>``."""
    require("torch", purpose="exporting a QAT model")
    run = Path(run_dir)
    state = load_checkpoint(run / "qat.pt")
    src = load_checkpoint(state["source_checkpoint"])
    task, recipe = _task_and_recipe(src, QatRecipe(**state["recipe"]))
    model = task.build()
    plan = _stored_plan(state)
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
        "keep_float": list(recipe.keep_float),
        "validation_clipped_fake_quant": state.get("last_val"),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }}
    try:
        task.export(tmp, fp32_output, name=name, extra=extra)
    finally:
        tmp.unlink(missing_ok=True)
    return Path(fp32_output)
