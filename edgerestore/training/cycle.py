"""One time-boxed training cycle that ends annealed, whatever the machine's speed.

A learning-rate schedule is written in steps, but a lease on a GPU (or a session on a
shared CPU) is measured in minutes, and how many steps fit is only known once the run
is going. :func:`annealed_cycle` splits the budget in two calls of
:func:`edgerestore.training.denoise.train`:

1. *constant*: the first ``constant_fraction`` of the budget at the recipe's rate (after
   a linear warm-up), started from another checkpoint's EMA weights (``init_from``,
   grown to a larger width/depth when asked) or resumed from ``out_dir``;
2. *anneal*: resumed from phase 1's ``last.pt`` with a half-cosine from ``lr`` to
   ``lr_min`` over the steps that fit in the time left (phase 1's step rate, less one
   timed validation per planned validation and phase 1's start-up time), and
   ``max_steps`` at its end, so the run stops annealed and validated instead of being
   cut off mid-schedule.

Both phases are ordinary resumable runs: their checkpoints and ``log.jsonl`` are the
usual ones, and the schedule of phase 2 is stored in its recipe, so an interrupted
phase 2 resumes with ``edgerestore train denoise --resume`` like any run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgerestore.errors import InputError
from edgerestore.models.checkpoint import load_checkpoint
from edgerestore.training.denoise import Recipe, train

#: share of phase 2's estimated step time planned for steps: the rest absorbs a phase 2
#: that steps slower than phase 1 did (on a shared CPU; measured in training/README.md).
ANNEAL_MARGIN = 0.9


def annealed_cycle(data_dir: str | Path, out_dir: str | Path, *, minutes: float, recipe: Recipe,
                   resume: bool = False, init_from: str | Path | None = None,
                   constant_fraction: float = 0.3,
                   validations: int = 8, warmup_steps: int = 300, device: str | None = "auto",
                   threads: int | str | None = "auto", sampler: str = "auto",
                   save_minutes: float = 3.0, margin: float = ANNEAL_MARGIN) -> dict[str, Any]:
    """Train for ``minutes`` (wall clock, from this call) and end with an annealed,
    validated ``best.pt``/``last.pt`` in ``out_dir``; return a summary (steps and step
    rate per phase, held-out PSNRs, best PSNR at sigma 25).

    ``recipe``: the run's recipe (its ``decay_start``, ``decay_steps`` and ``val_every``
    are replaced: phase 1 is constant and unvalidated, phase 2's decay is computed);
    ``resume``: continue ``out_dir/last.pt``; ``init_from``: start a new run from that
    checkpoint's EMA weights (neither: a new run from scratch). ``warmup_steps``: linear
    learning-rate warm-up at the start of phase 1 (phase 2 continues without one).
    ``validations``: how many held-out validations phase 2 makes (the last one at its
    final step). ``margin``: the share of phase 2's estimated step time that is planned
    for steps. Other arguments as for :func:`~edgerestore.training.denoise.train`.
    """
    if not 0.0 < constant_fraction < 1.0:
        raise InputError(f"constant_fraction must be in (0, 1), got {constant_fraction}")
    if minutes <= 0:
        raise InputError(f"minutes must be > 0, got {minutes}")
    if not 0.0 < margin <= 1.0:
        raise InputError(f"margin must be in (0, 1], got {margin}")
    t0 = time.monotonic()
    out = Path(out_dir)
    phase1 = train(data_dir, out, minutes=minutes * constant_fraction,
                   recipe=replace(recipe, decay_start=None, val_every=0),
                   resume=resume, init_from=init_from, warmup_steps=warmup_steps, device=device,
                   threads=threads, sampler=sampler, save_minutes=save_minutes)
    ckpt = load_checkpoint(out / "last.pt")
    steps1 = phase1.step
    seconds1 = time.monotonic() - t0
    rate = _steps_per_second(out / "log.jsonl")
    summary: dict[str, Any] = {"phase1": {"step": phase1.step, "steps_per_s": rate, "seconds": seconds1,
                                          "stopped_by": phase1.stopped_by}}
    if phase1.stopped_by == "time_budget" and rate:
        # what phase 2 spends besides steps: one validation (timed here, which also
        # gives phase 1's held-out PSNR) per planned validation, and the start-up and
        # final save that phase 1 took beyond its budget
        val_seconds, heldout = _timed_validation(data_dir, ckpt, device)
        summary["phase1"].update(heldout=heldout, validation_s=val_seconds)
        startup = max(0.0, seconds1 - minutes * constant_fraction * 60.0)
        left = minutes * 60.0 - (time.monotonic() - t0) - startup - validations * val_seconds
    else:
        left = 0.0
    if phase1.stopped_by != "time_budget" or left <= 0 or not rate:
        # interrupted (a signal), or nothing to anneal with: leave phase 1's resumable state
        why = phase1.stopped_by if phase1.stopped_by != "time_budget" else (
            "no_time_left" if left <= 0 else "no_step_rate")
        summary.update(phase2=None, stopped_by=why, best_psnr25=phase1.best_psnr25,
                       seconds=time.monotonic() - t0)
        return summary
    n = max(validations, int(rate * left * margin))
    # validations fall on multiples of val_every of the global step: pick it so that one
    # lands on the last step, at or just below steps1 + n (rounding up would overrun)
    multiples = max(1, round((steps1 + n) * max(1, validations) / n))
    val_every = max(1, (steps1 + n) // multiples)
    end = multiples * val_every
    stored = ckpt["recipe"]
    recipe2 = Recipe.resume(stored, decay_start=steps1, decay_steps=end - steps1, val_every=val_every)
    minutes_left = (minutes * 60.0 - (time.monotonic() - t0)) / 60.0  # max_steps should stop it first
    phase2 = train(data_dir, out, minutes=minutes_left, recipe=recipe2, resume=True, max_steps=end,
                   warmup_steps=0, device=device, threads=threads, sampler=sampler,
                   save_minutes=save_minutes)
    summary["phase2"] = {"start": steps1, "end": end, "step": phase2.step, "val_every": val_every,
                         "stopped_by": phase2.stopped_by}
    summary.update(stopped_by=phase2.stopped_by, best_psnr25=phase2.best_psnr25, last_val=phase2.last_val,
                   seconds=time.monotonic() - t0)
    return summary


def _timed_validation(data_dir: str | Path, ckpt: dict[str, Any],
                      device: str | None) -> tuple[float, dict[str, float]]:
    """Seconds one held-out validation of ``ckpt``'s EMA weights takes, and its PSNRs."""
    from edgerestore._lazy import require
    from edgerestore.models import load_arch
    from edgerestore.training import data as D
    from edgerestore.training.device import resolve_device
    from edgerestore.training.denoise import validate

    torch = require("torch", purpose="training a denoiser")
    recipe = Recipe(**ckpt["recipe"])
    held = [D.load_gray(f) for f in D.split_holdout(D.list_images(data_dir), recipe.holdout_every)[1]]
    if not held:
        return 0.0, {}
    model = load_arch(recipe.arch).build(**recipe.model_config()).to(resolve_device(torch, device))
    model.load_state_dict(ckpt["ema"])
    t = time.monotonic()
    psnrs = validate(model, held, recipe.seed, noise=recipe.noise)
    return time.monotonic() - t, psnrs


def _log_lines(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _steps_per_second(log_path: Path) -> float:
    """Training steps per second of the last run in ``log_path``, from the second half
    of its ``train`` lines (the first steps pay for cuDNN's kernel search)."""
    lines = _log_lines(log_path)
    starts = [i for i, d in enumerate(lines) if d["kind"] == "start"]
    run = lines[starts[-1]:] if starts else lines
    batch = int(run[0].get("recipe", {}).get("batch", 0)) if run and run[0]["kind"] == "start" else 0
    rates = [d["patches_per_s"] for d in run if d["kind"] == "train"]
    if not rates or not batch:
        return 0.0
    tail = rates[len(rates) // 2:]
    # the windows are equal in steps, so the run's rate is their harmonic mean (a
    # median or plain mean would overlook the slow windows: saves, thread checks)
    return len(tail) / sum(batch / r for r in tail)
