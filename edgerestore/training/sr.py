"""The super-resolution training recipe (ESPCN class, luma): resumable, time-boxed.

Data: the gray training images (``Train400``: 180x180, so a multiple of 2, 3 and 4),
every ``holdout_every``-th held out for validation. For each image and scale the
low-resolution (LR) image is made once with MATLAB-style antialiased bicubic
downscaling (:func:`edgerestore.resize.downscale`) and rounded to 8 bits, as a real LR
frame would be. A step draws one scale (round robin over ``scales``: one shared body,
one head per scale), a batch of random aligned LR/HR patch pairs (LR ``lr_patch``
pixels, HR ``lr_patch * scale``) with one of the 8 flips/rotations each (they commute
with the downscaling), and minimises the L1 (default) or L2 loss of the HR output.
Adam, constant learning rate then an optional cosine decay, EMA weights for validation
and export, fixed seeds, all random draws from one saved generator.

The checkpoint folder (same layout as the denoiser's, see :mod:`edgerestore.training.denoise`):
``last.pt`` (everything to resume exactly), ``best.pt`` (EMA weights with the best mean
held-out gain over bicubic across scales), ``log.jsonl`` (``start``, ``train``, ``val``
= held-out luma PSNR per scale and its gain over bicubic, ``save``, ``stop``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.metrics import psnr
from edgerestore.models.checkpoint import save_checkpoint
from edgerestore.models.checkpoint import load_checkpoint
from edgerestore.resize import downscale, imresize, modcrop
from edgerestore.training import data as D
from edgerestore.training.degrade import DegradationMix, Degrader
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


DEGRADATIONS = ("bicubic", "real")
# LR pixels cut around a "real" patch before degrading it: blur and resize borders stay
# outside the crop, and the random crop offset moves the 8x8 JPEG / 16x16 H.264 grid.
REAL_MARGIN = 6


@dataclass(frozen=True, kw_only=True)
class SRRecipe(RecipeBase):
    """Hyper-parameters of a super-resolution run (stored in every checkpoint); the
    shared fields (schedule, EMA, seed, hold-out, precision) are :class:`RecipeBase`'s.

    ``scales``: the trained scales (one head each, steps cycle through them);
    ``lr_patch``: edge of the low-resolution patches (HR ``lr_patch * scale``);
    ``loss``: ``l1`` or ``l2`` on the HR output; ``degradation``: ``bicubic`` (LR by
    MATLAB-style antialiased bicubic only, made once per image) or ``real`` (each patch
    degraded on the fly by :class:`edgerestore.training.degrade.Degrader`: random
    kernels, blur, noise, JPEG/H.264), ``clean_share`` of those patches plain bicubic,
    ``degradation_mix`` overriding other fields of :class:`DegradationMix` (e.g.
    ``{"kernel_weights": [...], "noise_p": 0.2}``).
    """

    arch: str = "edgerestore.models.espcn"
    scales: tuple[int, ...] = (2, 3, 4)
    features: int = 32
    depth: int = 6
    lr_patch: int = 32
    batch: int = 16
    loss: str = "l1"
    val_every: int = 600
    log_every: int = 60
    degradation: str = "bicubic"
    clean_share: float = 0.3
    degradation_mix: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.degradation not in DEGRADATIONS:
            raise InputError(f"degradation must be one of {DEGRADATIONS}, got {self.degradation!r}")
        if not 0.0 <= self.clean_share <= 1.0:
            raise InputError(f"clean_share must be in [0, 1], got {self.clean_share}")
        self.mix()  # checks degradation_mix

    def mix(self) -> DegradationMix:
        """The :class:`DegradationMix` of ``degradation: real``: its defaults, the fields
        given in ``degradation_mix`` (JSON-like: lists for ranges) and ``clean_share``."""
        given = dict(self.degradation_mix)
        unknown = sorted(set(given) - set(DegradationMix.__dataclass_fields__) | ({"clean_share"} & set(given)))
        if unknown:
            raise InputError(f"degradation_mix: unknown or misplaced field(s) {unknown} (clean_share is its own "
                             f"field); known: {sorted(set(DegradationMix.__dataclass_fields__) - {'clean_share'})}")
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
        return DegradationMix(clean_share=self.clean_share, **given)
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        if not self.scales or any(s < 2 for s in self.scales):
            raise InputError(f"scales must be integers >= 2, got {self.scales}")
        if self.loss not in ("l1", "l2"):
            raise InputError(f"loss must be 'l1' or 'l2', got {self.loss!r}")

    def model_config(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "features": self.features, "depth": self.depth}


def make_pairs(images: list[np.ndarray], scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(HR cropped to a multiple of ``scale``, LR rounded to 8 bits) float32 pairs."""
    pairs = []
    for im in images:
        h, w = im.shape
        hr = im[: h - h % scale, : w - w % scale]
        lr = np.clip(np.round(downscale(hr, scale) * 255.0), 0, 255) / 255.0
        pairs.append((np.ascontiguousarray(hr, np.float32), lr.astype(np.float32)))
    return pairs


