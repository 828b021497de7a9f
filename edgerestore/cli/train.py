"""``edgerestore train denoise``: run the denoiser training recipe (needs the train extra)."""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)
    d = sub.add_parser("denoise", help="train the FFDNet-style denoiser (noise-level map input)",
                       description="Train the denoiser on random patches of a folder of gray images. "
                       "Resumable (--resume) and time-boxed (--minutes); checkpoints, a JSONL log and "
                       "the best held-out weights go to --out.")
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
    g = d.add_argument_group("recipe (defaults: see edgerestore.training.denoise.Recipe)")
    for name, typ in (("features", int), ("depth", int), ("patch", int), ("batch", int),
                      ("lr", float), ("lr-min", float), ("decay-start", int), ("decay-steps", int),
                      ("ema-decay", float), ("seed", int), ("val-every", int), ("log-every", int),
                      ("sigma-max", float), ("holdout-every", int)):
        g.add_argument(f"--{name}", type=typ, default=None)


def run(args: argparse.Namespace) -> int:
    from edgerestore.training.denoise import Recipe, load_checkpoint, resume_recipe, train
    from pathlib import Path

    overrides = {k.replace("-", "_"): getattr(args, k.replace("-", "_"))
                 for k in ("features", "depth", "patch", "batch", "lr", "lr_min", "decay_start",
                           "decay_steps", "ema_decay", "seed", "val_every", "log_every", "sigma_max",
                           "holdout_every")}
    if args.resume:
        stored = load_checkpoint(Path(args.out) / "last.pt")["recipe"] if (Path(args.out) / "last.pt").exists() else None
        recipe = resume_recipe(stored, **overrides) if stored else None
    else:
        recipe = Recipe(**{k: v for k, v in overrides.items() if v is not None})
    result = train(args.data, args.out, minutes=args.minutes, recipe=recipe, resume=args.resume,
                   max_steps=args.max_steps,
                   threads=args.threads if args.threads == "auto" else int(args.threads), save_minutes=args.save_minutes)
    print(json.dumps({"step": result.step, "stopped_by": result.stopped_by,
                      "best_psnr25": result.best_psnr25, "last_val": result.last_val,
                      "checkpoint": result.checkpoint}))
    return 0


COMMAND = Command("train", "train a learned restorer (needs the train extra: torch)", add_arguments, run)
