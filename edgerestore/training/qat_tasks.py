"""What ``train qat`` does differently per task: one small class per task, the rest of
the run (plan, fake quantization, teacher loss, loop, export) is shared in
:mod:`edgerestore.training.qat_run`.

A task knows how to build the model from the source checkpoint, what it is fed
(calibration feeds for ORT's INT8 model, training batches: inputs and the clean target),
how it is validated on the held-out images, where its outputs are clipped, which tensors
start at a fixed range, and how it is exported.

* :class:`DenoiseTask`: the FFDNet-style denoiser; patches with the noise the runtime
  feeds (Gaussian, clipped and rounded to 8 bits, the true sigma as the map),
  validation in PSNR at sigma 15 / 25 / 50; starting ranges: entropy calibration.
* :class:`SuperResolutionTask`: one scale of the ESPCN-class multi-scale model (its
  shared body with the scale's tail and skip, what ``export --scale`` makes); LR/HR
  patches from the training recipe's own samplers and degradations
  (:mod:`edgerestore.training.sr`: ``real`` or ``bicubic``, as stored in the
  checkpoint), validation in held-out luma PSNR at that scale, clean (bicubic LR) and
  degraded. The image path stays in float by default (``keep_float``: the skip conv
  and the sum ``tail + skip``, one 1-to-s*s 5x5 conv and an add): it carries the whole
  picture, whose 8-bit rounding (twice: the skip's output and the sum) costs more than
  all the body's layers on smooth images where FP32 is at 37 dB and more, and the
  fine-tuned tail learns to undo part of that rounding, so it cannot be taken out
  afterwards (docs/calibration.md). Starting ranges: minmax calibration (entropy's clip
  the body's activations and cost several times more). The outputs are clipped to
  [0, 1] in the loss (the runtime clips them), and for the ``cpu`` target the graph
  input and, when the sum is quantized (``keep_float`` without it), the output tensor
  are held at the range [0, 1]: step 1/255 with zero point 0 is the 8-bit frames' own
  grid, so rounding an 8-bit input is exact and rounding the output costs about what
  writing the 8-bit frame costs anyway.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.metrics import psnr
from edgerestore.models import load_arch
from edgerestore.training import data as D
from edgerestore.training.qat import QatPlan

QAT_VAL_SIGMAS = (15.0, 25.0, 50.0)
#: Held-out chrominance-like check (``chroma_share`` > 0): the held-out images at this
#: contrast around mid-gray, at this sigma (25 on a colour frame is ~18 on its chroma planes).
CHROMA_VAL_CONTRAST = 0.1
CHROMA_VAL_SIGMA = 18.0
CALIBRATION_CROPS = 16
CALIBRATION_CROP = 96


def clipped_noisy(clean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (N x 1 x H x W in [0, 1]) plus Gaussian noise of ``sigma`` (per patch, on
    the 0-1 scale), clipped to [0, 1] and rounded to 8-bit levels: what the runtime feeds
    a model from an 8-bit frame."""
    return D.quantize8(clean + rng.standard_normal(clean.shape, dtype=np.float32) * sigma.reshape(-1, 1, 1, 1))


def validate_clipped(model, images: list[np.ndarray], seed: int, sigmas=QAT_VAL_SIGMAS) -> dict[str, float]:
    """Mean PSNR (dB) of a denoiser on ``images`` with seeded 8-bit clipped noise, per sigma."""
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


