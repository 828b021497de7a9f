"""Export: a trained PyTorch model -> one self-describing ONNX file (the ``train`` extra).

The first step of the flow export -> calibration -> backends/engines -> runtime:

* :mod:`edgerestore.export.torch_to_onnx`: :func:`export_model` traces a model to ONNX
  (opset 17, dynamic N, H, W), runs ``onnx.checker``, checks parity against PyTorch,
  stamps the metadata of :mod:`edgerestore.model_spec` and writes the file atomically;
* :mod:`edgerestore.export.parity`: :func:`parity_check`, ONNX Runtime against PyTorch
  on random inputs of several sizes (a model that differs is never written);
* :mod:`edgerestore.export.from_checkpoint`: :func:`export_checkpoint`, what
  ``edgerestore export edgerestore.models.<arch>:<checkpoint>`` runs: a training
  checkpoint (:mod:`edgerestore.models.checkpoint`) -> an ONNX file with its provenance.

A model trained elsewhere gets the same metadata with
:func:`edgerestore.model_spec.write_spec` (see ``docs/model-contract.md``); a function
that annotates a user's plain ONNX file belongs in this package.

Dependencies run one way: export imports models and model_spec, never training.
Nothing here imports torch, onnx or onnxruntime at module level.
"""

from __future__ import annotations

from edgerestore.export.from_checkpoint import export_checkpoint, parse_target
from edgerestore.export.parity import DEFAULT_ATOL, DEFAULT_PARITY_SIZES, SR_PARITY_SIZES, parity_check
from edgerestore.export.torch_to_onnx import DEFAULT_OPSET, export_model, to_onnx_bytes

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_OPSET",
    "DEFAULT_PARITY_SIZES",
    "SR_PARITY_SIZES",
    "export_checkpoint",
    "export_model",
    "parity_check",
    "parse_target",
    "to_onnx_bytes",
]
