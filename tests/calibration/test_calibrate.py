"""The accuracy gate and `edgerestore calibrate` end to end on tiny real models."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgerestore.calibration.gate import GateError, enforce, evaluate
from edgerestore.errors import InputError
from edgerestore.cli import main
from edgerestore.metrics import psnr
from edgerestore.model_spec import read_spec
from tests import tiny_models as tm


def test_psnr_and_gate_arithmetic():
    clean = np.zeros((10, 10), np.float32)
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)
    assert psnr(clean, clean) == 100.0
    fp32 = [clean + 0.1]
    ok = evaluate([clean], fp32, [clean + 0.1], precision="int8", max_drop_db=0.3)
    assert ok.drop_db == pytest.approx(0.0) and ok.passed and ok.psnr_vs_fp32 == 100.0
    bad = evaluate([clean], fp32, [clean + 0.2], precision="int8", max_drop_db=0.3)
    assert bad.drop_db == pytest.approx(20 * np.log10(2), rel=1e-6) and not bad.passed
    assert bad.max_abs_diff == pytest.approx(0.1, rel=1e-5)
    enforce(ok, output="x.onnx")
    with pytest.raises(GateError, match="x.onnx was not written") as err:
        enforce(bad, output="x.onnx")
    assert err.value.report is bad


def _fragile_model():
    """Identity through a ReLU layer whose other channel is 1000x larger: per-tensor INT8
    activations give the useful channel a step of ~4, i.e. the output collapses."""
    w1 = np.zeros((2, 1, 1, 1), np.float32)
    w1[0], w1[1] = 1.0, 1000.0
    w2 = np.zeros((1, 2, 1, 1), np.float32)
    w2[0, 0] = 1.0
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["output"], name="conv2")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])
    return tm._model(nodes, [tm._io("image", 1)], [out],
                     [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_calibrate_int8_writes_a_model_that_runs_like_any_model(
        conv_model_path, gray_frames_dir, tmp_path, capsys):
    out = tmp_path / "conv-int8.onnx"
    rc = main(["calibrate", str(conv_model_path), "--frames", str(gray_frames_dir), "-o", str(out),
               "--count", "8", "--threads", "1", "--json", "--method", "minmax"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["frames"] == 2 and report["drop_db"] <= 0.3
    assert report["qdq"]["int8_layers"] == 3
    spec = read_spec(out)
    assert spec.precision == "int8" and spec.name == "tiny-conv-int8"
    cal = spec.provenance["calibration"]
    assert cal["settings"]["target"] == "cpu" and cal["gate"]["passed"]
    assert cal["source_model"] == "tiny-conv" and len(cal["source_sha256"]) == 64
    assert spec.provenance["made_by"] == "tests/tiny_models.py"  # original provenance kept
    assert _leftovers(tmp_path) == []
    from edgerestore.restorer import ModelRestorer

    noisy = np.random.default_rng(0).random((20, 30), dtype=np.float32)
    with ModelRestorer.open(out, backend="ort-cpu", threads=1) as r_int8, \
            ModelRestorer.open(conv_model_path, backend="ort-cpu", threads=1) as r_fp32:
        a, b = r_int8(noisy, sigma=15), r_fp32(noisy, sigma=15)
    assert np.abs(a - b).mean() < 0.01


def test_calibrate_tensorrt_target_and_fp16_without_frames(conv_model_path, gray_frames_dir, tmp_path):
    trt = tmp_path / "conv-trt.onnx"
    assert main(["calibrate", str(conv_model_path), "--frames", str(gray_frames_dir), "-o", str(trt),
                 "--target", "tensorrt", "--count", "6", "-q",
                 "--gate-sigma", "25", "--gate-sigma", "10"]) == 0
    from edgerestore.backends.onnx_graph import zero_points

    assert not any(z.any() for z in zero_points(onnx.load(str(trt))).values())
    spec = read_spec(trt)
    assert spec.name == "tiny-conv-trt-int8"
    assert spec.provenance["calibration"]["settings"]["method"] == "entropy"  # the default for both targets
    per_frame = spec.provenance["calibration"]["gate"]["per_frame"]
    assert [f["label"] for f in per_frame] == ["sigma 10", "sigma 25"]  # one per gate frame, sorted
    half = tmp_path / "conv-fp16.onnx"
    assert main(["calibrate", str(conv_model_path), "--precision", "fp16", "-o", str(half), "-q"]) == 0
    spec = read_spec(half)
    assert spec.precision == "fp16" and "synthetic" in spec.provenance["calibration"]["frames"]


def test_gate_refuses_a_badly_quantizing_model(tmp_path, gray_frames_dir, capsys):
    model = _fragile_model()
    src = tm.save(model, tmp_path / "fragile.onnx", tm.spec_for(model, name="fragile"))
    out = tmp_path / "fragile-int8.onnx"
    rc = main(["calibrate", str(src), "--frames", str(gray_frames_dir), "-o", str(out),
               "--count", "6", "--per-tensor"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "REFUSED" in captured.out
    assert "accuracy gate refused the int8 model" in captured.err and "was not written" in captured.err
    assert not out.exists() and _leftovers(tmp_path) == []
    # the user may accept the loss explicitly
    assert main(["calibrate", str(src), "--frames", str(gray_frames_dir), "-o", str(out),
                 "--count", "6", "--per-tensor", "--max-drop-db", "100", "-q"]) == 0
    assert out.exists()


def test_bad_requests_fail_with_the_fix_and_write_nothing(conv_model_path, gray_frames_dir,
                                                          tmp_path, capsys):
    out = tmp_path / "o.onnx"
    cases = [
        (["--frames", str(gray_frames_dir), "--count", "2"], "--count must be at least 4"),
        ([], "INT8 calibration needs frames"),
        (["--frames", str(tmp_path / "none")], "calibration frames not found"),
        (["--frames", str(gray_frames_dir), "--keep-float", "conv7"], "no node named 'conv7'"),
    ]
    for extra, message in cases:
        assert main(["calibrate", str(conv_model_path), "-o", str(out), *extra]) == 1
        assert message in capsys.readouterr().err
    few = tmp_path / "few"
    few.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (few / name).write_bytes((gray_frames_dir / "000.png").read_bytes())
    assert main(["calibrate", str(conv_model_path), "--frames", str(few), "-o", str(out)]) == 1
    assert "too few calibration frames: 3 usable" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["calibrate", str(conv_model_path), "--frames", str(gray_frames_dir),
                 "-o", str(blocker / "o.onnx")]) == 1
    assert "cannot write to" in capsys.readouterr().err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 50)
    assert main(["calibrate", str(junk), "--frames", str(gray_frames_dir), "-o", str(out)]) == 1
    assert "not an ONNX model" in capsys.readouterr().err
    assert not out.exists()


def test_quantized_models_are_not_calibrated_again(conv_model_path, gray_frames_dir, tmp_path, capsys):
    first = tmp_path / "q.onnx"
    assert main(["calibrate", str(conv_model_path), "--frames", str(gray_frames_dir), "-o", str(first),
                 "--count", "6", "-q"]) == 0
    assert main(["calibrate", str(first), "--frames", str(gray_frames_dir), "-o",
                 str(tmp_path / "qq.onnx")]) == 1
    assert "already int8" in capsys.readouterr().err


def test_unclipped_noise_calibration_widens_the_input_range(conv_model_path, gray_frames_dir, tmp_path, capsys):
    """--noise unclipped records frames with values outside [0, 1] (which the runtime's
    restorer otherwise refuses), so the image input's quantization range covers them."""
    from onnx import numpy_helper

    def input_range(noise):
        out = tmp_path / f"{noise}.onnx"
        rc = main(["calibrate", str(conv_model_path), "--frames", str(gray_frames_dir), "-o", str(out),
                   "--count", "8", "--threads", "1", "--json", "--method", "minmax",
                   "--noise", noise, "--sigma", "50", "--max-drop-db", "50"])
        assert rc == 0
        capsys.readouterr()
        assert read_spec(out).provenance["calibration"]["calibration_noise"] == noise
        model = onnx.load(str(out))
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")  # the first: image input
        scale, zero = float(inits[q.input[1]]), int(inits[q.input[2]])
        return (0 - zero) * scale, (255 - zero) * scale

    lo_c, hi_c = input_range("clipped")
    lo_u, hi_u = input_range("unclipped")
    assert lo_c >= -0.01 and hi_c <= 1.01
    assert lo_u < -0.1 and hi_u > 1.1, (lo_u, hi_u)


def test_unclipped_noise_option_is_validated():
    from edgerestore.calibration.convert import CalibrationJob

    with pytest.raises(InputError, match="noise must be"):
        CalibrationJob(model="m.onnx", output="o.onnx", precision="int8", frames="f", noise="raw")
