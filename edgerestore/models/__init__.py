"""PyTorch architectures of the learned restorers (needs the ``train`` extra).

Importing this package, or any module in it, never imports torch: each architecture
module builds its ``torch.nn.Module`` classes inside a factory function on first use
(see :func:`edgerestore.models.ffdnet.build`). An architecture module provides:

* ``ARCH``: its dotted name, stored in checkpoints;
* ``build(**config) -> torch.nn.Module``;
* ``example_inputs(config, height, width, batch=1)``: random inputs for export/parity;
* ``model_spec(config, *, name, provenance) -> ModelSpec``: the metadata of its ONNX file.

``edgerestore export edgerestore.models.<arch>:<checkpoint>`` (:mod:`edgerestore.export`)
uses these to export. :mod:`edgerestore.models.checkpoint` reads and writes the training
checkpoints that both the recipes (:mod:`edgerestore.training`) and the exporter use;
nothing in this package imports either of them. Architectures: ``ffdnet`` (denoiser), ``espcn`` (super-resolution; its ``build``,
``count_params``, ``mflops_per_megapixel`` and ``model_spec`` also take the ``scale``
of the head to export, and ``TASK = "super_resolution"`` tells the exporter so).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgerestore.errors import InputError

ARCHITECTURES = ("ffdnet", "espcn")


def load_arch(name: str) -> ModuleType:
    """The architecture module for ``name`` (``ffdnet`` or ``edgerestore.models.ffdnet``)."""
    short = name.rsplit(".", 1)[-1]
    if short not in ARCHITECTURES:
        raise InputError(
            f"unknown architecture {name!r}; available: "
            + ", ".join(f"edgerestore.models.{a}" for a in ARCHITECTURES)
        )
    return importlib.import_module(f"edgerestore.models.{short}")
