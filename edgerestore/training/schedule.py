"""The learning-rate schedule of every recipe, and the warm-up after a (re)start.

:class:`LearningRateSchedule`: ``lr`` until step ``decay_start``, then half a cosine
down to ``lr_min`` over ``decay_steps`` steps, then ``lr_min``. ``decay_start`` None or
negative (:data:`NEVER`, what ``--decay-start never`` stores) keeps the rate constant.
:func:`warmup_factor` multiplies it during the first steps of one call of a recipe's
``train`` (it is not part of the stored recipe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NEVER = -1
"""The ``decay_start`` that ``--decay-start never`` stores: no decay (as None)."""


@dataclass(frozen=True)
class LearningRateSchedule:
    """Constant ``lr``, then (optionally) a half cosine to ``lr_min`` (rates per step)."""

    lr: float
    lr_min: float
    decay_start: int | None = None
    decay_steps: int = 20000

    @property
    def decays(self) -> bool:
        """False when ``decay_start`` is None or negative: the rate stays ``lr``."""
        return self.decay_start is not None and self.decay_start >= 0

    def at(self, step: int) -> float:
        """The learning rate of global step ``step`` (0-based, the step about to run)."""
        if not self.decays or step < self.decay_start:
            return self.lr
        t = min(1.0, (step - self.decay_start) / max(1, self.decay_steps))
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + math.cos(math.pi * t))


def warmup_factor(step: int, start_step: int, warmup_steps: int) -> float:
    """Learning-rate multiplier ramping linearly from 1/warmup_steps to 1 over the first
    ``warmup_steps`` steps of a run (counted from ``start_step``, the step it started or
    resumed at); 1 when ``warmup_steps`` is 0. A restart straight at a much larger rate
    than the run ended with can knock the denoiser into the identity (see
    ``training/README.md``); Adam's moments adapt within a few hundred steps of a ramp."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step - start_step + 1) / warmup_steps)
