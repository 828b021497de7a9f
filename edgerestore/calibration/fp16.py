"""FP16 conversion with ONNX Runtime's converter (``onnxruntime.transformers.float16``).

Weights and activations become float16; graph inputs and outputs stay float32 unless
``keep_io_types=False`` (the runtime feeds float32, and Cast nodes at the edges cost
almost nothing next to the convolutions). Values outside float16's range are clamped
by the converter. The converted graph is topologically re-sorted (the converter appends
its input Casts at the end, which ``onnx.checker`` refuses) and checked.

An FP16 ONNX file is what TensorRT builds as a strongly typed FP16 engine, and what ONNX
Runtime's CUDA provider runs with tensor cores; ONNX Runtime's CPU provider runs it too
(slower than FP32 on most CPUs: use it for checking, not for speed).
"""

from __future__ import annotations

from edgerestore._lazy import require
from edgerestore.backends.onnx_graph import is_quantized
from edgerestore.errors import ModelError


def toposort(model):
    """Reorder ``model.graph.node`` so every node comes after its inputs' producers."""
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progressed = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            missing = sorted({i for n in rest for i in n.input if i not in available})
            raise ModelError(f"the graph has a cycle or dangling inputs: {missing[:5]}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for dst, src in zip(copies, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(copies)
    return model


def convert_fp16(model, *, keep_io_types: bool = True):
    """An FP16 copy of the FP32 ``onnx.ModelProto`` (metadata is stamped by the caller)."""
    onnx = require("onnx", purpose="FP16 conversion")
    float16 = require("onnxruntime.transformers.float16", purpose="FP16 conversion")
    if is_quantized(model):
        raise ModelError("the model is already quantized or FP16; convert the original FP32 model")
    try:
        out = float16.convert_float_to_float16(model, keep_io_types=keep_io_types)
    except Exception as exc:
        raise ModelError(f"FP16 conversion failed: {type(exc).__name__}: {exc}") from None
    toposort(out)
    try:
        onnx.checker.check_model(out)
    except Exception as exc:
        raise ModelError(f"the FP16 graph fails onnx.checker: {exc}") from None
    return out
