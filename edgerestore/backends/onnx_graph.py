"""What an ONNX graph holds, read from the graph itself (no runtime needed).

Used by the TensorRT backend (which network mode a file needs) and by calibration (what
the quantizer did, whether a file is already converted). Functions take a loaded
``onnx.ModelProto``; ``onnx`` is imported only inside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
"""The explicit-quantization operators."""

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
"""Operators that carry weights (the layers INT8 quantization is about)."""


def onnx_kind(model) -> str:
    """``qdq`` (Q/DQ INT8), ``fp16`` (FP16 weights) or ``fp32``, from the graph itself."""
    from onnx import TensorProto

    if any(n.op_type in QDQ_OPS for n in model.graph.node):
        return "qdq"
    if any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def is_quantized(model) -> bool:
    """True if the graph already holds Q/DQ nodes, QLinear/Integer ops or FP16 weights."""
    from onnx import TensorProto

    for node in model.graph.node:
        if node.op_type in QDQ_OPS or node.op_type.startswith("QLinear") or "Integer" in node.op_type:
            return True
    return any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer)


def zero_points(model) -> dict[str, np.ndarray]:
    """Every zero-point initializer of the Q/DQ nodes, by name."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        if node.op_type in QDQ_OPS and len(node.input) > 2 and node.input[2] in inits:
            out[node.input[2]] = numpy_helper.to_array(inits[node.input[2]])
    return out


def nonzero_zero_points(model) -> list[str]:
    """Names of Q/DQ zero points that are not all zero (TensorRT needs symmetric INT8)."""
    return sorted(name for name, zp in zero_points(model).items() if zp.any())


def weighted_nodes(model) -> list[str]:
    """Names of the weighted layers in graph (topological) order."""
    return [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS]


@dataclass(frozen=True)
class QdqSummary:
    """Counts of what the quantizer did (for reports and tests)."""

    quantize: int
    dequantize: int
    quantized_weighted: list[str] = field(default_factory=list)
    float_weighted: list[str] = field(default_factory=list)


def summarize(model) -> QdqSummary:
    """How many Q/DQ nodes, and which weighted layers read dequantized weights."""
    producers = {o: n for n in model.graph.node for o in n.output}
    q = sum(n.op_type == "QuantizeLinear" for n in model.graph.node)
    dq = sum(n.op_type == "DequantizeLinear" for n in model.graph.node)
    quantized, floats = [], []
    for n in model.graph.node:
        if n.op_type not in WEIGHTED_OPS or len(n.input) < 2:
            continue
        src = producers.get(n.input[1])
        (quantized if src is not None and src.op_type == "DequantizeLinear" else floats).append(n.name)
    return QdqSummary(q, dq, quantized, floats)
