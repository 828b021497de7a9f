"""Per-layer precision: the search for layers to keep in float, its budget, its advice,
the per-sigma gate, and the refusals of footage that cannot calibrate a model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgerestore.calibration.fallback import refusal_advice, search_float_layers
from edgerestore.calibration.gate import evaluate
from edgerestore.cli import main
from edgerestore.model_spec import read_spec
from tests import tiny_models as tm
from tests.calibration.test_calibrate import _fragile_model, _leftovers


def _report(drop_per_sigma: dict[float, float], max_drop_db=0.2):
    """A gate report whose drop at each sigma is exactly the given value (dB)."""
    clean, fp32, conv, labels = [], [], [], []
    base = np.zeros((8, 8), np.float32)
    for sigma, drop in drop_per_sigma.items():
        clean.append(base)
        fp32.append(base + 0.01)
        conv.append(base + np.float32(0.01 * 10 ** (drop / 20)))
        labels.append(f"sigma {sigma:g}")
    return evaluate(clean, fp32, conv, precision="int8", max_drop_db=max_drop_db, labels=labels)


def test_gate_judges_the_worst_sigma_not_the_mean():
    rep = _report({15: 0.0, 25: 0.05, 50: 0.4})
    assert rep.drop_db < 0.2 and rep.worst_drop_db == pytest.approx(0.4, abs=1e-3)
    assert rep.worst_group == "sigma 50" and not rep.passed
    assert "sigma 50 +0.400" in rep.format() and rep.to_dict()["worst_group"] == "sigma 50"


def _fake_model(cost_per_layer: dict[str, float]):
    """quantize/gate pair of a model whose drop is the sum of its quantized layers' costs."""
    calls = []

    def quantize(exclude):
        calls.append(tuple(exclude))
        return tuple(exclude)

    def gate(model):
        drop = sum(c for name, c in cost_per_layer.items() if name not in model)
        return _report({25: drop})

    return quantize, gate, calls


def test_greedy_search_keeps_the_fewest_most_sensitive_layers_in_float():
    cost = {"a": 0.05, "b": 0.3, "c": 0.01, "d": 0.2}
    quantize, gate, calls = _fake_model(cost)
    first = (quantize([]), gate(()))
    res = search_float_layers(quantize, gate, list(cost), first)
    assert res.report.passed and res.float_layers == ["b", "d"]  # graph order
    assert res.sensitivity["b"] == pytest.approx(0.3, abs=1e-3)
    assert not res.stopped_by_budget and res.evaluations == len(calls) - 1


def test_greedy_search_skips_layers_whose_float_copy_makes_it_worse():
    # x and y both in float cost 0.2 dB (their quantization errors cancelled each other)
    cost = {"a": 0.1, "x": 0.08, "y": 0.07, "b": 0.06, "c": 0.05}

    def quantize(exclude):
        return tuple(exclude)

    def gate(model):
        drop = 0.1 + sum(c for name, c in cost.items() if name not in model)
        return _report({25: drop + (0.2 if {"x", "y"} <= set(model) else 0.0)})

    res = search_float_layers(quantize, gate, list(cost), (quantize([]), gate(())))
    assert res.report.passed and res.float_layers == ["a", "x", "b", "c"]


def test_search_stops_when_its_budget_is_spent_and_says_so(caplog):
    cost = {"a": 0.5, "b": 0.5}
    quantize, gate, _ = _fake_model(cost)
    ticks = iter(range(100))
    res = search_float_layers(quantize, gate, list(cost), (quantize([]), gate(())),
                              budget_s=0.5, clock=lambda: next(ticks))
    assert res.stopped_by_budget and not res.report.passed
    assert "budget is spent" in caplog.text


def test_advice_never_suggests_what_is_in_use_and_puts_layers_first():
    rep = _report({15: 0.5})
    tips = refusal_advice(rep, method="entropy", target="cpu", fallback_used=False, fallback=None,
                          frames_used=32, count=32, task="denoise")
    assert tips[0].startswith("drop --no-fallback")
    assert not any("--method entropy" in t for t in tips)
    assert not any("--target cpu" in t for t in tips)
    tips = refusal_advice(rep, method="minmax", target="tensorrt", fallback_used=True,
                          fallback=None, frames_used=10, count=32, task="super_resolution")
    assert not any("no-fallback" in t for t in tips) and not any("--count" in t for t in tips)
    # for super-resolution entropy is the worse method: the advice does not send users there
    assert not any("--method entropy" in t for t in tips) and any("--target cpu" in t for t in tips)
    tips = refusal_advice(rep, method="entropy", target="cpu", fallback_used=True,
                          fallback=None, frames_used=10, count=32, task="super_resolution")
    assert any("--method minmax" in t for t in tips)
    tips = refusal_advice(rep, method="minmax", target="cpu", fallback_used=True,
                          fallback=None, frames_used=10, count=32, task="denoise")
    assert any("--method entropy" in t for t in tips)


