"""INT8 static quantization with ONNX Runtime's quantizer (QDQ format), per target.

The quantizer is ONNX Runtime's own (``onnxruntime.quantization.quantize_static``); this
module only chooses its settings for where the model will run and feeds it the
calibration tensors (an iterator of input dicts, ORT's ``CalibrationDataReader``).

Why one module: the settings per target, their translation into ``quantize_static``'s
arguments, the layer groups those arguments exclude and the quantizer that runs it
(ranges once, then one model per set of float layers) are one contract with ONNX
Runtime's quantizer; split, each part would have to know the others' ORT details.

Targets (see docs/calibration.md for the measurements behind the choices):

``cpu``  ONNX Runtime on x86-64 or ARM. Activations **U8** (asymmetric: ReLU outputs are
    non-negative, so an unsigned range spends all 256 levels on them), weights **S8**
    symmetric **per output channel**. U8 x S8 is the operand pair of the integer dot
    product instructions ORT's MLAS kernels use (x86 AVX2 ``vpmaddubsw``, AVX512-VNNI /
    AVX-VNNI ``vpdpbusd``; ARM ``sdot``/``usdot``), and ORT fuses each DQ -> Conv -> Q
    group into one ``QLinearConv``. All operators ORT can quantize are quantized, so
    tensors stay INT8 between layers, except the global skip connection
    (:func:`skip_connections`), kept in float. ``reduce_range`` (7-bit weights) is switched on only
    on x86 CPUs *without* VNNI, where ``vpmaddubsw``'s 16-bit intermediate can saturate;
    with VNNI (and on ARM) it would only cost accuracy.

``tensorrt``  TensorRT's explicit quantization. TensorRT only supports symmetric INT8:
    activations **S8 symmetric** (``ActivationSymmetric``) and weights **S8 symmetric**
    (``WeightSymmetric``, range [-127, 127]), so every zero point is 0; weights **per
    output channel**. Q/DQ pairs go on the *inputs* of the weighted layers only
    (``Conv``, ``ConvTranspose``, ``MatMul``, ``Gemm``) and of residual ``Add`` nodes,
    never on their outputs (``OpTypesToExcludeOutputQuantization``), which is the
    placement NVIDIA's explicit-quantization guidance recommends: TensorRT fuses the DQ
    into the following weighted layer, and Conv + ReLU + the next layer's Q into one
    INT8 kernel with INT8 output; the last layer's output stays float. Build the engine from this file (``edgerestore build-engine --precision
    int8``); ONNX Runtime also runs it, which is how the accuracy gate checks it.

Calibration methods (``Method``): ``minmax`` (the observed range; exact but outlier
sensitive), ``entropy`` (KL-divergence threshold, TensorRT's classic choice for CNNs;
run with 2048 histogram bins, because through ``quantize_static`` ORT uses 128 bins for
128 levels, which makes it identical to minmax), ``percentile`` (clips the top
``percentile`` tail), ``qat`` (the ranges quantization-aware training learned, stored
in the model's provenance and given to :class:`Int8Quantizer` as ``ranges``; tensors it
did not learn get minmax ranges).
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import tempfile
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from edgerestore.cpuinfo import cpu_flags
from edgerestore._lazy import require
from edgerestore.backends.onnx_graph import QDQ_OPS, WEIGHTED_OPS, is_quantized, weighted_nodes
from edgerestore.errors import InputError, ModelError

log = logging.getLogger(__name__)

TENSORRT_OPS = (*WEIGHTED_OPS, "Add")
ACTIVATION_OPS = frozenset({"Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "Tanh"})
ENTROPY_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128


class Method(str, Enum):
    """Calibration method: how a tensor's range is chosen from the calibration data."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"
    QAT = "qat"


class Target(str, Enum):
    """Where the quantized model will run."""

    CPU = "cpu"
    TENSORRT = "tensorrt"


