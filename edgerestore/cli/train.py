"""``edgerestore train denoise|sr|qat``: run a training recipe (needs the train extra: torch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgerestore.cli import Command
from edgerestore.errors import InputError
from edgerestore.training.schedule import NEVER

# Steps of learning-rate warm-up after --resume or --init-from: a restart straight at a much
# larger rate can collapse the denoiser (training/README.md); Adam's moments settle in ~100 steps.
DEFAULT_RESUME_WARMUP = 300


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)
    d = sub.add_parser("denoise", help="train the FFDNet-style denoiser (noise-level map input)",
                       description="Train the denoiser on random patches of a folder of gray images. "
                       "Resumable (--resume) and time-boxed (--minutes); checkpoints, a JSONL log and "
                       "the best held-out weights go to --out.")
    _common_run_options(d)
    g = d.add_argument_group("recipe (defaults: see edgerestore.training.denoise.Recipe)")
    for name, typ in _DENOISE_FIELDS:
        g.add_argument(f"--{name}", type=typ, default=None, help=_RECIPE_HELP.get(name))
    d.add_argument("--rewind-from", metavar="CKPT", default=None,
                   help="with --resume: restart from the EMA weights of CKPT (e.g. best.pt after a "
                   "divergence) with fresh Adam moments and half the learning rate")
    d.add_argument("--sampler", choices=("auto", "numpy", "device"), default="auto",
                   help="where training patches are cut and noised: 'numpy' (one CPU core, "
                   "~6,000 patches/s), 'device' (on the training device: a gather and "
                   "torch.randn), or 'auto' (default: device on a GPU, numpy on the CPU)")
    d.add_argument("--init-from", metavar="CKPT", default=None,
                   help="start a new run from the EMA weights of CKPT, grown to --features/--depth "
                   "when those are larger (function-preserving: the grown model starts at CKPT's "
                   "quality); the schedule starts at step 0 with a warm-up")

    d.add_argument("--anneal-in-budget", action="store_true",
                   help="end the run annealed within --minutes: the first --constant-fraction of "
                   "the time at the constant --lr, then a cosine to --lr-min over the steps the "
                   "measured step rate fits in the rest, validated --validations times (use on a "
                   "time-boxed GPU lease; --decay-start/--decay-steps/--val-every are computed)")
    d.add_argument("--constant-fraction", type=float, default=0.3,
                   help="with --anneal-in-budget: share of --minutes before the decay (default 0.3)")
    d.add_argument("--validations", type=int, default=8,
                   help="with --anneal-in-budget: held-out validations during the decay (default 8)")

    s = sub.add_parser("sr", help="train the ESPCN-class luma super-resolution model (x2, x3, x4)",
                       description="Train one shared low-resolution body with a head per scale on "
                       "random aligned LR/HR patches of a folder of gray images (LR by MATLAB-style "
                       "antialiased bicubic downscaling). Resumable (--resume) and time-boxed "
                       "(--minutes); checkpoints, a JSONL log and the best held-out weights go to --out.")
    _common_run_options(s)
    g = s.add_argument_group("recipe (defaults: see edgerestore.training.sr.SRRecipe)")
    g.add_argument("--scales", type=_int_list, default=None, help="comma-separated, e.g. 2,3,4")
    g.add_argument("--loss", choices=("l1", "l2"), default=None)
    g.add_argument("--precision", choices=("fp32", "bf16"), default=None, help=_PRECISION_HELP)
    g.add_argument("--degradation", choices=("bicubic", "real"), default=None,
                   help="how LR patches are made: 'bicubic' (MATLAB-style antialiased, the default) or "
                   "'real' (random kernels incl. aliased ones, blur, noise, JPEG/H.264 on the fly: "
                   "edgerestore.training.degrade)")
    g.add_argument("--degradation-mix", type=_json_object, default=None, metavar="JSON",
                   help="with --degradation real: fields of edgerestore.training.degrade.DegradationMix "
                   "to override, e.g. '{\"kernel_weights\": [0.25, 0.4, 0.1, 0.05, 0.02, 0.18], \"noise_p\": 0.2}'")
    for name, typ in _SR_FIELDS:
        g.add_argument(f"--{name}", type=typ, default=None, help=_RECIPE_HELP.get(name))
    s.add_argument("--init-from", metavar="CKPT", default=None,
                   help="start a new run from the EMA weights of SR checkpoint CKPT (its recipe is the "
                   "base, the options given override it); the schedule starts at step 0 with a warm-up")

    q = sub.add_parser("qat", help="quantization-aware fine-tuning of a trained denoiser or upscaler for INT8",
                       description="Fine-tune a trained denoiser or one scale of a super-resolution "
                       "model (its checkpoint's EMA weights) with the INT8 rounding of one target "
                       "simulated, on the inputs the model was trained for (denoisers: 8-bit clipped "
                       "noise; super-resolution: the checkpoint's own degradations), the FP32 model "
                       "as teacher. Resumable (--resume) and time-boxed (--minutes). --export writes "
                       "the fine-tuned FP32 model with the learned ranges; quantize it with "
                       "'edgerestore calibrate FP32.onnx --method qat --target T --frames ...'.")
    q.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="the trained model's checkpoint, e.g. training/checkpoints/dn_gray/best.pt "
                   "or training/checkpoints/sr_real/best.pt (with --scale)")
    _common_run_options(q)
    q.add_argument("--target", choices=("cpu", "tensorrt"), default=None,
                   help="the INT8 model it is fine-tuned for (default: cpu)")
    g = q.add_argument_group("recipe (defaults: see edgerestore.training.qat_run.QatRecipe)")
    for name, typ in _QAT_FIELDS:
        g.add_argument(f"--{name}", type=typ, default=None, help=_QAT_HELP.get(name))
    q.add_argument("--export", metavar="FP32_ONNX", default=None,
                   help="at the end, write the fine-tuned FP32 model with its learned ranges here")


def _name_list(text: str) -> tuple[str, ...]:
    """Comma-separated names; 'none' (or nothing) is the empty tuple."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    return () if names in ((), ("none",)) else names


