"""INT8 (both targets) and FP16 conversion of a tiny real conv net, checked the way ONNX
Runtime's own quantization tests check: Q/DQ nodes inserted, the quantized model runs in
ONNX Runtime, and its output is close to the float model's (the ONNX reference
evaluator's) within stated tolerances."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

from edgerestore.backends.onnx_graph import is_quantized, summarize, zero_points
from edgerestore.calibration.fp16 import convert_fp16
from edgerestore.calibration.quantize import (
    Int8Settings,
    Method,
    Target,
    ort_arguments,
    quantize_int8,
)
from edgerestore.errors import InputError, ModelError
from tests.calibration.convnets import conv_denoiser, reference

# Output tolerances against the FP32 reference, outputs in [0, 1]: INT8 per-channel
# on this 3-layer net stays within a few 8-bit levels; FP16 within float16 rounding.
INT8_MAX_ABS = 0.05
INT8_MEAN_ABS = 0.006
FP16_MAX_ABS = 2e-3


def _test_input(seed=5):
    rng = np.random.default_rng(seed)
    clean = np.kron(rng.random((6, 8)), np.ones((8, 8))).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 20 / 255, clean.shape), 0, 1).astype(np.float32)
    return noisy[None, None], np.full((1, 1, *clean.shape), 20 / 255, np.float32)


def _run(model, image, sigma_map):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": image, "sigma_map": sigma_map})[0]


@pytest.fixture(scope="module")
def fp32():
    return conv_denoiser()


@pytest.fixture(scope="module")
def quantized(fp32, calibration_feeds):
    # minmax: the exact observed range, which the tolerances above are stated for (entropy
    # and percentile clip the tails on purpose, so single outputs can be further off)
    return {t: quantize_int8(fp32, calibration_feeds, Int8Settings(target=t, method="minmax"))
            for t in Target}


def test_default_method_per_target():
    assert Int8Settings().method is Method.ENTROPY
    assert Int8Settings(target="tensorrt").method is Method.ENTROPY
    assert Int8Settings(method=None).method is Method.ENTROPY
    assert Int8Settings(target="cpu", method="minmax").method is Method.MINMAX


# ids must not be the bare word "tensorrt": conftest treats that keyword as the GPU marker
@pytest.mark.parametrize("target", list(Target), ids=lambda t: f"target_{t.value}")
def test_int8_inserts_qdq_and_stays_close_to_fp32(fp32, quantized, target):
    q = quantized[target]
    s = summarize(q)
    assert s.quantize >= 3 and s.dequantize >= 6
    assert sorted(s.quantized_weighted) == ["conv1", "conv2", "conv3"] and s.float_weighted == []
    assert is_quantized(q) and not is_quantized(fp32)
    image, sigma_map = _test_input()
    want = reference(fp32, image, sigma_map)
    got = _run(q, image, sigma_map)
    diff = np.abs(got - want)
    assert diff.max() <= INT8_MAX_ABS and diff.mean() <= INT8_MEAN_ABS, (diff.max(), diff.mean())
    assert diff.max() > 0  # it really is a different (quantized) computation


def test_cpu_target_uses_u8_activations_and_s8_per_channel_weights(quantized):
    q = quantized[Target.CPU]
    zps = zero_points(q)
    assert zps["r1_zero_point"].dtype == np.uint8
    assert zps["w2_zero_point"].dtype == np.int8 and zps["w2_zero_point"].shape == (8,)
    assert not any(zps[k].any() for k in zps if k.startswith("w"))  # symmetric weights
    (sub,) = [n for n in q.graph.node if n.op_type == "Sub"]
    assert sub.input[0] == "image"  # the skip connection reads the float image, not a DQ


def test_tensorrt_target_is_symmetric_int8_on_weighted_inputs_only(quantized):
    q = quantized[Target.TENSORRT]
    zps = zero_points(q)
    assert zps, "no zero points found"
    for name, zp in zps.items():
        assert not zp.any(), f"{name} is not 0"
        assert zp.dtype in (np.int8, np.int32), name
    assert zps["w1_zero_point"].shape == (8,)  # per output channel
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    q_inputs = [n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert all(producers.get(t) != "Conv" for t in q_inputs), "a Conv output is quantized"
    consumers = {}
    for n in q.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    for n in q.graph.node:  # every activation DQ feeds a weighted layer
        if n.op_type == "DequantizeLinear" and not n.input[0].endswith("_quantized"):
            assert set(consumers[n.output[0]]) <= {"Conv"}, n.output[0]
    # weights in TensorRT's range [-127, 127]
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    assert min(int(v.min()) for k, v in inits.items() if v.dtype == np.int8) >= -127


@pytest.mark.parametrize("method", [Method.ENTROPY, Method.PERCENTILE])
def test_other_calibration_methods_run(fp32, calibration_feeds, method):
    q = quantize_int8(fp32, calibration_feeds[:4], Int8Settings(method=method))
    image, sigma_map = _test_input()
    diff = np.abs(_run(q, image, sigma_map) - reference(fp32, image, sigma_map))
    assert diff.mean() <= 2 * INT8_MEAN_ABS


def test_keep_float_leaves_first_and_last_layers_in_float(fp32, calibration_feeds):
    q = quantize_int8(fp32, calibration_feeds[:4], Int8Settings(keep_float=("first", "last")))
    s = summarize(q)
    assert s.float_weighted == ["conv1", "conv3"] and s.quantized_weighted == ["conv2"]


def test_bad_settings_are_refused_before_any_work(fp32, calibration_feeds):
    with pytest.raises(InputError, match="reduce_range"):
        Int8Settings(target="tensorrt", reduce_range=True)
    with pytest.raises(ValueError):
        Int8Settings(method="kl")
    with pytest.raises(InputError, match="no node named 'conv9'"):
        ort_arguments(Int8Settings(keep_float=("conv9",)), fp32)
    with pytest.raises(InputError, match="no calibration data"):
        quantize_int8(fp32, [], Int8Settings())


def test_already_quantized_models_are_refused(quantized, calibration_feeds):
    with pytest.raises(ModelError, match="already quantized"):
        quantize_int8(quantized[Target.CPU], calibration_feeds, Int8Settings())
    with pytest.raises(ModelError, match="already quantized"):
        convert_fp16(quantized[Target.CPU])


def test_fp16_keeps_float32_io_and_matches_fp32(fp32):
    half = convert_fp16(fp32)
    assert all(i.data_type == TensorProto.FLOAT16 for i in half.graph.initializer)
    io = [v.type.tensor_type.elem_type for v in (*half.graph.input, *half.graph.output)]
    assert io == [TensorProto.FLOAT] * 3
    onnx.checker.check_model(half)
    image, sigma_map = _test_input()
    diff = np.abs(_run(half, image, sigma_map) - reference(fp32, image, sigma_map))
    assert 0 < diff.max() <= FP16_MAX_ABS
    full16 = convert_fp16(fp32, keep_io_types=False)
    assert full16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16


@pytest.mark.parametrize("method", [Method.MINMAX, Method.PERCENTILE], ids=lambda m: m.value)
def test_every_calibration_feed_counts(fp32, method):
    """The brightest feed comes first, among 20: the image input's scale must cover it
    (a calibrator that dropped early feeds, as ORT 1.32's MinMax does with
    CalibMaxIntermediateOutputs set, would give a scale for 0.2 instead of 1.0)."""
    rng = np.random.default_rng(2)
    feeds = [{"image": rng.random((1, 1, 16, 16), dtype=np.float32) * (1.0 if i == 0 else 0.2),
              "sigma_map": np.full((1, 1, 16, 16), 0.05, np.float32)} for i in range(20)]
    q = quantize_int8(fp32, feeds, Int8Settings(target="tensorrt", method=method))
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    scale = float(inits["x0_scale"])  # the concat of image and noise map, symmetric int8
    assert scale * 127 >= 0.9, scale * 127  # (entropy may rightly clip so rare a tail)


def test_entropy_really_differs_from_minmax_and_prints_nothing(fp32, calibration_feeds, capsys):
    def scales(method):
        q = quantize_int8(fp32, calibration_feeds, Int8Settings(target="tensorrt", method=method))
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        return {k: float(inits[k]) for k in ("r1_scale", "r2_scale")}

    mm, ent = scales("minmax"), scales("entropy")
    assert all(ent[k] <= mm[k] * 1.0001 for k in mm)  # entropy clips, never widens
    assert any(ent[k] < mm[k] * 0.99 for k in mm), (mm, ent)  # with 128 bins they are equal
    assert capsys.readouterr().out == ""