def cpu_has_vnni() -> bool | None:
    """True/False on x86 Linux (AVX512-VNNI or AVX-VNNI), None when it cannot be told."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return None
    flags = cpu_flags()
    return bool(flags & {"avx512_vnni", "avx_vnni"}) if flags else None


@dataclass(frozen=True, kw_only=True)
class Int8Settings:
    """How to quantize; invalid combinations are refused before any work starts.

    target: ``Target.CPU`` or ``Target.TENSORRT`` (see the module docstring).
    method: calibration method; None (default) is ``entropy``, the most accurate for
        both targets on the shipped denoiser (``benchmarks/results/quantization.md``),
        which ``calibrate`` turns into ``minmax`` for super-resolution models
        (:func:`default_method`).
    per_channel: per-output-channel weight scales (recommended for both targets).
    reduce_range: 7-bit weights; None = automatic (on for x86 without VNNI, cpu target).
    keep_float: nodes left in float: node names, or ``first`` / ``last`` for the first
        or last weighted layer (where image-to-feature and feature-to-image mappings
        sometimes quantize badly).
    percentile: the kept percentage for ``Method.PERCENTILE``.
    activations: ``auto`` (U8 for cpu, S8 for tensorrt), ``u8`` or ``s8`` (cpu only;
        for measuring the alternative).
    image_path_float: keep a super-resolution model's image path (:func:`image_path`) in
        float (default).
    method_given: False when the method was left to the default (``method=None``):
        :func:`default_method` may then choose it per task.
    """

    target: Target = Target.CPU
    method: Method | None = None
    per_channel: bool = True
    reduce_range: bool | None = None
    keep_float: tuple[str, ...] = ()
    percentile: float = 99.999
    activations: str = "auto"
    image_path_float: bool = True
    method_given: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Target(self.target))
        if self.method is None:
            object.__setattr__(self, "method", Method.ENTROPY)
            object.__setattr__(self, "method_given", False)
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        if self.target is Target.TENSORRT and self.reduce_range:
            raise InputError("reduce_range (7-bit weights) is a CPU workaround; TensorRT needs "
                             "full-range symmetric INT8: drop reduce_range for --target tensorrt")
        if self.activations not in ("auto", "u8", "s8"):
            raise InputError(f"activations must be auto, u8 or s8, got {self.activations!r}")
        if self.target is Target.TENSORRT and self.activations == "u8":
            raise InputError("TensorRT supports symmetric signed INT8 only: activations must be s8")
        if not 90.0 <= self.percentile < 100.0:
            raise InputError(f"percentile must be in [90, 100), got {self.percentile}")

    def signed_activations(self) -> bool:
        if self.activations == "auto":
            return self.target is Target.TENSORRT
        return self.activations == "s8"

    def resolved_reduce_range(self) -> bool:
        if self.reduce_range is not None:
            return bool(self.reduce_range)
        if self.target is Target.TENSORRT:
            return False
        return cpu_has_vnni() is False

    def describe(self) -> dict:
        """What was used, for the model's provenance."""
        trt = self.target is Target.TENSORRT
        return {
            "target": self.target.value,
            "method": self.method.value,
            "format": "QDQ",
            "activations": ("int8 symmetric" if trt else "int8 asymmetric")
            if self.signed_activations() else "uint8 asymmetric",
            "weights": "int8 symmetric " + ("per-channel" if self.per_channel else "per-tensor"),
            "reduce_range": self.resolved_reduce_range(),
            "op_types": list(TENSORRT_OPS) if trt else "all ORT quantizes",
            "keep_float": list(self.keep_float),
            "skip_connection": "float",
            "image_path": "float" if self.image_path_float else "int8",
            **({"percentile": self.percentile} if self.method is Method.PERCENTILE else {}),
        }


def skip_connections(model) -> list[str]:
    """``Add``/``Sub`` nodes that read a graph input directly: the global skip connection
    of residual restorers (``output = image - predicted noise``).

    They stay in float for every target: quantizing the image on that path would put 8-bit
    rounding, and clipping of inputs outside the calibrated range, straight onto the
    output, for one cheap element-wise op.
    """
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type in ("Add", "Sub") and any(i in inputs for i in n.input)]


