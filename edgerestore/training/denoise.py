"""The denoiser training recipe: resumable, time-boxed, the same on a CPU and a GPU.

Random 64x64 patches of the training images (8 flips/rotations), sigma uniform in
[0, 75] per patch, noise as the recipe's ``noise`` says (``gaussian``: white, not
clipped; ``camera``: 8-bit clipped Gaussian and Poisson-Gaussian, some through H.264,
see :class:`~edgerestore.training.data.CameraPatchSampler`), L2 loss on the clean image, Adam, learning
rate constant then (optionally) cosine-annealed, an exponential moving average (EMA) of
the weights for validation and export, fixed seeds. The checkpoint folder holds:

* ``last.pt``: everything needed to resume exactly (weights, EMA, Adam state, step,
  RNG state, recipe); written every ``save_minutes`` and at exit (time budget reached,
  SIGINT or SIGTERM);
* ``best.pt``: the EMA weights with the best held-out PSNR at sigma 25 (small);
* ``log.jsonl``: one JSON object per line: ``train`` (mean loss, lr, patches/s),
  ``val`` (held-out PSNR at sigma 15/25/50: float noise for the ``gaussian`` recipe,
  8-bit clipped for ``camera``, which adds ``psnr_pg`` at
  :data:`~edgerestore.training.data.VAL_PG`), ``save``, ``start``, ``stop``.

Validation uses images of the training folder held out from training (every
``holdout_every``-th file), never a test set.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.metrics import psnr
from edgerestore.models.checkpoint import load_checkpoint, save_checkpoint
from edgerestore.training import data as D
from edgerestore.training.device import autocast, precision_warning, resolve_device
from edgerestore.training.loop import JsonlLog, ThreadTuner, run_loop
from edgerestore.training.recipe import RecipeBase
from edgerestore.training.schedule import warmup_factor
from edgerestore.training.state import (
    build_training_parts,
    checkpoint_header,
    checkpoint_payload,
    open_run_dir,
    resume_state,
)

log = logging.getLogger("edgerestore.training")

VAL_SIGMAS = (15.0, 25.0, 50.0)


@dataclass(frozen=True, kw_only=True)
class Recipe(RecipeBase):
    """Hyper-parameters of a denoiser training run (stored in every checkpoint); the
    shared fields (schedule, EMA, seed, hold-out, precision) are :class:`RecipeBase`'s.

    ``channels``: 1 (gray) or 3; ``patch``: edge of the square training patches;
    ``sigma_min``/``sigma_max``: the noise sigma of each patch is drawn uniformly from
    this range (0-255 scale). With ``decay_start`` None or negative (``--decay-start
    never``) the rate stays constant and the EMA weights play the part of the annealed
    ones.

    ``noise``: ``gaussian`` (float white noise, the first runs' recipe and the default,
    so old checkpoints resume unchanged) or ``camera`` (8-bit clipped Gaussian and
    Poisson-Gaussian noise, ``h264_share`` of the 8-bit patches through H.264 at a CRF in
    [``crf_min``, ``crf_max``], ``float_share`` of all patches still float Gaussian, see
    :class:`~edgerestore.training.data.CameraPatchSampler`).

    ``collapse_db``: a validation this far (dB) below the best one rewinds the run (see
    :func:`train`). ``clip_grad``: the gradient's global L2 norm is clipped to
    ``clip_grad`` times its running mean (see :func:`clip_gradients`); 0 turns clipping
    off.
    """

    arch: str = "edgerestore.models.ffdnet"
    features: int = 48
    depth: int = 15
    channels: int = 1
    patch: int = 64
    batch: int = 32
    sigma_min: float = 0.0
    sigma_max: float = 75.0
    val_every: int = 500
    log_every: int = 50
    collapse_db: float = 2.0
    clip_grad: float = 4.0
    noise: str = "gaussian"
    float_share: float = 0.2
    pg_share: float = 0.5
    h264_share: float = 0.2
    crf_min: int = 18
    crf_max: int = 36

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise not in ("gaussian", "camera"):
            raise InputError(f"noise must be 'gaussian' or 'camera', got {self.noise!r}")
        for name in ("float_share", "pg_share", "h264_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.crf_min <= self.crf_max <= 51:
            raise InputError(f"need 0 <= crf_min <= crf_max <= 51, got {self.crf_min}, {self.crf_max}")

    def camera_options(self) -> dict[str, Any]:
        """The :class:`~edgerestore.training.data.CameraPatchSampler` keywords."""
        return {"float_share": self.float_share, "pg_share": self.pg_share, "h264_share": self.h264_share,
                "crf_min": self.crf_min, "crf_max": self.crf_max}

    def model_config(self) -> dict[str, int]:
        return {"channels": self.channels, "features": self.features, "depth": self.depth}


@dataclass
class RunResult:
    step: int
    stopped_by: str
    best_psnr25: float | None
    last_val: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""


def validate(model, images: list[np.ndarray], seed: int, sigmas=VAL_SIGMAS,
             noise: str = "gaussian") -> dict[str, float]:
    """Mean PSNR (dB) of ``model`` on ``images`` with fixed seeded noise, per sigma
    (``psnr15``...): float white noise for ``noise="gaussian"``; for ``camera`` 8-bit
    clipped white noise, plus ``psnr_pg`` with 8-bit clipped Poisson-Gaussian noise at
    :data:`~edgerestore.training.data.VAL_PG` and its true per-pixel map."""
    torch = require("torch", purpose="validation")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, float] = {}

    def mean_psnr(pairs) -> float:
        vals = []
        for clean, (nz, level) in zip(images, pairs):
            h, w = (clean.shape[0] // 2) * 2, (clean.shape[1] // 2) * 2
            x = torch.from_numpy(np.ascontiguousarray(nz[:h, :w]))[None, None].to(device)
            if np.ndim(level):
                lvl = torch.from_numpy(np.ascontiguousarray(level[:h, :w]))[None, None].to(device)
            else:
                lvl = torch.full_like(x, float(level))
            y = model(x, lvl)[0, 0].cpu().numpy()
            vals.append(psnr(clean[:h, :w], y))
        return float(np.mean(vals))

    with torch.no_grad():
        for sigma in sigmas:
            noisy = D.noisy_validation_set(images, sigma, seed, clipped=noise == "camera")
            out[f"psnr{sigma:g}"] = mean_psnr([(nz, sigma / 255.0) for nz in noisy])
        if noise == "camera":
            out["psnr_pg"] = mean_psnr(D.pg_validation_set(images, *D.VAL_PG, seed))
    model.train(was_training)
    return out


def train(data_dir: str | Path, out_dir: str | Path, *, minutes: float, recipe: Recipe | None = None,
          resume: bool = False, max_steps: int | None = None, threads: int | str | None = 2,
          save_minutes: float = 3.0, handle_signals: bool = True,
          on_step: Callable[[int, float], None] | None = None,
          rewind_from: str | Path | None = None, device: str | None = "auto",
          warmup_steps: int = 0, init_from: str | Path | None = None,
          sampler: str = "auto") -> RunResult:
    """Train (or resume training) a denoiser; return where it stopped.

    ``minutes``: wall-clock budget of this call; ``max_steps``: stop at this global
    step (for tests and fixed-length runs); ``resume``: continue from
    ``out_dir/last.pt`` with its stored recipe, or with ``recipe`` when one is given
    (:meth:`Recipe.resume` makes one from the stored recipe with some fields changed).

    Divergence guard: when a validation falls more than ``recipe.collapse_db`` below the
    best one (a plain ReLU net can collapse to the identity), the model and EMA weights
    are rewound to ``best.pt``, Adam's moments are reset and the learning rate is halved
    (``lr_scale``, kept in the checkpoint). ``rewind_from`` does the same by hand at the
    start of a resumed run, from the EMA weights of that checkpoint.

    ``device``: ``auto`` (a CUDA GPU when torch sees one, else the CPU), ``cpu`` or
    ``cuda[:N]``; checkpoints load on either. ``warmup_steps``: the learning rate ramps
    up linearly over the first steps of this call (see :func:`warmup_factor`); use it
    whenever a resume raises the rate (0 keeps a resumed run bit-identical to an
    uninterrupted one).

    ``init_from``: start a new run (not ``resume``) from the EMA weights of another
    checkpoint, grown to this recipe's ``features``/``depth`` when it is smaller (see
    :func:`edgerestore.models.ffdnet.grow`: the grown model computes the same function,
    so training continues from the small model's quality instead of from scratch). The
    step count, schedule and Adam start afresh; give it a ``warmup_steps``.

    ``sampler``: where patches are cut and noised: ``numpy`` (:class:`PatchSampler`, on
    one CPU core), ``device`` (:class:`DevicePatchSampler`, on the training device) or
    ``auto`` (device on a GPU, numpy on the CPU). Both draw positions, augmentations and
    sigmas from the same stream, so a run can switch between them on resume.
    """
    torch = require("torch", purpose="training a denoiser")
    out, ckpt = open_run_dir(out_dir, resume)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"
    tuner = ThreadTuner(torch, threads)
    if ckpt is not None and recipe is None:
        recipe = Recipe(**ckpt["recipe"])
    recipe = recipe or Recipe()

    files = D.list_images(data_dir)
    train_files, held_files = D.split_holdout(files, recipe.holdout_every)
    train_imgs = [D.load_gray(f) for f in train_files]
    held_imgs = [D.load_gray(f) for f in held_files]

    device = resolve_device(torch, device)
    parts = build_training_parts(torch, recipe, device)
    model, opt, ema, eval_model = parts.model, parts.optimizer, parts.ema, parts.eval_model
    sampler_kind = _sampler_kind(sampler, device, recipe.noise)
    sampler_args = (train_imgs, recipe.patch, recipe.batch, (recipe.sigma_min, recipe.sigma_max),
                    np.random.default_rng(recipe.seed))
    if sampler_kind == "device":
        patches = D.DevicePatchSampler(*sampler_args, torch=torch, device=device)
        next_batch = patches.next
    else:
        camera = recipe.camera_options() if recipe.noise == "camera" else {}
        patches = D.sampler_for(recipe.noise, *sampler_args, **camera)

        def next_batch():
            return tuple(torch.from_numpy(a).to(device, non_blocking=True) for a in patches.next())
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed patch shape: let cuDNN pick its fastest kernels
    ctl = {"lr_scale": float(ckpt.get("lr_scale", 1.0)) if ckpt else 1.0}
    st = resume_state(ckpt, model=model, optimizer=opt, ema=ema, sampler=patches,
                      batch=recipe.batch, best_key="best_psnr25")
    start_step = st.step
    logj = JsonlLog(log_path)
    logj.step = st.step
    init_info = None
    if init_from is not None:
        if ckpt is not None:
            raise InputError("init_from starts a new run; it cannot be combined with resume")
        init_info = _init_weights(torch, init_from, recipe, model, ema)

    provenance_base = {
        "training_data": str(Path(data_dir).name),
        "training_files": len(train_files),
        "heldout_files": [f.name for f in held_files],
    }
    if init_info is not None:
        provenance_base["init_from"] = init_info
    elif ckpt is not None and ckpt.get("init_from"):
        provenance_base["init_from"] = ckpt["init_from"]

    def save(kind: str) -> None:
        header = checkpoint_header(recipe, st, best_key="best_psnr25", lr_scale=ctl["lr_scale"],
                                   **provenance_base)
        save_checkpoint(checkpoint_payload(kind, header, parts, patches),
                        last_path if kind == "last" else best_path)

    def train_step(step: int):
        clean, noisy, level = next_batch()
        lr = recipe.lr_at(step) * ctl["lr_scale"] * warmup_factor(step, start_step, warmup_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(torch, device, recipe.precision):
            pred = model(noisy, level)
        loss = torch.nn.functional.mse_loss(pred.float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(torch, model, recipe.clip_grad, ctl)
        opt.step()
        ema.update(torch, model, step + 1)
        return loss, lr

    def rewind(path: Path, why: str) -> None:
        src = load_checkpoint(path)
        model.load_state_dict(src["ema"])
        ema.load(src["ema"])
        opt.state.clear()
        ctl["lr_scale"] *= 0.5
        logj("rewind", source=str(path), source_step=int(src["step"]), why=why, lr_scale=ctl["lr_scale"])

    def run_validation() -> dict[str, float]:
        eval_model.load_state_dict(ema.shadow)
        val = validate(eval_model, held_imgs, recipe.seed, noise=recipe.noise)
        if (st.best is not None and recipe.collapse_db and best_path.exists()
                and val["psnr25"] < st.best - recipe.collapse_db):
            rewind(best_path, f"held-out PSNR25 {val['psnr25']:.2f} < best {st.best:.2f} - {recipe.collapse_db:g}")
        return val

    logj("start", resume=bool(ckpt), recipe=asdict(recipe), minutes=minutes, threads=threads,
         device=device, sampler=sampler_kind, warmup_steps=warmup_steps, train_files=len(train_files),
         heldout=len(held_files))
    warning = precision_warning(torch, device, recipe.precision)
    if warning:
        logj("warning", message=warning)
    if init_info is not None:
        logj("init", **init_info)
    if rewind_from is not None:
        if ckpt is None:
            raise InputError("rewind_from needs resume=True (it continues the run in out_dir)")
        rewind(Path(rewind_from), "requested")
    reason = run_loop(st, train_step=train_step, validate=run_validation if held_imgs else None,
                      best_key="psnr25", save=save, log=logj, tuner=tuner, batch=recipe.batch,
                      minutes=minutes, max_steps=max_steps, val_every=recipe.val_every,
                      log_every=recipe.log_every, save_minutes=save_minutes, last_path=last_path,
                      handle_signals=handle_signals, on_step=on_step)
    return RunResult(step=st.step, stopped_by=reason, best_psnr25=st.best, last_val=st.last_val,
                     checkpoint=str(last_path))


def _sampler_kind(name: str | None, device: str, noise: str = "gaussian") -> str:
    """``numpy`` or ``device`` for the ``sampler`` option of :func:`train`; the ``camera``
    noise (8-bit rounding, H.264 through PyAV) is made by the NumPy sampler only."""
    name = (name or "auto").strip().lower()
    if name not in ("auto", "numpy", "device"):
        raise InputError(f"sampler must be auto, numpy or device, got {name!r}")
    if noise == "camera":
        if name == "device":
            raise InputError("the camera noise recipe is made on the CPU (H.264 through PyAV): "
                             "use --sampler numpy or auto")
        return "numpy"
    if name == "auto":
        return "device" if device.startswith("cuda") else "numpy"
    return name


def _init_weights(torch, path: str | Path, recipe: Recipe, model, ema) -> dict[str, Any]:
    """Load the EMA weights of checkpoint ``path`` into ``model`` and ``ema``, grown to the
    recipe's config when the checkpoint's is smaller; return where they came from."""
    from edgerestore.models import load_arch

    src = load_checkpoint(path)
    if src.get("arch", recipe.arch) != recipe.arch:
        raise InputError(f"{path} holds a {src.get('arch')} model, this run trains {recipe.arch}")
    src_config, dst_config = dict(src["config"]), recipe.model_config()
    weights = src["ema"]
    if src_config != dst_config:
        arch = load_arch(recipe.arch)
        if not hasattr(arch, "grow"):
            raise InputError(f"{path} has config {src_config}, this run {dst_config}, and "
                             f"{recipe.arch} cannot grow a model: give the checkpoint's config")
        try:
            weights = arch.grow(weights, src_config, dst_config, seed=recipe.seed)
        except ValueError as e:
            raise InputError(f"cannot start from {path}: {e}; give --features/--depth at least "
                             f"those of the checkpoint ({src_config})") from None
    model.load_state_dict(weights)
    ema.load(model.state_dict())
    return {"path": str(path), "source_step": int(src.get("step", 0)), "config": src_config,
            "best_psnr25": src.get("best_psnr25")}


def clip_gradients(torch, model, factor: float, ctl: dict[str, Any]) -> None:
    """Clip the global L2 norm of ``model``'s gradients to ``factor`` times its running
    mean (in place); ``factor`` 0 does nothing.

    The running mean is an exponential average (weight 0.01, so ~100 steps) of the
    clipped norms, kept in ``ctl`` (``grad_norm_mean``, ``grad_norm_seen``; clipped steps
    are counted in ``grad_clipped``); the first 20 steps of a run are not clipped. A
    plain ReLU net without BatchNorm can be knocked into the identity (all ReLUs dead) by
    one outsized step; this keeps single steps near the typical size without choosing an
    absolute threshold.
    """
    if not factor:
        return
    params = [p for p in model.parameters() if p.grad is not None]
    mean = ctl.get("grad_norm_mean")
    seen = ctl.get("grad_norm_seen", 0)
    limit = factor * mean if (mean is not None and seen >= 20) else float("inf")
    norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
    if math.isfinite(norm):
        clipped = min(norm, limit)
        ctl["grad_norm_mean"] = clipped if mean is None else 0.99 * mean + 0.01 * clipped
        ctl["grad_norm_seen"] = seen + 1
        if norm > limit:
            ctl["grad_clipped"] = ctl.get("grad_clipped", 0) + 1
