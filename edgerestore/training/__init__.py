"""Training recipes of the learned restorers (needs the ``train`` extra: torch).

* :mod:`edgerestore.training.data`: training images, held-out split, random patches;
* :mod:`edgerestore.training.common`: checkpoints, EMA, thread tuner, JSONL log, the
  time-boxed interruptible loop both recipes run;
* :mod:`edgerestore.training.denoise`: the denoiser recipe (resumable, time-boxed);
* :mod:`edgerestore.training.sr`: the super-resolution recipe (ESPCN class, luma, x2/x3/x4).

Nothing here imports torch at module level.
"""