_QAT_FIELDS = (("lr", float), ("scale-lr", float), ("patch", int), ("batch", int), ("val-every", int),
               ("log-every", int), ("seed", int), ("loss", str), ("scale", int), ("keep-float", _name_list),
               ("chroma-share", float))

_QAT_HELP = {
    "keep-float": "comma-separated ONNX node names left in float in the fine-tuning and the INT8 "
                  "model ('none': none); default: none for denoisers, the skip conv and the final "
                  "add for super-resolution (give calibrate the same --keep-float)",
    "scale": "super-resolution: the scale (head) to fine-tune, e.g. 2; one run per scale, "
             "since each scale is its own INT8 file",
    "patch": "patch edge (super-resolution: of the LR patch); default 64 for denoisers, 32 for "
             "super-resolution",
    "chroma-share": "denoisers: share of patches made chrominance-like (low contrast around "
                    "mid-gray: the planes a gray model gets from colour footage); default 0",
}

_PRECISION_HELP = ("fp32 (default) or bf16: forward/backward under bfloat16 autocast, weights and "
                   "Adam in fp32; ~2x faster on CPUs with AVX512-BF16 and on GPUs, slower elsewhere")

_RECIPE_HELP = {
    "decay-start": "step where the cosine decay starts, or 'never' (constant lr)",
    "clip-grad": "clip the gradient norm to this many times its running mean (0: off)",
    "precision": _PRECISION_HELP,
    "clean-share": "with --degradation real: share of patches made by plain MATLAB-style bicubic (default 0.3)",
}


def _step_or_never(text: str) -> int:
    """A step number, or 'never'/'none' (stored as -1: no learning-rate decay)."""
    if text.strip().lower() in ("never", "none"):
        return NEVER
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a step number or 'never', got {text!r}") from None


_DENOISE_FIELDS = (("features", int), ("depth", int), ("patch", int), ("batch", int), ("lr", float),
                   ("lr-min", float), ("decay-start", _step_or_never), ("decay-steps", int),
                   ("ema-decay", float), ("seed", int), ("val-every", int), ("log-every", int),
                   ("sigma-max", float), ("holdout-every", int), ("clip-grad", float), ("precision", str),
                   ("noise", str), ("float-share", float), ("pg-share", float), ("h264-share", float),
                   ("crf-min", int), ("crf-max", int))

_SR_FIELDS = (("features", int), ("depth", int), ("lr-patch", int), ("batch", int), ("lr", float),
              ("lr-min", float), ("decay-start", _step_or_never), ("decay-steps", int), ("ema-decay", float),
              ("seed", int), ("val-every", int), ("log-every", int), ("holdout-every", int),
              ("clean-share", float))


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _common_run_options(d: argparse.ArgumentParser) -> None:
    d.add_argument("--data", required=True, metavar="DIR",
                   help="folder of training images, e.g. ../shared/data/train/Train400")
    d.add_argument("--out", required=True, metavar="CKPT_DIR", help="checkpoint folder (last.pt, best.pt, log.jsonl)")
    d.add_argument("--minutes", type=float, required=True, help="wall-clock budget of this run")
    d.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False,
                   help="continue from CKPT_DIR/last.pt (its recipe is kept; the options below "
                   "that are given override it)")
    d.add_argument("--max-steps", type=int, default=None, help="stop at this global step")
    d.add_argument("--threads", default="auto",
                   help="torch CPU threads: a number, or 'auto' (default): 1 or 2, whichever "
                   "steps faster on a CPU shared with other jobs, re-checked every 2 minutes")
    d.add_argument("--save-minutes", type=float, default=3.0, help="write last.pt this often (default 3)")
    d.add_argument("--device", default="auto",
                   help="auto (default: a CUDA GPU when torch sees one, else the CPU), cpu, or cuda[:N]")
    d.add_argument("--warmup", type=int, default=None, metavar="STEPS",
                   help="ramp the learning rate up linearly over the first STEPS steps of this run "
                   "(default: 300 with --resume, 0 for a new run); 0 resumes bit-exactly")