def image_path(model) -> list[str]:
    """A super-resolution model's image path: each ``Conv`` that reads a graph input and
    feeds only ``Add``/``Sub`` nodes (the learned upsampling of the input, the skip), and
    those nodes (``tail + skip``). It carries the whole picture, so two 8-bit roundings on
    it cost ~0.1 dB on smooth frames that FP32 restores to 37-40 dB, for about 0.1 % of
    the work (docs/calibration.md). Empty for the denoisers, whose skip is an
    ``Add``/``Sub`` reading the input itself (:func:`skip_connections`)."""
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    for n in model.graph.node:
        if n.op_type != "Conv" or not any(i in inputs for i in n.input):
            continue
        readers = consumers.get(n.output[0], [])
        if readers and all(r.op_type in ("Add", "Sub") for r in readers):
            out += [n.name] + [r.name for r in readers]
    return sorted(set(out))


def default_method(settings: Int8Settings, task: str) -> Int8Settings:
    """``settings`` with the method chosen for the model's task when none was given:
    ``minmax`` for super-resolution (entropy clips the later ReLU outputs of the SR body
    to 6-25 % of their range: 0.80 dB held-out drop at x2 against 0.17 for minmax, fully
    quantized), else the default entropy."""
    if settings.method_given or task != "super_resolution":
        return settings
    return replace(settings, method=Method.MINMAX)


def resolve_keep_float(model, keep: Sequence[str]) -> list[str]:
    """Turn ``first`` / ``last`` into node names; check explicit names exist."""
    weighted = weighted_nodes(model)
    names = {n.name for n in model.graph.node}
    out = []
    for item in keep:
        if item in ("first", "last"):
            if not weighted:
                raise InputError(f"keep_float {item!r}: the model has no weighted layers")
            out.append(weighted[0] if item == "first" else weighted[-1])
        elif item in names:
            out.append(item)
        else:
            raise InputError(
                f"keep_float: no node named {item!r}; use 'first', 'last' or one of the "
                f"weighted layers: {', '.join(weighted[:8])}{' ...' if len(weighted) > 8 else ''}"
            )
    return sorted(set(out))


def _data_reader(feeds: Sequence[dict[str, np.ndarray]]):
    """An ``onnxruntime.quantization.CalibrationDataReader`` over recorded feeds."""
    quant = require("onnxruntime.quantization", purpose="INT8 calibration")

    class FeedReader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

    return FeedReader()


def ort_arguments(settings: Int8Settings, model) -> dict:
    """Keyword arguments for ``quantize_static`` (without model paths and data reader)."""
    quant = require("onnxruntime.quantization", purpose="INT8 calibration")
    method = {
        Method.MINMAX: quant.CalibrationMethod.MinMax,
        Method.ENTROPY: quant.CalibrationMethod.Entropy,
        Method.PERCENTILE: quant.CalibrationMethod.Percentile,
        Method.QAT: quant.CalibrationMethod.MinMax,
    }[settings.method]
    # Not CalibMaxIntermediateOutputs: in onnxruntime 1.32 the MinMax calibrator clears its
    # collected outputs on reaching that count without merging their ranges, so all but
    # the last partial batch of calibration data would be silently ignored. Memory is
    # bounded by the crop size and frame count instead (see docs/calibration.md).
    extra: dict = {}
    if settings.method is Method.PERCENTILE:
        extra["CalibPercentile"] = settings.percentile
    if settings.target is Target.TENSORRT:
        # inputs of weighted layers only: no Q/DQ on their outputs (Conv -> ReLU stays one
        # fusible group, and the last layer's output stays float)
        extra.update(ActivationSymmetric=True, WeightSymmetric=True,
                     OpTypesToExcludeOutputQuantization=list(TENSORRT_OPS))
        activation_type, op_types = quant.QuantType.QInt8, list(TENSORRT_OPS)
    else:
        extra.update(WeightSymmetric=True)
        activation_type = quant.QuantType.QInt8 if settings.signed_activations() else quant.QuantType.QUInt8
        op_types = None
    return dict(
        quant_format=quant.QuantFormat.QDQ,
        activation_type=activation_type,
        weight_type=quant.QuantType.QInt8,
        per_channel=settings.per_channel,
        reduce_range=settings.resolved_reduce_range(),
        calibrate_method=method,
        op_types_to_quantize=op_types,
        nodes_to_exclude=sorted(set(resolve_keep_float(model, settings.keep_float))
                                | set(skip_connections(model))
                                | set(image_path(model) if settings.image_path_float else ())),
        extra_options=extra,
    )


