"""Quantization-aware fine-tuning (QAT): a trained restorer learns to live with INT8.

The network is fine-tuned with the rounding of the INT8 model it will become simulated
in its forward pass ("fake quantization", straight-through gradients), and the result
is quantized by ONNX Runtime's quantizer as any other model, with the activation
ranges the fine-tuning learned instead of calibrated ones. What is simulated is read
off the INT8 model ONNX Runtime makes of the FP32 export for the target
(:mod:`edgerestore.calibration.quantize`), so the two cannot disagree about where the
Q/DQ pairs are:

* **weights** of every quantized layer: per output channel, symmetric, INT8 in
  [-127, 127] ([-64, 64] with ``reduce_range``), scale ``max|w| / 127`` recomputed from
  the current weights at every step, as ORT will compute it from the final ones;
* **activations**: each tensor ORT puts a QuantizeLinear on (the layers' inputs, the
  ReLU outputs, for the ``cpu`` target also the last layer's output), per tensor, U8
  asymmetric (``cpu``) or S8 symmetric (``tensorrt``), with a learned step size (LSQ:
  Esser et al., "Learned Step Size Quantization", ICLR 2020; the step is learned as its
  logarithm, so Adam's steps are relative) that starts at ORT's calibrated range.

An ONNX tensor is found in the torch model by the name ``torch.onnx.export`` gave it
(``/body/body.1/Relu_output_0`` is the output of module ``body.1``), or, for the output
of a functional op (``/Concat_output_0``), as the input of the one module that reads it,
or as a graph input, or as the model's output when only element-rearranging ops and a
final ``Clip`` lie between it and the graph output (a super-resolution model's
``tail + skip`` sum before its pixel shuffle: per-tensor rounding commutes with a
permutation; the torch model is fine-tuned without its output clip, the clip follows).
Tensors that cannot be found (an ``Add`` between two functional ops) keep their
calibrated range and are not simulated; :class:`QatPlan` lists them.

Nothing here imports torch at module level; the functions that need it take it from
:func:`edgerestore._lazy.require`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError

log = logging.getLogger(__name__)

INT8_WEIGHT_MAX = 127
INT8_WEIGHT_MAX_REDUCED = 64


@dataclass(frozen=True)
class ActivationPoint:
    """One quantized activation tensor of the INT8 model and where it is in torch.

    ``tensor``: its ONNX name; ``module``: the torch module path whose output it is
    (``where="output"``) or whose first input it is (``"input"``), or ``""`` with
    ``where="graph_input"`` and ``index`` for the model's own positional input, or with
    ``where="model_output"`` for the model's output (see the module docstring).
    ``qmin``/``qmax``/``zero_point``/``scale``: ORT's quantization of it (the start).
    ``fixed``: the step size is held, not learned (a range the task fixes, e.g. [0, 1]
    for 8-bit frames).
    """

    tensor: str
    module: str
    where: str
    index: int
    qmin: int
    qmax: int
    zero_point: int
    scale: float
    fixed: bool = False

    @property
    def symmetric(self) -> bool:
        return self.qmin < 0


@dataclass
class QatPlan:
    """What the fine-tuning simulates: activation points, quantized weight layers
    (torch module paths) and the ONNX tensors it could not place (kept calibrated)."""

    points: list[ActivationPoint]
    weight_modules: list[str]
    weight_qmax: int
    unplaced: list[str] = field(default_factory=list)


def _torch():
    return require("torch", purpose="quantization-aware fine-tuning")


def module_of_tensor(name: str) -> str | None:
    """The torch module path of an ONNX tensor named by ``torch.onnx.export``
    (``/body/body.1/Relu_output_0`` -> ``body.1``), None for a top-level op's output."""
    parts = name.split("/")
    if len(parts) < 3 or parts[0] != "":
        return None
    return parts[-2] or None


def module_of_node(name: str) -> str | None:
    """The torch module path of an ONNX node (``/body/body.0/Conv`` -> ``body.0``)."""
    parts = name.split("/")
    if len(parts) < 3 or parts[0] != "":
        return None
    return parts[-2] or None


