"""The fields and rules every training recipe shares (:class:`RecipeBase`).

A recipe is a frozen dataclass of hyper-parameters, stored in every checkpoint (as
``dataclasses.asdict``) so that a run resumes with the recipe it started with. The
denoiser's :class:`~edgerestore.training.denoise.Recipe` and super-resolution's
:class:`~edgerestore.training.sr.SRRecipe` extend this base with their own fields and
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from edgerestore.training.device import check_precision
from edgerestore.training.schedule import LearningRateSchedule

R = TypeVar("R", bound="RecipeBase")


@dataclass(frozen=True, kw_only=True)
class RecipeBase:
    """Hyper-parameters shared by the recipes (each recipe sets the defaults of
    ``arch``, ``features``, ``depth``, ``batch``, ``val_every`` and ``log_every``).

    ``arch``: the architecture module (:func:`edgerestore.models.load_arch`);
    ``features``/``depth``: its width and number of conv layers; ``batch``: patches per
    step. ``lr``, ``lr_min``, ``decay_start``, ``decay_steps``: the learning-rate
    schedule (:class:`~edgerestore.training.schedule.LearningRateSchedule`: constant
    ``lr``, then half a cosine to ``lr_min`` over ``decay_steps`` steps from step
    ``decay_start``; None or negative, ``--decay-start never``, keeps it constant).
    ``ema_decay``: of the exponential moving average of the weights that validation and
    export use. ``seed``: of every random draw. ``holdout_every``: every n-th training
    file is held out for validation; ``val_every``/``log_every``: steps between
    validations (0: none) and ``train`` log lines. ``precision``: ``fp32``, or ``bf16``
    (forward and backward under bfloat16 autocast, see
    :func:`edgerestore.training.device.autocast`); validation is always fp32.
    """

    arch: str
    features: int
    depth: int
    batch: int
    lr: float = 1e-3
    lr_min: float = 1e-5
    decay_start: int | None = None
    decay_steps: int = 20000
    ema_decay: float = 0.999
    seed: int = 20261123
    holdout_every: int = 50
    val_every: int
    log_every: int
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_precision(self.precision)

    def model_config(self) -> dict[str, Any]:
        """The keyword arguments of the architecture's ``build``."""
        raise NotImplementedError

    @property
    def schedule(self) -> LearningRateSchedule:
        """The learning-rate schedule these fields describe."""
        return LearningRateSchedule(lr=self.lr, lr_min=self.lr_min, decay_start=self.decay_start,
                                    decay_steps=self.decay_steps)

    def lr_at(self, step: int) -> float:
        """The scheduled learning rate of global step ``step`` (before warm-up and any
        ``lr_scale`` of a run)."""
        return self.schedule.at(step)

    @classmethod
    def from_options(cls: type[R], **options: Any) -> R:
        """A recipe from the given options; None means "the default"."""
        return cls(**{k: v for k, v in options.items() if v is not None})

    @classmethod
    def resume(cls: type[R], stored: dict[str, Any], **overrides: Any) -> R:
        """The recipe stored in a checkpoint (``ckpt["recipe"]``) with the given non-None
        fields replaced (a field the stored recipe lacks takes its default)."""
        recipe = cls(**stored)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(recipe, **given) if given else recipe
