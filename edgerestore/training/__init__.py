"""Training recipes of the learned restorers (needs the ``train`` extra: torch).

* :mod:`edgerestore.training.data`: training images, held-out split, random patches;
* :mod:`edgerestore.training.denoise`: the denoiser recipe (resumable, time-boxed).

Nothing here imports torch at module level.
"""