def plan_from_qdq(qdq_model, torch_model, input_names: Sequence[str], *, reduce_range: bool = False) -> QatPlan:
    """The :class:`QatPlan` of ``torch_model`` from the INT8 QDQ ONNX model that ONNX
    Runtime made of its export (``input_names``: the graph inputs in the order of the
    model's ``forward`` arguments)."""
    numpy_helper = require("onnx.numpy_helper", purpose="quantization-aware fine-tuning")
    modules = dict(torch_model.named_modules())
    init = {i.name: i for i in qdq_model.graph.initializer}
    consts = {}
    for n in qdq_model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    def value(name: str):
        if name in init:
            return numpy_helper.to_array(init[name])
        return consts.get(name)

    producers = {o: n for n in qdq_model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in qdq_model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in qdq_model.graph.output}
    points: list[ActivationPoint] = []
    unplaced: list[str] = []
    weight_modules: list[str] = []
    for q in qdq_model.graph.node:
        if q.op_type != "QuantizeLinear":
            continue
        src = q.input[0]
        if src in init or src in consts:
            continue  # a weight or bias: see below
        scale, zp = value(q.input[1]), value(q.input[2])
        if scale is None or zp is None or np.ndim(scale) != 0:
            unplaced.append(src)
            continue
        info = np.iinfo(zp.dtype)
        qmin, qmax = int(info.min), int(info.max)
        if qmin < 0:
            qmin = -qmax  # ORT's symmetric INT8 range is [-127, 127]
        where, module, index = _place(src, producers, consumers, modules, input_names, outputs)
        if where is None:
            unplaced.append(src)
            continue
        points.append(ActivationPoint(src, module, where, index, qmin, qmax, int(zp), float(scale)))
    for n in qdq_model.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(n.input) < 2:
            continue
        w = producers.get(n.input[1])
        if w is None or w.op_type != "DequantizeLinear":
            continue
        path = module_of_node(n.name)
        if path in modules and hasattr(modules[path], "weight"):
            weight_modules.append(path)
        else:
            unplaced.append(n.name + ":weight")
    if unplaced:
        log.info("QAT: %d quantized tensor(s) not simulated (kept calibrated): %s",
                 len(unplaced), ", ".join(unplaced[:6]))
    return QatPlan(points, weight_modules,
                   INT8_WEIGHT_MAX_REDUCED if reduce_range else INT8_WEIGHT_MAX, unplaced)


# ops that only move elements (a per-tensor rounding commutes with them), and the output clip
REARRANGING_OPS = frozenset({"DepthToSpace", "SpaceToDepth", "Reshape", "Transpose", "Identity"})


def _readers(tensor: str, consumers) -> list:
    """The nodes that read ``tensor``, through a Q -> DQ pair on it."""
    out = []
    for n in consumers.get(tensor, []):
        if n.op_type == "QuantizeLinear":
            for dq in consumers.get(n.output[0], []):
                out += consumers.get(dq.output[0], [])
        else:
            out.append(n)
    return out


def _reaches_output(tensor: str, consumers, outputs) -> bool:
    """Whether only :data:`REARRANGING_OPS` and a final ``Clip`` lead from ``tensor`` to a
    graph output (each step a single reader)."""
    seen = 0
    while tensor not in outputs and seen < 16:
        readers = _readers(tensor, consumers)
        if len(readers) != 1:
            return False
        (n,) = readers
        if n.op_type == "Clip":
            return n.output[0] in outputs
        if n.op_type not in REARRANGING_OPS:
            return False
        tensor, seen = n.output[0], seen + 1
    return tensor in outputs