def _warmup(args: argparse.Namespace) -> int:
    if args.warmup is not None:
        if args.warmup < 0:
            raise InputError(f"--warmup must be >= 0 steps, got {args.warmup}")
        return args.warmup
    return DEFAULT_RESUME_WARMUP if args.resume or getattr(args, "init_from", None) else 0


def _options(args: argparse.Namespace, fields) -> dict:
    """The recipe options given on the command line (None: not given)."""
    return {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _ in fields}


def _recipe(recipe_cls, args: argparse.Namespace, options: dict):
    """This run's recipe: the options over the defaults, or with --resume over the recipe
    stored in CKPT_DIR/last.pt (None when there is none: ``train`` then says so)."""
    if not args.resume:
        return recipe_cls.from_options(**options)
    from edgerestore.models.checkpoint import load_checkpoint

    last = Path(args.out) / "last.pt"
    return recipe_cls.resume(load_checkpoint(last)["recipe"], **options) if last.exists() else None


def _threads(args: argparse.Namespace) -> int | str:
    return args.threads if args.threads == "auto" else int(args.threads)


def _run_sr(args: argparse.Namespace) -> int:
    from edgerestore.training.sr import SRRecipe, train

    options = _options(args, _SR_FIELDS)
    options.update(scales=args.scales, loss=args.loss, precision=args.precision, degradation=args.degradation,
                   degradation_mix=args.degradation_mix)
    if args.init_from and not args.resume:
        from edgerestore.models.checkpoint import load_checkpoint

        recipe = SRRecipe.resume(load_checkpoint(args.init_from)["recipe"], **options)
    else:
        recipe = _recipe(SRRecipe, args, options)
    result = train(args.data, args.out, minutes=args.minutes, recipe=recipe, resume=args.resume,
                   max_steps=args.max_steps, threads=_threads(args), save_minutes=args.save_minutes,
                   device=args.device, warmup_steps=_warmup(args),
                   init_from=args.init_from)
    print(json.dumps({"step": result.step, "stopped_by": result.stopped_by, "best_gain": result.best_gain,
                      "last_val": result.last_val, "checkpoint": result.checkpoint}))
    return 0


def _run_qat(args: argparse.Namespace) -> int:
    from edgerestore.training.qat_run import QatRecipe, export_qat, train_qat

    if args.device not in ("auto", "cpu"):
        raise InputError("train qat runs on the CPU for now: drop --device")
    options = {k: v for k, v in _options(args, _QAT_FIELDS).items() if v is not None}
    if args.target is not None:
        options["target"] = args.target
    recipe = None if args.resume else QatRecipe(**options)
    result = train_qat(args.checkpoint, args.data, args.out, minutes=args.minutes, recipe=recipe,
                       resume=args.resume, overrides=options if args.resume else None, max_steps=args.max_steps, threads=_threads(args),
                       save_minutes=args.save_minutes)
    if args.export:
        result["export"] = str(export_qat(args.out, args.export))
    print(json.dumps(result))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.task == "sr":
        return _run_sr(args)
    if args.task == "qat":
        return _run_qat(args)
    from edgerestore.training.denoise import Recipe, train

    recipe = _recipe(Recipe, args, _options(args, _DENOISE_FIELDS))
    if args.anneal_in_budget:
        return _run_annealed_cycle(args, recipe or Recipe(), _threads(args))
    result = train(args.data, args.out, minutes=args.minutes, recipe=recipe, resume=args.resume,
                   max_steps=args.max_steps, threads=_threads(args), save_minutes=args.save_minutes,
                   rewind_from=args.rewind_from, device=args.device, warmup_steps=_warmup(args),
                   init_from=args.init_from, sampler=args.sampler)
    print(json.dumps({"step": result.step, "stopped_by": result.stopped_by,
                      "best_psnr25": result.best_psnr25, "last_val": result.last_val,
                      "checkpoint": result.checkpoint}))
    return 0


def _run_annealed_cycle(args: argparse.Namespace, recipe, threads) -> int:
    from edgerestore.training.cycle import annealed_cycle

    for flag in ("max_steps", "rewind_from"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} cannot be combined with --anneal-in-budget "
                             "(it chooses where the run ends)")
    summary = annealed_cycle(args.data, args.out, minutes=args.minutes, recipe=recipe, resume=args.resume,
                             init_from=args.init_from, constant_fraction=args.constant_fraction,
                             validations=args.validations, warmup_steps=_warmup(args),
                             device=args.device, threads=threads, sampler=args.sampler,
                             save_minutes=args.save_minutes)
    print(json.dumps(summary))
    return 0


COMMAND = Command("train", "train a learned restorer (needs the train extra: torch)", add_arguments, run)
