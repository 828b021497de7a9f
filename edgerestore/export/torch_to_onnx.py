"""PyTorch -> ONNX: trace, check, compare with PyTorch, stamp the metadata, write atomically.

:func:`export_model` is the whole step for a built model with its weights; a model that
fails ``onnx.checker``, the metadata contract (:func:`edgerestore.model_spec.write_spec`)
or the parity check (:func:`edgerestore.export.parity.parity_check`) is never written.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from edgerestore._lazy import require
from edgerestore.errors import ModelError
from edgerestore.export.parity import DEFAULT_ATOL, DEFAULT_PARITY_SIZES, parity_check
from edgerestore.imageio import write_bytes_atomic
from edgerestore.model_spec import ModelSpec, write_spec

DEFAULT_OPSET = 17
"""ONNX opset of exported models: what ONNX Runtime and TensorRT both run."""


def to_onnx_bytes(model, arch, config: Mapping[str, Any], *, opset: int = DEFAULT_OPSET) -> bytes:
    """The ONNX bytes of ``model`` (put in eval mode) with dynamic N, H and W.

    ``arch``: the architecture module (``example_inputs``, ``INPUT_NAMES``,
    ``OUTPUT_NAME``); ``config``: the model's ``build`` arguments.
    """
    torch = require("torch", purpose="exporting a model to ONNX")
    model.eval()
    inputs = arch.example_inputs(config, 64, 64)
    names = list(arch.INPUT_NAMES)
    dyn = {n: {0: "N", 2: "H", 3: "W"} for n in [*names, arch.OUTPUT_NAME]}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, inputs, buf, input_names=names, output_names=[arch.OUTPUT_NAME],
                          dynamic_axes=dyn, opset_version=opset, do_constant_folding=True,
                          dynamo=False)
    return buf.getvalue()


def export_model(model, arch, config: Mapping[str, Any], spec: ModelSpec, output: str | os.PathLike, *,
                 opset: int = DEFAULT_OPSET, atol: float = DEFAULT_ATOL,
                 sizes: Sequence[tuple[int, int, int]] = DEFAULT_PARITY_SIZES) -> ModelSpec:
    """Export ``model`` with ``spec`` to ``output`` (its folder is created); return the
    spec as written. The parity result (backend, atol, max differences per size) and the
    opset are added to the provenance.
    """
    onnx = require("onnx", purpose="exporting a model to ONNX")
    raw = to_onnx_bytes(model, arch, config, opset=opset)
    proto = onnx.load_from_string(raw)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelError(f"the exported graph fails onnx.checker: {exc}") from None
    diffs = parity_check(raw, model, arch, config, atol=atol, sizes=sizes)
    provenance = dict(spec.provenance)
    provenance["parity"] = {"backend": "onnxruntime-cpu", "atol": atol, "max_abs_diff": diffs}
    provenance["opset"] = opset
    spec = replace(spec, provenance=provenance)
    write_spec(proto, spec)
    onnx.checker.check_model(proto)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(output, proto.SerializeToString())
    return spec
