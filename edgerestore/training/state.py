"""What a run trains and how it is saved and restored.

The run folder (:func:`open_run_dir`), the model, Adam and the EMA of the weights built
from a recipe (:func:`build_training_parts`), the loop counters (:class:`LoopState`),
and the checkpoint a run writes (:func:`checkpoint_header`, :func:`checkpoint_payload`)
and resumes from (:func:`resume_state`). The file format itself (atomic save, load,
what a checkpoint holds) is :mod:`edgerestore.models.checkpoint`. Nothing here imports
torch at module level: the functions that need it take the module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgerestore.errors import InputError
from edgerestore.models.checkpoint import CHECKPOINT_FORMAT, git_commit, load_checkpoint


def open_run_dir(out_dir: str | Path, resume: bool) -> tuple[Path, dict[str, Any] | None]:
    """Create the run folder and, with ``resume``, load its ``last.pt``.

    Refuses to resume a folder without ``last.pt`` and to start a new run over one that
    has it (a checkpoint is never overwritten by accident).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    if resume:
        if not last.exists():
            raise InputError(f"--resume given but there is no checkpoint {last}; "
                             "start without --resume or give the folder that holds last.pt")
        return out, load_checkpoint(last)
    if last.exists():
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose "
                         "another --out folder (refusing to overwrite a checkpoint)")
    return out, None


class Ema:
    """Exponential moving average of a model's ``state_dict`` (``shadow``), on the
    model's device. The decay ramps up as ``min(decay, (1 + step) / (10 + step))``."""

    def __init__(self, torch, model, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load(self, shadow: dict[str, Any]) -> None:
        """Copy ``shadow`` (e.g. from a checkpoint, on the CPU) into the live EMA tensors
        (on the training device)."""
        for k, v in shadow.items():  # detached tensors: no autograd involved
            self.shadow[k].copy_(v)

    def update(self, torch, model, step: int) -> None:
        """Fold the model's current weights in, after global step ``step``."""
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)


@dataclass
class TrainingParts:
    """What a recipe trains: the model, Adam, the EMA of the weights, and a second
    instance of the architecture that validation loads the EMA weights into."""

    model: Any
    optimizer: Any
    ema: Ema
    eval_model: Any


def build_training_parts(torch, recipe, device: str = "cpu") -> TrainingParts:
    """Seed torch with ``recipe.seed`` and build the recipe's architecture
    (``recipe.arch``, ``recipe.model_config()``) on ``device`` for training, in a fixed
    order so that a run is reproducible from its seed."""
    from edgerestore.models import load_arch

    arch = load_arch(recipe.arch)
    torch.manual_seed(recipe.seed)
    model = arch.build(**recipe.model_config()).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    ema = Ema(torch, model, recipe.ema_decay)
    return TrainingParts(model, optimizer, ema, arch.build(**recipe.model_config()).to(device))


@dataclass
class LoopState:
    """Counters of a training run, saved in every checkpoint."""

    step: int = 0
    patches_seen: int = 0
    train_seconds: float = 0.0
    best: float | None = None
    last_val: dict[str, float] = field(default_factory=dict)


def checkpoint_header(recipe, state: LoopState, *, best_key: str, **extra: Any) -> dict[str, Any]:
    """The non-tensor part of a checkpoint (see :mod:`edgerestore.models.checkpoint`):
    format, architecture, config, recipe, loop counters, the best validation figure under
    ``best_key`` (``best_psnr25``, ``best_gain``), the git commit, then ``extra``."""
    return {
        "format": CHECKPOINT_FORMAT, "arch": recipe.arch, "config": recipe.model_config(),
        "recipe": asdict(recipe), "step": state.step, "patches_seen": state.patches_seen,
        "train_seconds": state.train_seconds, best_key: state.best, "last_val": state.last_val,
        "commit": git_commit(), **extra,
    }


def checkpoint_payload(kind: str, header: dict[str, Any], parts: TrainingParts, sampler) -> dict[str, Any]:
    """``header`` plus the tensors of a ``last`` checkpoint (weights, Adam, EMA, sampler
    RNG: enough to resume exactly) or of a ``best`` one (the EMA weights only)."""
    payload = dict(header)
    if kind == "last":
        payload.update(model=parts.model.state_dict(), optimizer=parts.optimizer.state_dict(),
                       ema=parts.ema.shadow, rng=sampler.state())
    else:
        payload.update(ema=parts.ema.shadow)
    return payload


def resume_state(ckpt: dict[str, Any] | None, *, model, optimizer, ema: Ema, sampler,
                 batch: int, best_key: str) -> LoopState:
    """Load a checkpoint's weights, optimizer, EMA and sampler RNG into the live objects
    (in place) and return its loop counters; a fresh LoopState when ``ckpt`` is None.

    ``best_key`` names the checkpoint field holding the best validation figure
    (``best_psnr25`` for the denoiser, ``best_gain`` for SR).
    """
    st = LoopState()
    if ckpt is None:
        return st
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])  # moves its state to the parameters' device
    ema.load(ckpt["ema"])
    sampler.set_state(ckpt["rng"])
    st.step = int(ckpt["step"])
    st.best = ckpt.get(best_key)
    st.patches_seen = int(ckpt.get("patches_seen", st.step * batch))
    st.train_seconds = float(ckpt.get("train_seconds", 0.0))
    st.last_val = dict(ckpt.get("last_val") or {})
    return st
