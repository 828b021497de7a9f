"""Training checkpoint files: what they hold, saving them atomically, loading them.

The one place that reads and writes checkpoints, below both the training recipes
(:mod:`edgerestore.training`, which save and resume them) and the exporter
(:mod:`edgerestore.export`, which turns one into an ONNX file); it imports neither.

A checkpoint is a ``dict`` saved with ``torch.save`` and loaded with
``weights_only=True`` (tensors, numbers, strings, lists, tuples and dicts only):

* ``format``: :data:`CHECKPOINT_FORMAT` (a file with another value is refused);
* ``arch`` (the architecture module, e.g. ``edgerestore.models.ffdnet``), ``config``
  (its ``build`` arguments) and ``recipe`` (the recipe's fields, enough to rebuild it);
* ``step``, ``patches_seen``, ``train_seconds``, ``last_val`` (the last held-out
  validation) and the best validation figure (``best_psnr25`` for the denoiser,
  ``best_gain`` for super-resolution, whose files also say ``task``);
* ``commit`` (:func:`git_commit` of the training code) and provenance (``training_data``,
  ``training_files``, ``heldout_files``, and what a recipe adds: ``lr_scale``,
  ``init_from``, ``heldout_bicubic``, ``lr_generation``);
* ``ema``: the EMA weights (a ``state_dict``), in every checkpoint;
* ``last.pt`` only: ``model`` (the raw weights), ``optimizer`` (Adam's state) and
  ``rng`` (the patch sampler's generator state), enough to resume exactly. ``best.pt``
  holds the EMA weights and the header only.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

from edgerestore._lazy import require
from edgerestore.errors import InputError
from edgerestore.imageio import write_bytes_atomic

CHECKPOINT_FORMAT = 1
"""Value of the ``format`` key of the checkpoints this edgerestore writes and reads."""


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a temporary file in the same folder,
    then ``os.replace``): an interrupted save leaves the previous file whole."""
    torch = require("torch", purpose="saving a training checkpoint")
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by a training recipe (``last.pt`` or ``best.pt``), on the CPU.

    Raises :class:`InputError` when the file is missing, unreadable, or not an
    edgerestore checkpoint of :data:`CHECKPOINT_FORMAT`.
    """
    torch = require("torch", purpose="loading a training checkpoint")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an edgerestore training checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit of the source tree (default: the tree this package lives
    in), or ``"unknown"``; stamped into checkpoints and exported models."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