class DenoiseTask:
    """The denoiser (``TASK`` ``denoise``)."""

    default_patch = 64
    default_keep_float: tuple[str, ...] = ()
    best_key = "psnr25"
    calibration_method = "entropy"

    def __init__(self, ckpt: Mapping[str, Any], recipe) -> None:
        if recipe.scale is not None:
            raise InputError(f"--scale {recipe.scale} applies to super-resolution checkpoints; this one "
                             "holds a denoiser")
        self.ckpt, self.recipe = ckpt, recipe
        self.arch = load_arch(ckpt["arch"])
        self.input_names = list(self.arch.INPUT_NAMES)

    def build(self):
        """The source model with the checkpoint's EMA weights (output clip on)."""
        model = self.arch.build(**self.ckpt["config"], clip_output=True)
        model.load_state_dict(self.ckpt["ema"])
        return model

    def calibration_feeds(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Noisy crops at noise levels spread over the recipe's range."""
        r = self.recipe
        rng = np.random.default_rng(r.seed)
        feeds = []
        for k in range(CALIBRATION_CROPS):
            im = images[int(rng.integers(len(images)))]
            c = min(CALIBRATION_CROP, *im.shape) // 2 * 2
            y, x = int(rng.integers(0, im.shape[0] - c + 1)), int(rng.integers(0, im.shape[1] - c + 1))
            clean = im[None, None, y:y + c, x:x + c]
            sigma = np.array([r.sigma_min + (r.sigma_max - r.sigma_min) * k / (CALIBRATION_CROPS - 1)],
                             np.float32) / 255.0
            feeds.append({"image": clipped_noisy(clean, sigma, rng),
                          "noise_level": np.full(clean.shape, sigma[0], np.float32)})
        return feeds

    def sampler(self, images: list[np.ndarray], rng: np.random.Generator):
        r = self.recipe
        return D.PatchSampler(images, r.patch, r.batch, (r.sigma_min, r.sigma_max), rng)

    def batch(self, sampler) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """(model inputs, clean target) of one training step."""
        clean, _, level = sampler.next()
        clean = D.chroma_like(clean, self.recipe.chroma_share, sampler.rng)
        noisy = clipped_noisy(clean, level[:, 0, 0, 0], sampler.rng)
        return (noisy, np.ascontiguousarray(level)), clean

    def loss_view(self, y):
        """The output as the loss sees it (the denoiser trains unclipped, as in training)."""
        return y

    def start_ranges(self, plan: QatPlan) -> QatPlan:
        return plan

    def validator(self, held: list[np.ndarray]):
        """A function model -> held-out validation (dict of PSNRs): :func:`validate_clipped`
        at :data:`QAT_VAL_SIGMAS`, plus ``psnr18_chroma`` (the images made
        chrominance-like) when the recipe trains on such patches."""
        seed, chroma = self.recipe.seed, self.recipe.chroma_share > 0
        flat = [np.float32(0.5) + np.float32(CHROMA_VAL_CONTRAST) * (im - im.mean()) for im in held]

        def run(model) -> dict[str, float]:
            out = validate_clipped(model, held, seed)
            if chroma:
                got = validate_clipped(model, flat, seed, sigmas=(CHROMA_VAL_SIGMA,))
                out[f"psnr{CHROMA_VAL_SIGMA:g}_chroma"] = got[f"psnr{CHROMA_VAL_SIGMA:g}"]
            return out
        return run

    def export(self, checkpoint_path, output, *, name: str | None, extra: Mapping[str, Any]):
        from edgerestore.export.from_checkpoint import export_checkpoint

        return export_checkpoint(f"{self.arch.ARCH}:{checkpoint_path}", output, name=name,
                                 extra_provenance=extra)


class SuperResolutionTask:
    """One scale of a multi-scale super-resolution checkpoint (``TASK``
    ``super_resolution``); ``recipe.patch`` is the LR patch edge."""

    default_patch = 32
    CALIBRATION_BATCHES = 4
    # the starting ranges: minmax, since entropy's clip the body's ReLU outputs (docs/calibration.md)
    calibration_method = "minmax"

    def __init__(self, ckpt: Mapping[str, Any], recipe) -> None:
        from edgerestore.training.sr import SRRecipe

        self.ckpt, self.recipe = ckpt, recipe
        self.arch = load_arch(ckpt["arch"])
        self.input_names = list(self.arch.INPUT_NAMES)
        try:
            self.scale = self.arch.check_scale(ckpt["config"], recipe.scale)
        except InputError as exc:
            raise InputError(f"train qat: {exc}") from None
        self.source_recipe = SRRecipe(**ckpt["recipe"])
        self.best_key = f"psnr_x{self.scale}"
        self.default_keep_float = (f"/skips.{self.scale}/Conv", "/Add")

    def build(self):
        """The model of this scale (shared body, its tail and skip), EMA weights, clip on."""
        model = self.arch.build(**self.ckpt["config"], scale=self.scale, clip_output=True)
        model.load_state_dict(self.arch.state_for_scale(self.ckpt["ema"], self.scale))
        return model

    def sampler(self, images: list[np.ndarray], rng: np.random.Generator, seed_offset: int = 0):
        """The SR training's own sampler with its degradations (``real``: on the fly, the
        checkpoint's mix; ``bicubic``: pairs made once)."""
        from edgerestore.training import sr
        from edgerestore.training.degrade import Degrader

        r, src = self.recipe, self.source_recipe
        if src.degradation == "real":
            s = sr.RealPatchSampler(images, r.patch, r.batch, rng,
                                    Degrader(src.mix(), seed=r.seed + 1 + seed_offset))
            s.check((self.scale,))
            return s
        return sr.SRPatchSampler({self.scale: sr.make_pairs(images, self.scale)}, r.patch, r.batch, rng)

    def calibration_feeds(self, images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """LR patch batches from a sampler of their own (the training draws stay untouched)."""
        s = self.sampler(images, np.random.default_rng(self.recipe.seed + 7), seed_offset=7)
        return [{self.input_names[0]: s.next(self.scale)[0]} for _ in range(self.CALIBRATION_BATCHES)]

    def batch(self, sampler) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        lo, hi = sampler.next(self.scale)
        return (lo,), hi

    def loss_view(self, y):
        """Clipped to [0, 1]: values outside are clipped by the model and the runtime, so
        neither their error nor the quantization range should be spent on them."""
        return y.clamp(0.0, 1.0)

    def start_ranges(self, plan: QatPlan) -> QatPlan:
        """The graph input and the output tensor of an asymmetric (``cpu``) plan are held
        at [0, 1] with step 1/255 (module docstring)."""
        points = [replace(p, zero_point=0, scale=1.0 / (p.qmax - p.qmin), fixed=True)
                  if p.where in ("graph_input", "model_output") and not p.symmetric else p
                  for p in plan.points]
        return replace(plan, points=points)

    def validator(self, held: list[np.ndarray]):
        """Held-out luma PSNR at this scale, output clipped as the runtime does: bicubic LR
        (``psnr_xS``, ``gain_xS`` over bicubic) and, for ``real`` checkpoints, LR degraded
        once from a fixed seed (``real_psnr_xS``)."""
        from edgerestore.training import sr

        s = self.scale
        clean = {s: sr.make_pairs(held, s)}
        clean_bicubic = sr.bicubic_baseline(clean)
        real = ({s: sr.degraded_pairs(held, s, self.recipe.seed)}
                if self.source_recipe.degradation == "real" else None)
        real_bicubic = sr.bicubic_baseline(real) if real else None

        def run(model) -> dict[str, float]:
            was = model.clip_output
            model.clip_output = True
            try:
                out = {k: v for k, v in sr.validate(model, clean, clean_bicubic).items() if k != "gain_mean"}
                if real:
                    out.update({f"real_{k}": v for k, v in sr.validate(model, real, real_bicubic).items()
                                if k != "gain_mean"})
            finally:
                model.clip_output = was
            return out
        return run

    def export(self, checkpoint_path, output, *, name: str | None, extra: Mapping[str, Any]):
        from edgerestore.export.from_checkpoint import export_checkpoint

        return export_checkpoint(f"{self.arch.ARCH}:{checkpoint_path}", output, name=name,
                                 extra_provenance=extra, scale=self.scale)


def qat_task(ckpt: Mapping[str, Any], recipe):
    """The task piece of ``ckpt``'s architecture (its ``TASK``)."""
    task = getattr(load_arch(ckpt["arch"]), "TASK", "denoise")
    if task == "denoise":
        return DenoiseTask(ckpt, recipe)
    if task == "super_resolution":
        return SuperResolutionTask(ckpt, recipe)
    raise InputError(f"train qat fine-tunes denoisers and super-resolution models; {ckpt['arch']} is a "
                     f"{task!r} model")