def stored_qat_ranges(provenance: Mapping, model_name: str,
                      settings: Int8Settings) -> dict[str, tuple[float, float]] | None:
    """The activation ranges quantization-aware training stored in a model for the
    settings' target (``provenance["qat"]["ranges"][target]``) when the method is
    ``qat``; None for the other methods. Refused when the model holds none for it."""
    if settings.method is not Method.QAT:
        return None
    stored = (provenance.get("qat") or {}).get("ranges") or {}
    ranges = stored.get(settings.target.value)
    if not ranges:
        have = ", ".join(sorted(stored)) or "none"
        raise InputError(f"--method qat needs a model made by 'edgerestore train qat' for --target "
                         f"{settings.target.value}; {model_name} holds learned ranges for: {have}")
    return {str(k): (float(v[0]), float(v[1])) for k, v in ranges.items()}


def quantize_int8(model, feeds: Sequence[dict[str, np.ndarray]], settings: Int8Settings):
    """Quantize an FP32 ``onnx.ModelProto`` with the recorded ``feeds``; return the new model.

    The result has Q/DQ nodes and no edgerestore metadata of its own: the caller stamps
    the spec (precision ``int8``, calibration provenance). Raises :class:`ModelError`
    when the model is already quantized or ONNX Runtime's quantizer fails.
    """
    with Int8Quantizer(model, feeds, settings) as quantizer:
        return quantizer.quantize()


