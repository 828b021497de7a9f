"""Engine precision and network typing: how to build what an ONNX file holds.

TensorRT 10; weak typing is deprecated from 10.12 and gone in 11, so strong typing is
used wherever the ONNX file itself says the types:

===============  =========================  ==================================================
ONNX holds        --precision                network
===============  =========================  ==================================================
FP32              fp32                       strongly typed (FP32, TF32 where the GPU has it)
FP32              fp16, best                 weakly typed + ``BuilderFlag.FP16`` (TensorRT 10 only;
                                             on 11, convert first: ``calibrate --precision fp16``)
FP16 (calibrate)  fp16, best                 strongly typed: the file's FP16 types
Q/DQ INT8         int8                       strongly typed: explicit quantization, as NVIDIA
                                             recommends (float parts stay FP32)
Q/DQ INT8         best                       weakly typed + ``INT8`` + ``FP16``: Q/DQ honoured,
                                             float parts in FP16 where faster
===============  =========================  ==================================================

INT8 needs a Q/DQ file made with ``edgerestore calibrate --target tensorrt``: TensorRT 10
deprecates its implicit calibrators (10.1), and a file calibrated for the ``cpu`` target
has non-zero zero points, which TensorRT refuses; both are caught with the fix (here and
in :mod:`~edgerestore.backends.tensorrt.build`). What a file holds is read by
:func:`edgerestore.backends.onnx_graph.onnx_kind`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgerestore.errors import InputError
from edgerestore.model_spec import ModelSpec

PRECISIONS = ("fp32", "fp16", "int8", "best")


@dataclass(frozen=True)
class NetworkMode:
    """How to build: strongly typed or not, and which ``BuilderFlag`` names to set."""

    strongly_typed: bool
    flags: tuple[str, ...] = ()


def network_mode(precision: str, kind: str, *, where: str = "model") -> NetworkMode:
    """The build mode for ``precision`` on an ONNX file of ``kind`` (see the table above)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if kind == "qdq":
        if precision == "int8":
            return NetworkMode(True)
        if precision == "best":
            return NetworkMode(False, ("INT8", "FP16"))
        raise InputError(f"{where} is an INT8 (Q/DQ) model; build it with --precision int8 or best")
    if kind == "fp16":
        if precision in ("fp16", "best"):
            return NetworkMode(True)
        raise InputError(f"{where} is an FP16 model; build it with --precision fp16 or best")
    if precision == "fp32":
        return NetworkMode(True)
    if precision in ("fp16", "best"):
        return NetworkMode(False, ("FP16",))
    raise InputError(
        f"{where} is an FP32 model without Q/DQ nodes, and TensorRT 10 builds INT8 only from "
        "explicit quantization. Calibrate it first: edgerestore calibrate MODEL --frames "
        "DIR_OR_VIDEO --target tensorrt -o model_trt_int8.onnx, then build that file"
    )


def default_precision(spec: ModelSpec) -> str:
    """The engine precision a model file implies: what its metadata says it holds."""
    return spec.precision