@dataclass
class SRPatchSampler:
    """Batches of aligned (LR, HR) patches for one scale at a time (round robin)."""

    pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]]
    lr_patch: int
    batch: int
    rng: np.random.Generator

    def __post_init__(self) -> None:
        for s, prs in self.pairs.items():
            if any(min(lr.shape) < self.lr_patch for _, lr in prs):
                raise InputError(f"training images too small for {self.lr_patch}-pixel LR patches at x{s}")

    def next(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        p, n, rng, s = self.lr_patch, self.batch, self.rng, scale
        prs = self.pairs[s]
        lo = np.empty((n, 1, p, p), np.float32)
        hi = np.empty((n, 1, p * s, p * s), np.float32)
        idx = rng.integers(0, len(prs), size=n)
        modes = rng.integers(0, 8, size=n)
        for k in range(n):
            hr, lr = prs[idx[k]]
            y = int(rng.integers(0, lr.shape[0] - p + 1))
            x = int(rng.integers(0, lr.shape[1] - p + 1))
            lo[k, 0] = D.augment(lr[y:y + p, x:x + p], int(modes[k]))
            hi[k, 0] = D.augment(hr[y * s:(y + p) * s, x * s:(x + p) * s], int(modes[k]))
        return lo, hi

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


@dataclass
class RealPatchSampler:
    """Batches of (LR, HR) patches with the LR degraded on the fly (``degradation: real``).

    Cuts an HR patch of ``(lr_patch + 2 * REAL_MARGIN) * scale`` pixels with one of the 8
    flips/rotations, degrades the batch (:meth:`Degrader.degrade_batch`), then crops the
    ``lr_patch`` LR patch at a random offset in [2, 2 * REAL_MARGIN - 2] and its HR
    counterpart. State: this sampler's generator and the degrader's.
    """

    images: list[np.ndarray]
    lr_patch: int
    batch: int
    rng: np.random.Generator
    degrader: Degrader

    def __post_init__(self) -> None:
        self.big = self.lr_patch + 2 * REAL_MARGIN

    def check(self, scales: tuple[int, ...]) -> None:
        need = self.big * max(scales)
        if any(min(im.shape) < need for im in self.images):
            raise InputError(f"training images too small: 'real' degradation at x{max(scales)} cuts "
                             f"{need}-pixel HR patches (lr_patch {self.lr_patch} + 2 x {REAL_MARGIN} margin)")

    def next(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        p, n, rng, s, big = self.lr_patch, self.batch, self.rng, scale, self.big
        idx = rng.integers(0, len(self.images), size=n)
        modes = rng.integers(0, 8, size=n)
        hrs = []
        for k in range(n):
            im = self.images[idx[k]]
            y = int(rng.integers(0, (im.shape[0] - big * s) // s + 1)) * s
            x = int(rng.integers(0, (im.shape[1] - big * s) // s + 1)) * s
            hrs.append(np.ascontiguousarray(D.augment(im[y:y + big * s, x:x + big * s], int(modes[k]))))
        los, _ = self.degrader.degrade_batch(hrs, s)
        offs = rng.integers(2, 2 * REAL_MARGIN - 1, size=(n, 2))
        lo = np.empty((n, 1, p, p), np.float32)
        hi = np.empty((n, 1, p * s, p * s), np.float32)
        for k in range(n):
            oy, ox = int(offs[k, 0]), int(offs[k, 1])
            lo[k, 0] = los[k][oy:oy + p, ox:ox + p]
            hi[k, 0] = hrs[k][oy * s:(oy + p) * s, ox * s:(ox + p) * s]
        return lo, hi

    def state(self) -> dict[str, Any]:
        return {"patches": self.rng.bit_generator.state, "degrade": self.degrader.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["patches"]
        self.degrader.set_state(state["degrade"])


def degraded_pairs(images: list[np.ndarray], scale: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out (HR, LR) pairs with every LR degraded (no clean share), from a fixed seed:
    the same set at every validation of every run with that seed."""
    hrs = [np.ascontiguousarray(modcrop(im, scale), np.float32) for im in images]
    degrader = Degrader(DegradationMix(clean_share=0.0), seed=seed * 10 + scale)
    los, _ = degrader.degrade_batch(hrs, scale)
    return list(zip(hrs, los))


def shaved_psnr(ref: np.ndarray, out: np.ndarray, shave: int) -> float:
    """PSNR (dB, peak 1) with ``shave`` border pixels left out, as the SR papers do."""
    if shave:
        ref, out = ref[shave:-shave, shave:-shave], out[shave:-shave, shave:-shave]
    return psnr(ref, out)


def bicubic_baseline(pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]]) -> dict[str, float]:
    """Mean PSNR of MATLAB-style bicubic upscaling of the LR images, per scale."""
    return {f"bicubic_x{s}": float(np.mean([shaved_psnr(hr, imresize(lr, s), s) for hr, lr in prs]))
            for s, prs in pairs.items()}


def validate(model, pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]],
             bicubic: dict[str, float]) -> dict[str, float]:
    """Held-out PSNR per scale (``psnr_x3``) and its gain over bicubic (``gain_x3``),
    plus ``gain_mean`` over the scales."""
    torch = require("torch", purpose="validation")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, float] = {}
    with torch.no_grad():
        for s, prs in pairs.items():
            vals = [shaved_psnr(hr, model(torch.from_numpy(lr)[None, None].to(device), s)[0, 0].cpu().numpy(), s)
                    for hr, lr in prs]
            out[f"psnr_x{s}"] = float(np.mean(vals))
            out[f"gain_x{s}"] = out[f"psnr_x{s}"] - bicubic[f"bicubic_x{s}"]
    out["gain_mean"] = float(np.mean([out[f"gain_x{s}"] for s in pairs]))
    model.train(was_training)
    return out


@dataclass
class SRRunResult:
    step: int
    stopped_by: str
    best_gain: float | None
    last_val: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""


def train(data_dir: str | Path, out_dir: str | Path, *, minutes: float, recipe: SRRecipe | None = None,
          resume: bool = False, max_steps: int | None = None, threads: int | str | None = 1,
          save_minutes: float = 3.0, handle_signals: bool = True,
          on_step: Callable[[int, float], None] | None = None, device: str | None = "auto",
          warmup_steps: int = 0, init_from: str | Path | None = None) -> SRRunResult:
    """Train (or resume) the multi-scale SR model; return where it stopped.

    Same contract as :func:`edgerestore.training.denoise.train`: ``minutes`` budget,
    ``max_steps`` global step limit, ``resume`` continues ``out_dir/last.pt`` (its
    recipe unless ``recipe`` is given, see :meth:`SRRecipe.resume`), ``last.pt`` saved every
    ``save_minutes`` and at exit, SIGINT/SIGTERM stop the run cleanly, ``device`` and
    ``warmup_steps`` likewise. ``init_from``: start a new run (not ``resume``) from the
    EMA weights of another SR checkpoint with the same architecture and config (e.g. to
    fine-tune the bicubic-trained model on ``degradation: real``); its step count starts
    at 0 and the source is recorded (``init_from`` in the checkpoints, ``init`` in the log).

    With ``degradation: real`` validation also reports the held-out images degraded once
    from a fixed seed (``real_psnr_x3``, ``real_gain_x3``, ``real_gain_mean``), and
    ``best.pt`` keeps the best ``gain_both`` (mean of the clean and degraded mean gains).
    """
    torch = require("torch", purpose="training a super-resolution model")
    out, ckpt = open_run_dir(out_dir, resume)
    last_path, best_path = out / "last.pt", out / "best.pt"
    logj = JsonlLog(out / "log.jsonl")
    tuner = ThreadTuner(torch, threads)
    if ckpt is not None and recipe is None:
        recipe = SRRecipe(**ckpt["recipe"])
    recipe = recipe or SRRecipe()

    files = D.list_images(data_dir)
    train_files, held_files = D.split_holdout(files, recipe.holdout_every)
    train_imgs = [D.load_gray(f) for f in train_files]
    held_imgs = [D.load_gray(f) for f in held_files]
    real = recipe.degradation == "real"
    held_pairs = {s: make_pairs(held_imgs, s) for s in recipe.scales}
    bicubic = bicubic_baseline(held_pairs) if held_imgs else {}
    held_real = {s: degraded_pairs(held_imgs, s, recipe.seed) for s in recipe.scales} if real and held_imgs else {}
    bicubic_real = bicubic_baseline(held_real) if held_real else {}

    device = resolve_device(torch, device)
    parts = build_training_parts(torch, recipe, device)
    model, opt, ema, eval_model = parts.model, parts.optimizer, parts.ema, parts.eval_model
    if real:
        mix = recipe.mix()
        sampler = RealPatchSampler(train_imgs, recipe.lr_patch, recipe.batch,
                                   np.random.default_rng(recipe.seed), Degrader(mix, seed=recipe.seed + 1))
        sampler.check(recipe.scales)
    else:
        train_pairs = {s: make_pairs(train_imgs, s) for s in recipe.scales}
        sampler = SRPatchSampler(train_pairs, recipe.lr_patch, recipe.batch, np.random.default_rng(recipe.seed))
    st = resume_state(ckpt, model=model, optimizer=opt, ema=ema, sampler=sampler,
                      batch=recipe.batch, best_key="best_gain")
    start_step = st.step
    logj.step = st.step
    init_info = None
    if init_from is not None:
        if ckpt is not None:
            raise InputError("init_from starts a new run; it cannot be combined with resume")
        init_info = init_weights(init_from, recipe, model, ema)

    provenance_base = {
        "training_data": str(Path(data_dir).name),
        "training_files": len(train_files),
        "heldout_files": [f.name for f in held_files],
        "heldout_bicubic": bicubic,
        "lr_generation": ("MATLAB-style antialiased bicubic (edgerestore.resize.downscale), rounded to 8 bits"
                          if not real else
                          f"edgerestore.training.degrade (random kernels, blur, noise, JPEG/H.264; "
                          f"{recipe.clean_share:g} of the patches MATLAB-style bicubic only), rounded to 8 bits"),
    }
    if real:
        provenance_base["heldout_bicubic_real"] = bicubic_real
    if init_info is not None:
        provenance_base["init_from"] = init_info
    elif ckpt is not None and ckpt.get("init_from"):
        provenance_base["init_from"] = ckpt["init_from"]

    def save(kind: str) -> None:
        header = checkpoint_header(recipe, st, best_key="best_gain", task="super_resolution",
                                   **provenance_base)
        save_checkpoint(checkpoint_payload(kind, header, parts, sampler),
                        last_path if kind == "last" else best_path)

    loss_fn = torch.nn.functional.l1_loss if recipe.loss == "l1" else torch.nn.functional.mse_loss

    def train_step(step: int):
        scale = recipe.scales[step % len(recipe.scales)]
        lo, hi = (torch.from_numpy(a).to(device, non_blocking=True) for a in sampler.next(scale))
        lr = recipe.lr_at(step) * warmup_factor(step, start_step, warmup_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(torch, device, recipe.precision):
            pred = model(lo, scale)
        loss = loss_fn(pred.float(), hi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(torch, model, step + 1)
        return loss, lr

    def run_validation() -> dict[str, float]:
        eval_model.load_state_dict(ema.shadow)
        val = validate(eval_model, held_pairs, bicubic)
        if real:
            val.update({f"real_{k}": v for k, v in validate(eval_model, held_real, bicubic_real).items()})
            val["gain_both"] = 0.5 * (val["gain_mean"] + val["real_gain_mean"])
        return val

    logj("start", resume=bool(ckpt), recipe=asdict(recipe), minutes=minutes, threads=threads,
         device=device, warmup_steps=warmup_steps, train_files=len(train_files), heldout=len(held_files),
         bicubic_heldout=bicubic, bicubic_heldout_real=bicubic_real)
    warning = precision_warning(torch, device, recipe.precision)
    if warning:
        logj("warning", message=warning)
    if init_info is not None:
        logj("init", **init_info)
    reason = run_loop(st, train_step=train_step, validate=run_validation if held_imgs else None,
                      best_key="gain_both" if real else "gain_mean", save=save, log=logj, tuner=tuner, batch=recipe.batch,
                      minutes=minutes, max_steps=max_steps, val_every=recipe.val_every,
                      log_every=recipe.log_every, save_minutes=save_minutes, last_path=last_path,
                      handle_signals=handle_signals, on_step=on_step)
    return SRRunResult(step=st.step, stopped_by=reason, best_gain=st.best, last_val=st.last_val,
                       checkpoint=str(last_path))


def init_weights(path: str | Path, recipe: SRRecipe, model, ema) -> dict[str, Any]:
    """Load the EMA weights of SR checkpoint ``path`` into ``model`` and ``ema`` (same
    architecture and config required); return where they came from."""
    src = load_checkpoint(path)
    if src.get("arch") != recipe.arch or dict(src.get("config", {})) != recipe.model_config():
        raise InputError(f"{path} holds {src.get('arch')} {src.get('config')}, this run trains "
                         f"{recipe.arch} {recipe.model_config()}: give the checkpoint's --features/--depth/--scales")
    model.load_state_dict(src["ema"])
    ema.load(model.state_dict())
    return {"path": str(path), "source_step": int(src.get("step", 0)), "config": src["config"],
            "best_gain": src.get("best_gain")}