class Int8Quantizer:
    """Calibrate once, quantize many times: the ranges of every tensor are computed on the
    first :meth:`quantize` and kept in ONNX Runtime's calibration cache file, so later
    calls with other layers left in float (``exclude``) take about a second each. This is
    what the per-layer precision search (:mod:`~edgerestore.calibration.fallback`) runs on.

    A context manager (its temporary folder goes on exit).
    """

    def __init__(self, model, feeds: Sequence[dict[str, np.ndarray]], settings: Int8Settings, *,
                 ranges: Mapping[str, tuple[float, float]] | None = None):
        """``ranges``: (min, max) of named tensors that replace the calibrated ones, e.g.
        those learned by quantization-aware training (:mod:`edgerestore.training.qat`);
        every name must be a tensor the calibration sees."""
        onnx = require("onnx", purpose="INT8 calibration")
        quant = require("onnxruntime.quantization", purpose="INT8 calibration")
        if is_quantized(model):
            raise ModelError("the model is already quantized (it holds Q/DQ nodes or FP16 weights); "
                             "calibrate the original FP32 model instead")
        if not feeds:
            raise InputError("no calibration data: at least one recorded feed is needed")
        ort_arguments(settings, model)  # refuses bad keep_float before any work
        self.settings = settings
        self._feeds = feeds
        self._tmp = tempfile.TemporaryDirectory(prefix="edgerestore-quant-")
        tmp = Path(self._tmp.name)
        src = tmp / "fp32.onnx"
        pre = tmp / "fp32_pre.onnx"
        onnx.save(model, str(src))
        try:
            # shape inference + ORT's basic graph optimisations, as ORT recommends
            quant.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            self._start = pre
        except Exception as exc:  # pre-processing is an optimisation, not a requirement
            log.warning("quant_pre_process failed (%s: %s); quantizing the model as is",
                        type(exc).__name__, exc)
            self._start = src
        # node names after pre-processing (fusions may rename): resolve keep_float again
        self._prepared = onnx.load(str(self._start))
        self._cache = tmp / "ranges.json"
        self._count = 0
        self._overrides = {str(k): (float(v[0]), float(v[1])) for k, v in (ranges or {}).items()}
        bad = [k for k, (lo, hi) in self._overrides.items() if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi)]
        if bad:
            raise InputError(f"tensor ranges must be finite with min <= max: {', '.join(sorted(bad)[:4])}")

    def weighted_layers(self) -> list[str]:
        """The weighted layers (Conv, ...) that can be left in float, in graph order."""
        return weighted_nodes(self._prepared)

    def layer_groups(self) -> dict[str, list[str]]:
        """Weighted layer -> the nodes to keep in float with it, in graph order.

        Leaving a Conv alone in float does not keep its neighbours in float: ONNX Runtime
        then quantizes the ReLU after it on its own, with a Q/DQ pair on the *pre*-ReLU
        tensor (negative values included), which loses more than the Conv did (measured:
        docs/calibration.md, *Why INT8 failed on footage*). So a layer is the weighted
        node with the activation that follows it; the first layer also takes the nodes
        before it (the input's reshaping, the noise-level map's pooling and the
        concatenation: the 8-bit input), and the last layer the nodes after it (the
        output's reshaping, i.e. the predicted residual).
        """
        nodes = list(self._prepared.graph.node)
        weighted = self.weighted_layers()
        if not weighted:
            return {}
        consumers: dict[str, list] = {}
        for n in nodes:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        position = {n.name: k for k, n in enumerate(nodes)}
        skips = set(skip_connections(self._prepared))
        groups = {}
        for w in weighted:
            node = nodes[position[w]]
            group = [w]
            after = consumers.get(node.output[0], [])
            if len(after) == 1 and after[0].op_type in ACTIVATION_OPS:
                group.append(after[0].name)
            groups[w] = group
        first, last = position[weighted[0]], position[weighted[-1]]
        groups[weighted[0]] = [n.name for n in nodes[:first] if n.op_type != "Constant"] + groups[weighted[0]]
        groups[weighted[-1]] += [n.name for n in nodes[last + 1:]
                                 if n.op_type != "Constant" and n.name not in skips]
        return groups

    def quantized_nodes(self, quantized_model) -> list[str]:
        """Nodes of the prepared model that ``quantized_model`` runs between Q/DQ pairs
        (whose input comes from a DequantizeLinear), in graph order."""
        producers = {o: n.op_type for n in quantized_model.graph.node for o in n.output}
        inside = {n.name for n in quantized_model.graph.node if n.op_type not in QDQ_OPS
                  and any(producers.get(i) == "DequantizeLinear" for i in n.input)}
        return [n.name for n in self._prepared.graph.node if n.name in inside]

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The calibrated (min, max) of every tensor (after a first :meth:`quantize`)."""
        calib = require("onnxruntime.quantization.calibrate", purpose="INT8 calibration")
        data = calib.load_tensors_data(self._cache)
        return {name: (float(np.min(v.range_value[0])), float(np.max(v.range_value[1])))
                for name, v in data.data.items()}

    def quantize(self, exclude: Sequence[str] = (), *, only: Sequence[str] | None = None):
        """The INT8 model with ``settings.keep_float`` and ``exclude`` (node names) in float;
        ``only``: quantize just these nodes (for measuring one layer's own loss)."""
        onnx = require("onnx", purpose="INT8 calibration")
        quant = require("onnxruntime.quantization", purpose="INT8 calibration")
        kwargs = ort_arguments(self.settings, self._prepared)
        unknown = set(exclude) - {n.name for n in self._prepared.graph.node}
        if unknown:
            raise InputError(f"no node named {', '.join(sorted(unknown))} in the model")
        kwargs["nodes_to_exclude"] = sorted(set(kwargs["nodes_to_exclude"]) | set(exclude))
        if only is not None:
            kwargs["nodes_to_quantize"] = list(only)
        self._count += 1
        dst = Path(self._tmp.name) / f"int8-{self._count}.onnx"
        reader = _data_reader(self._feeds)
        chatter = io.StringIO()  # ORT's calibrators print() progress; keep stdout for results
        try:
            with contextlib.redirect_stdout(chatter):
                if not self._cache.exists() and (self.settings.method is Method.ENTROPY or self._overrides):
                    _calibrated_ranges(self._start, kwargs, reader, self._cache,
                                       Path(self._tmp.name) / "augmented.onnx", self.settings)
                    _override_ranges(self._cache, self._overrides)
                if self._cache.exists():
                    reader = None
                # the first call computes the ranges and saves them to the cache
                quant.quantize_static(str(self._start), str(dst), reader,
                                      calibration_cache_path=str(self._cache), **kwargs)
        except Exception as exc:
            raise ModelError(
                f"ONNX Runtime's quantizer failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            if chatter.getvalue().strip():
                log.debug("onnxruntime quantizer: %s", chatter.getvalue().strip())
        out = onnx.load(str(dst))
        dst.unlink()
        if not any(n.op_type in QDQ_OPS for n in out.graph.node):
            raise ModelError("ONNX Runtime's quantizer inserted no Q/DQ nodes: the model has no "
                             "operator it can quantize")
        _float_skip_inputs(out)
        return out

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> "Int8Quantizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _float_skip_inputs(model) -> None:
    """Let skip connections read the float graph input again.

    Excluding a node from quantization does not stop ORT from rewiring it to the
    dequantized copy of a tensor that other consumers quantize (the image feeds the first
    layer too), so the skip connection would still see the 8-bit image. Rewire its
    ``DequantizeLinear(QuantizeLinear(graph input))`` inputs back to the graph input.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    graph_inputs = {i.name for i in model.graph.input}
    skips = set(skip_connections_after_quantization(model, producers, graph_inputs))
    for node in model.graph.node:
        if node.name not in skips:
            continue
        for k, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in graph_inputs:
                node.input[k] = q.input[0]


def skip_connections_after_quantization(model, producers, graph_inputs) -> list[str]:
    """Add/Sub nodes reading a graph input directly or through a Q -> DQ pair."""
    out = []
    for n in model.graph.node:
        if n.op_type not in ("Add", "Sub"):
            continue
        for name in n.input:
            if name in graph_inputs:
                out.append(n.name)
                break
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear" and q.input[0] in graph_inputs:
                out.append(n.name)
                break
    return out


def _calibrated_ranges(model_path: Path, kwargs: dict, reader, cache: Path, augmented: Path,
                       settings: Int8Settings) -> None:
    """Ranges from ORT's own calibrators, written to ``quantize_static``'s cache file.

    Entropy: ``quantize_static`` cannot pass a bin count to its calibrator, and ORT's
    default for Entropy is 128 histogram bins for 128 quantized bins: a single candidate
    threshold, the full range, i.e. exactly MinMax. Here the same calibrater runs with
    2048 bins (TensorRT's entropy calibration uses 2048 bins into 128). The other methods
    run as ``quantize_static`` would run them; they come here only when some ranges are
    to be replaced before quantizing.
    """
    calib = require("onnxruntime.quantization.calibrate", purpose="INT8 calibration")
    registry = require("onnxruntime.quantization.registry", purpose="INT8 calibration")
    op_types = kwargs["op_types_to_quantize"] or sorted(
        set(registry.QLinearOpsRegistry) | set(registry.QDQRegistry))
    method = calib.CalibrationMethod.MinMax
    extra: dict = {}
    if settings.method is Method.ENTROPY:
        method = calib.CalibrationMethod.Entropy
        extra = {"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS}
    elif settings.method is Method.PERCENTILE:
        method = calib.CalibrationMethod.Percentile
        extra = {"percentile": settings.percentile}
    calibrator = calib.create_calibrator(
        model_path, op_types, augmented_model_path=str(augmented),
        calibrate_method=method, extra_options=extra,
    )
    try:
        calibrator.collect_data(reader)
        calib.save_tensors_data(calibrator.compute_data(), cache)
    finally:
        del calibrator


def _override_ranges(cache: Path, ranges: Mapping[str, tuple[float, float]]) -> None:
    """Replace the (min, max) of the named tensors in a calibration cache file."""
    if not ranges:
        return
    calib = require("onnxruntime.quantization.calibrate", purpose="INT8 calibration")
    data = calib.load_tensors_data(cache)
    missing = sorted(set(ranges) - set(data.data))
    if missing:
        raise InputError(f"{len(missing)} tensor range(s) given for tensors the model does not "
                         f"quantize: {', '.join(missing[:4])}; the ranges belong to another model")
    for name, (lo, hi) in ranges.items():
        data.data[name] = calib.TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
    calib.save_tensors_data(data, cache)