def _fragile_output_model():
    """ReLU(conv1(image)) -> conv2 with two output channels, the second 1000x larger, and
    the first sliced out as the output: INT8 crushes the useful channel of conv2's output
    unless the last layer (conv2 with the Slice after it) stays in float."""
    from onnx import TensorProto, helper, numpy_helper

    w1 = np.ones((1, 1, 1, 1), np.float32)
    w2 = np.array([1.0, 1000.0], np.float32).reshape(2, 1, 1, 1)
    consts = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
              numpy_helper.from_array(np.array([0], np.int64), "starts"),
              numpy_helper.from_array(np.array([1], np.int64), "ends"),
              numpy_helper.from_array(np.array([1], np.int64), "axes")]
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Slice", ["c2", "starts", "ends", "axes"], ["output"], name="slice")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])
    return tm._model(nodes, [tm._io("image", 1)], [out], consts)


def test_calibrate_keeps_layers_in_float_when_the_gate_fails(tmp_path, gray_frames_dir, capsys):
    model = _fragile_output_model()
    src = tm.save(model, tmp_path / "fragile.onnx", tm.spec_for(model, name="fragile"))
    out = tmp_path / "fragile-int8.onnx"
    rc = main(["calibrate", str(src), "--frames", str(gray_frames_dir), "-o", str(out),
               "--count", "6", "--per-tensor", "--json", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["fallback"]["float_layers"] == ["conv2"]
    assert report["qdq"]["float_layers"] == ["conv2"] and report["qdq"]["int8_layers"] == 1
    assert report["fallback"]["speed_vs_fp32"] > 0
    cal = read_spec(out).provenance["calibration"]
    assert cal["fallback"]["float_layers"] == report["fallback"]["float_layers"]
    assert _leftovers(tmp_path) == []


def test_no_fallback_refuses_and_suggests_the_search(tmp_path, gray_frames_dir, capsys):
    model = _fragile_model()
    src = tm.save(model, tmp_path / "fragile.onnx", tm.spec_for(model, name="fragile"))
    out = tmp_path / "fragile-int8.onnx"
    rc = main(["calibrate", str(src), "--frames", str(gray_frames_dir), "-o", str(out),
               "--count", "6", "--per-tensor", "--no-fallback"])
    err = capsys.readouterr().err
    assert rc == 1 and "drop --no-fallback" in err and not out.exists()
    rc = main(["calibrate", str(src), "--frames", str(gray_frames_dir), "-o", str(out),
               "--count", "6", "--per-tensor", "--fallback-seconds", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "time budget spent" in err and "--fallback-seconds" in err
    assert not out.exists() and _leftovers(tmp_path) == []


def _video(path, frames):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


def test_footage_that_cannot_calibrate_is_refused_with_the_fix(conv_model_path, tmp_path, capsys):
    out = tmp_path / "x.onnx"
    flat = _video(tmp_path / "flat.avi", [np.full((48, 64, 3), 90, np.uint8)] * 12)
    assert main(["calibrate", str(conv_model_path), "--frames", str(flat), "-o", str(out)]) == 1
    assert "single flat colour" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    two = _video(tmp_path / "two.avi", [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(2)])
    assert main(["calibrate", str(conv_model_path), "--frames", str(two), "-o", str(out)]) == 1
    assert "too few calibration frames: 2 usable" in capsys.readouterr().err
    assert not out.exists()


def test_very_dark_footage_is_calibrated_with_a_warning(conv_model_path, tmp_path, capsys):
    rng = np.random.default_rng(1)
    dark = _video(tmp_path / "dark.avi", [rng.integers(0, 12, (48, 64, 3), np.uint8) for _ in range(8)])
    out = tmp_path / "dark-int8.onnx"
    rc = main(["calibrate", str(conv_model_path), "--frames", str(dark), "-o", str(out),
               "--count", "8", "--method", "minmax", "--max-drop-db", "100"])
    assert rc == 0 and out.exists()
    assert "the footage is very dark (mean level" in capsys.readouterr().err