def _place(tensor: str, producers, consumers, modules, input_names, outputs=()) -> tuple[str | None, str, int]:
    if tensor in input_names:
        return "graph_input", "", list(input_names).index(tensor)
    path = module_of_tensor(tensor)
    if path is not None and path in modules:
        return "output", path, 0
    paths = {module_of_node(n.name) for n in _readers(tensor, consumers)}
    if len(paths) == 1:
        (path,) = paths
        if path in modules and hasattr(modules[path], "weight"):
            return "input", path, 0
    if _reaches_output(tensor, consumers, outputs):
        return "model_output", "", 0
    return None, "", 0


class FakeQuantized:
    """A torch model with the plan's fake quantization installed (hooks and weight
    parametrizations); :meth:`remove` takes it out again and leaves the fine-tuned
    float weights. ``step_sizes`` are the learned log-scales, one per activation point."""

    def __init__(self, model, plan: QatPlan) -> None:
        torch = _torch()
        parametrize = torch.nn.utils.parametrize
        self.model, self.plan = model, plan
        self._handles = []
        modules = dict(model.named_modules())
        self.log_scales = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.tensor(math.log(max(p.scale, 1e-12)), dtype=torch.float32),
                                requires_grad=not p.fixed)
             for p in plan.points])
        for k, p in enumerate(plan.points):
            fq = self._activation_fq(k, p)
            if p.where == "output":
                self._handles.append(modules[p.module].register_forward_hook(
                    lambda _m, _inp, out, fq=fq: fq(out)))
            elif p.where == "input":
                self._handles.append(modules[p.module].register_forward_pre_hook(
                    lambda _m, args, fq=fq: (fq(args[0]), *args[1:])))
            elif p.where == "model_output":
                self._handles.append(model.register_forward_hook(lambda _m, _inp, out, fq=fq: fq(out)))
            else:
                self._handles.append(model.register_forward_pre_hook(
                    lambda _m, args, fq=fq, i=p.index: tuple(fq(a) if j == i else a for j, a in enumerate(args))))
        qmax = plan.weight_qmax
        for path in plan.weight_modules:
            parametrize.register_parametrization(modules[path], "weight", _WeightFakeQuant(qmax))
        self._parametrized = list(plan.weight_modules)

    def _activation_fq(self, k: int, p: ActivationPoint) -> Callable:
        torch = _torch()
        zero_point = torch.tensor(float(p.zero_point))
        log_scale = self.log_scales[k]

        def fq(x):
            return torch._fake_quantize_learnable_per_tensor_affine(
                x, log_scale.exp().reshape(1), zero_point.reshape(1).to(x.device), p.qmin, p.qmax, 1.0)
        return fq

    def learned_ranges(self) -> dict[str, tuple[float, float]]:
        """The (min, max) of each simulated tensor that gives ONNX Runtime's quantizer
        the learned scale and the starting zero point back."""
        out = {}
        for p, ls in zip(self.plan.points, self.log_scales):
            s = float(ls.detach().exp())
            out[p.tensor] = ((p.qmin - p.zero_point) * s, (p.qmax - p.zero_point) * s)
        return out

    def remove(self) -> None:
        torch = _torch()
        for h in self._handles:
            h.remove()
        self._handles.clear()
        modules = dict(self.model.named_modules())
        for path in self._parametrized:
            torch.nn.utils.parametrize.remove_parametrizations(modules[path], "weight", leave_parametrized=False)
        self._parametrized.clear()


def _WeightFakeQuant(qmax: int):
    """Per-output-channel symmetric INT8 fake quantization of a weight tensor."""
    torch = _torch()

    class WeightFakeQuant(torch.nn.Module):
        def forward(self, w):
            absmax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-12)
            scale = (absmax / qmax).float()
            zero = torch.zeros_like(scale, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -qmax, qmax)

    return WeightFakeQuant()


def check_ranges(ranges: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Learned ranges as stored in a model's provenance, checked."""
    out = {}
    for k, v in ranges.items():
        try:
            lo, hi = float(v[0]), float(v[1])
        except (TypeError, ValueError, IndexError):
            raise InputError(f"QAT range of {k!r} must be [min, max], got {v!r}") from None
        out[str(k)] = (lo, hi)
    return out
