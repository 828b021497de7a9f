"""Training recipes of the learned restorers (needs the ``train`` extra: torch).

* :mod:`edgerestore.training.denoise`: the denoiser recipe (resumable, time-boxed);
* :mod:`edgerestore.training.sr`: the super-resolution recipe (ESPCN class, luma, x2/x3/x4);
* :mod:`edgerestore.training.cycle`: one time-boxed run that ends annealed (denoiser);
* :mod:`edgerestore.training.recipe`: the fields every recipe shares (:class:`RecipeBase`);
* :mod:`edgerestore.training.schedule`: the one learning-rate schedule, and the warm-up;
* :mod:`edgerestore.training.data`: training images, held-out split, random patches;
* :mod:`edgerestore.training.device`: the torch device, and bf16 autocast;
* :mod:`edgerestore.training.state`: the run folder, the model/Adam/EMA a recipe trains,
  and what a run saves in and restores from a checkpoint;
* :mod:`edgerestore.training.loop`: the time-boxed interruptible loop both recipes run,
  its JSONL log, the thread tuner.

Checkpoint files themselves (atomic save, load, what they hold) are
:mod:`edgerestore.models.checkpoint`, which the exporter (:mod:`edgerestore.export`)
reads too. Nothing here imports torch at module level.
"""
