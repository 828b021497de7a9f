"""Quantization-aware fine-tuning: what is simulated matches ONNX Runtime's INT8 model,
the learned ranges reach the quantizer, runs resume, and ``calibrate --method qat``
uses them. Tiny random-weight denoisers on small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import tiny_recipe, write_training_images

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny denoiser trained for a few steps: (checkpoint, training folder)."""
    from edgerestore.training.denoise import train

    root = tmp_path_factory.mktemp("qat")
    data = write_training_images(root / "data", n=6, size=48)
    train(data, root / "run", minutes=5, recipe=tiny_recipe(), max_steps=3, handle_signals=False, threads=1)
    return root / "run" / "last.pt", data


def _model_and_qdq(ckpt_path, target, seed=0):
    import onnx
    from edgerestore.calibration.quantize import Int8Quantizer, Int8Settings
    from edgerestore.export.torch_to_onnx import to_onnx_bytes
    from edgerestore.models import ffdnet
    from edgerestore.models.checkpoint import load_checkpoint

    ck = load_checkpoint(ckpt_path)
    model = ffdnet.build(**ck["config"], clip_output=True)
    model.load_state_dict(ck["ema"])
    model.eval()
    fp32 = onnx.load_from_string(to_onnx_bytes(model, ffdnet, ck["config"]))
    rng = np.random.default_rng(seed)
    feeds = []
    for s in (5.0, 25.0, 50.0):
        img = np.clip(rng.random((1, 1, 32, 32), dtype=np.float32) + rng.standard_normal((1, 1, 32, 32)) * s / 255,
                      0, 1).astype(np.float32)
        feeds.append({"image": img, "noise_level": np.full(img.shape, s / 255, np.float32)})
    q = Int8Quantizer(fp32, feeds, Int8Settings(target=target, method="minmax"))
    return model, fp32, feeds, q


def _dq_outputs(qdq, tensors):
    """A copy of ``qdq`` that also outputs the dequantized value of each named tensor."""
    import onnx
    from onnx import helper

    consumers = {}
    for n in qdq.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    for t in tensors:
        q = next(n for n in consumers[t] if n.op_type == "QuantizeLinear")
        out.append(consumers[q.output[0]][0].output[0])
    m = onnx.ModelProto()
    m.CopyFrom(qdq)
    for o in out:
        m.graph.output.append(helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None))
    return m, out


@pytest.mark.parametrize("target", ["cpu", "tensorrt"], ids=["ort-cpu-target", "trt-target"])
def test_simulated_quantization_matches_onnx_runtime(trained, target):
    """Each simulated tensor equals ORT's dequantized one up to a rounding tie: the first
    layers' tensors within one quantization step on >= 99% of the elements (the error then
    compounds through the layers as in any QAT), and the planned points are every Q/DQ
    activation of ORT's model but the ones the plan says it cannot place."""
    import onnxruntime as ort
    import torch
    from edgerestore.training.qat import FakeQuantized, plan_from_qdq

    model, _, feeds, q = _model_and_qdq(trained[0], target)
    with q:
        qdq = q.quantize()
    plan = plan_from_qdq(qdq, model, ["image", "noise_level"])
    n_q = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear"
              and n.input[0] not in {i.name for i in qdq.graph.initializer})
    assert len(plan.points) + len(plan.unplaced) == n_q
    assert len(plan.points) >= 4 and len(plan.weight_modules) == 4
    assert plan.points[0].where == "input" and plan.points[0].module == "body.0"
    if target == "tensorrt":
        assert all(p.symmetric and p.zero_point == 0 for p in plan.points)
    else:
        assert all(p.qmin == 0 and p.qmax == 255 for p in plan.points)
    fq = FakeQuantized(model, plan)
    seen = {}
    modules = dict(model.named_modules())
    for p in plan.points[1:3]:
        modules[p.module].register_forward_hook(lambda _m, _i, o, n=p.tensor: seen.__setitem__(n, o.detach()))
    f = feeds[1]
    with torch.no_grad():
        model(torch.from_numpy(f["image"]), torch.from_numpy(f["noise_level"]))
    probe, names = _dq_outputs(qdq, [p.tensor for p in plan.points[1:3]])
    ort_vals = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"]).run(names, f)
    for p, ref in zip(plan.points[1:3], ort_vals):
        steps = np.abs(seen[p.tensor].numpy() - ref) / p.scale
        assert steps.max() <= 1.0 + 1e-3, p.tensor
        assert (steps > 1e-3).mean() <= 0.01, p.tensor
    fq.remove()
    assert not hasattr(modules["body.0"], "parametrizations")


def test_learned_ranges_reach_the_quantizer_unchanged(trained):
    """Ranges from the plan (no training yet) given back to the quantizer give the same
    scales and zero points; changed ranges change exactly those tensors."""
    from onnx import numpy_helper
    from edgerestore.calibration.quantize import Int8Quantizer, Int8Settings
    from edgerestore.training.qat import FakeQuantized, plan_from_qdq

    model, fp32, feeds, q = _model_and_qdq(trained[0], "cpu")
    with q:
        qdq = q.quantize()
    plan = plan_from_qdq(qdq, model, ["image", "noise_level"])
    fq = FakeQuantized(model, plan)
    ranges = fq.learned_ranges()
    wider = dict(ranges)
    name = plan.points[1].tensor
    wider[name] = (ranges[name][0] * 2, ranges[name][1] * 2)
    for given, factor in ((ranges, 1.0), (wider, 2.0)):
        with Int8Quantizer(fp32, feeds, Int8Settings(target="cpu", method="qat"), ranges=given) as q2:
            out = q2.quantize()
        init = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
        for p in plan.points:
            qn = next(n for n in out.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == p.tensor)
            expect = p.scale * (factor if p.tensor == name else 1.0)
            assert float(init[qn.input[1]]) == pytest.approx(expect, rel=1e-5), p.tensor
            assert int(init[qn.input[2]]) == p.zero_point


def _calibrate_qat(fp32, data, tmp_path, settings):
    """``calibrate`` the exported QAT model on the training images (gate wide open, no
    fallback); returns the INT8 file."""
    import cv2
    from edgerestore.calibration.convert import CalibrationJob, calibrate

    frames = tmp_path / "frames"
    frames.mkdir()
    for f in sorted(data.glob("*.png")):
        cv2.imwrite(str(frames / f.name), cv2.imread(str(f)))
    out = tmp_path / "int8.onnx"
    calibrate(CalibrationJob(model=str(fp32), output=str(out), precision="int8", frames=str(frames),
                             count=6, int8=settings, max_drop_db=50.0, fallback=False))
    return out


def test_qat_run_resumes_exports_and_calibrates_with_its_ranges(trained, tmp_path):
    """A run of a few steps, resumed, exported with its ranges; ``calibrate --method qat``
    then quantizes with the learned scales (not calibrated ones)."""
    import json
    from onnx import load, numpy_helper
    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.errors import InputError
    from edgerestore.model_spec import read_spec
    from edgerestore.training.qat_run import QatRecipe, export_qat, train_qat

    ckpt, data = trained
    recipe = QatRecipe(patch=16, batch=4, val_every=0, log_every=1, holdout_every=3)
    run = tmp_path / "run"
    r1 = train_qat(ckpt, data, run, minutes=5, recipe=recipe, max_steps=2, threads=1, handle_signals=False)
    assert r1["step"] == 2
    with pytest.raises(InputError, match="--resume"):
        train_qat(ckpt, data, run, minutes=5, recipe=recipe, max_steps=2, threads=1, handle_signals=False)
    r2 = train_qat(ckpt, data, run, minutes=5, resume=True, max_steps=4, threads=1, handle_signals=False)
    assert r2["step"] == 4
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["kind"] == "train"] == [1, 2, 3, 4]
    fp32 = export_qat(run, tmp_path / "fp32.onnx", name="tiny-qat")
    spec = read_spec(fp32)
    ranges = spec.provenance["qat"]["ranges"]["cpu"]
    assert spec.provenance["qat"]["steps"] == 4 and len(ranges) >= 4
    out = _calibrate_qat(fp32, data, tmp_path, Int8Settings(target="cpu", method="qat"))
    q = load(str(out))
    init = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    checked = 0
    for name, (lo, hi) in ranges.items():
        qn = [n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == name]
        if qn:
            assert float(init[qn[0].input[1]]) == pytest.approx((hi - lo) / 255.0, rel=1e-5)
            checked += 1
    assert checked >= 4
    with pytest.raises(InputError, match="train qat"):
        calibrate(CalibrationJob(model=str(fp32), output=str(tmp_path / "trt.onnx"), precision="int8",
                                 frames=str(tmp_path / "frames"), count=6,
                                 int8=Int8Settings(target="tensorrt", method="qat")))


def test_the_cli_trains_exports_and_refuses_plan_options_on_resume(trained, tmp_path, capsys):
    import json

    from edgerestore.cli import main
    from edgerestore.model_spec import read_spec

    ckpt, data = trained
    common = ["train", "qat", str(ckpt), "--data", str(data), "--out", str(tmp_path / "run"), "--minutes", "1",
              "--threads", "1"]
    assert main(common + ["--max-steps", "1", "--patch", "16", "--batch", "2", "--val-every", "0",
                          "--target", "tensorrt", "--export", str(tmp_path / "f.onnx")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 1 and out["export"] == str(tmp_path / "f.onnx")
    assert set(read_spec(tmp_path / "f.onnx").provenance["qat"]["ranges"]) == {"tensorrt"}
    assert main(common + ["--resume", "--target", "cpu"]) == 1     # the plan was made for tensorrt
    assert "keeps its target" in capsys.readouterr().err
    # a resumed run may change what it trains on: chrominance-like patches
    assert main(common + ["--resume", "--max-steps", "2", "--chroma-share", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    starts = [r for r in log if r["kind"] == "start"]
    assert [r["recipe"]["chroma_share"] for r in starts] == [0.0, 0.5]


def test_validation_adds_the_chroma_like_check_only_when_the_recipe_trains_on_it(trained):
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.qat_run import QatRecipe
    from edgerestore.training.qat_tasks import DenoiseTask, validate_clipped

    ck = load_checkpoint(trained[0])
    rng = np.random.default_rng(1)
    imgs = [rng.uniform(0.2, 0.8, (24, 24)).astype(np.float32) for _ in range(2)]
    plain_task = DenoiseTask(ck, QatRecipe(seed=7))
    model = plain_task.build()
    plain = plain_task.validator(imgs)(model)
    assert plain == validate_clipped(model, imgs, 7)
    both = DenoiseTask(ck, QatRecipe(seed=7, chroma_share=0.3)).validator(imgs)(model)
    flat = [np.float32(0.5) + np.float32(0.1) * (im - im.mean()) for im in imgs]
    assert both["psnr18_chroma"] == validate_clipped(model, flat, 7, sigmas=(18.0,))["psnr18"]
    assert {k: both[k] for k in plain} == plain


# --- super-resolution: one scale of a tiny multi-scale ESPCN ---------------------------------


@pytest.fixture(scope="module")
def trained_sr(tmp_path_factory):
    """A tiny x2/x3 ESPCN trained for two steps on 'real' degradations: (checkpoint, folder)."""
    from edgerestore.training.sr import SRRecipe, train

    root = tmp_path_factory.mktemp("qat_sr")
    data = write_training_images(root / "data", n=6, size=66)
    recipe = SRRecipe(features=8, depth=2, scales=(2, 3), lr_patch=8, batch=4, holdout_every=3, val_every=0,
                      log_every=1, degradation="real")
    train(data, root / "run", minutes=5, recipe=recipe, max_steps=2, handle_signals=False, threads=1)
    return root / "run" / "last.pt", data


def _sr_model_and_qdq(ckpt_path, target, scale=2):
    """The x``scale`` model of the checkpoint, ORT's INT8 model of it and the feeds (minmax)."""
    import onnx
    from edgerestore.calibration.quantize import Int8Quantizer, Int8Settings
    from edgerestore.export.torch_to_onnx import to_onnx_bytes
    from edgerestore.models import espcn
    from edgerestore.models.checkpoint import load_checkpoint

    ck = load_checkpoint(ckpt_path)
    model = espcn.build(**ck["config"], scale=scale, clip_output=False)
    model.load_state_dict(espcn.state_for_scale(ck["ema"], scale))
    model.eval()
    fp32 = onnx.load_from_string(to_onnx_bytes(model, espcn, ck["config"]))
    rng = np.random.default_rng(3)
    feeds = [{"image": np.round(rng.random((2, 1, 16, 16), dtype=np.float32) * 255) / 255} for _ in range(3)]
    with Int8Quantizer(fp32, feeds, Int8Settings(target=target, method="minmax", image_path_float=False)) as q:
        qdq = q.quantize()
    return model, feeds, qdq


@pytest.mark.parametrize("target", ["cpu", "tensorrt"], ids=["ort-cpu-target", "trt-target"])
def test_sr_simulated_quantization_matches_onnx_runtime(trained_sr, target):
    """Every Q/DQ activation of ORT's INT8 x2 model is simulated (the skip and tail outputs
    feeding the Add, the ReLU outputs, the graph input and, for the cpu target, the sum
    before the pixel shuffle as the model's output); the first layers' tensors equal ORT's
    dequantized ones within one step on >= 99% of the elements, the final output within
    one output step on >= 99% of the pixels."""
    import onnxruntime as ort
    import torch
    from edgerestore.training.qat import FakeQuantized, plan_from_qdq

    model, feeds, qdq = _sr_model_and_qdq(trained_sr[0], target)
    plan = plan_from_qdq(qdq, model, ["image"])
    assert plan.unplaced == []
    n_q = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear"
              and n.input[0] not in {i.name for i in qdq.graph.initializer})
    assert len(plan.points) == n_q
    where = {p.tensor: (p.where, p.module) for p in plan.points}
    assert where["image"] == ("graph_input", "")
    assert where["/skips.2/Conv_output_0"] == ("output", "skips.2")
    assert where["/tails.2/Conv_output_0"] == ("output", "tails.2")
    assert (where.get("/Add_output_0") == ("model_output", "")) == (target == "cpu")
    assert sorted(plan.weight_modules) == ["body.0", "body.2", "body.4", "skips.2", "tails.2"]
    fq = FakeQuantized(model, plan)
    seen = {}
    modules = dict(model.named_modules())
    inner = [p for p in plan.points if p.where == "output"][:3]
    for p in inner:
        modules[p.module].register_forward_hook(lambda _m, _i, o, n=p.tensor: seen.__setitem__(n, o.detach()))
    f = feeds[1]
    with torch.no_grad():
        out = model(torch.from_numpy(f["image"])).clamp(0, 1).numpy()
    probe, names = _dq_outputs(qdq, [p.tensor for p in inner])
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(names + ["output"], f)
    for p, ref in zip(inner, got):
        steps = np.abs(seen[p.tensor].numpy() - ref) / p.scale
        assert steps.max() <= 1.0 + 1e-3, p.tensor
        assert (steps > 1e-3).mean() <= 0.01, p.tensor
    scale = {p.tensor: p.scale for p in plan.points}
    # cpu: the sum is quantized; tensorrt: the sum of the quantized tail and skip outputs is not
    step = (scale["/Add_output_0"] if target == "cpu"
            else scale["/tails.2/Conv_output_0"] + scale["/skips.2/Conv_output_0"])
    out_steps = np.abs(out - got[-1]) / step
    assert (out_steps > 1.0 + 1e-3).mean() <= 0.01  # a rounding tie upstream can move a few pixels more
    fq.remove()


def test_sr_qat_runs_resumes_exports_and_calibrates_with_its_ranges(trained_sr, tmp_path):
    """A run of a few steps at x2 on the checkpoint's own degradations, resumed, exported
    as the x2 model with its learned ranges; ``calibrate --method qat`` quantizes with
    them (and the skip conv and final add the run kept in float); the input is held at
    [0, 1] (step 1/255, zero point 0)."""
    import json
    from onnx import load, numpy_helper
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.model_spec import read_spec
    from edgerestore.training.qat_run import QatRecipe, export_qat, train_qat

    ckpt, data = trained_sr
    run = tmp_path / "run"
    recipe = QatRecipe(scale=2, patch=8, batch=4, val_every=2, log_every=1, holdout_every=3)
    assert train_qat(ckpt, data, run, minutes=5, recipe=recipe, max_steps=2, threads=1,
                     handle_signals=False)["step"] == 2
    r2 = train_qat(ckpt, data, run, minutes=5, resume=True, max_steps=3, threads=1, handle_signals=False)
    assert r2["step"] == 3
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    vals = [x for x in lines if x["kind"] == "val"]
    assert vals[0]["when"].startswith("fp32") and {"psnr_x2", "real_psnr_x2"} <= set(vals[0])
    assert all(np.isfinite(v["psnr_x2"]) and v["psnr_x2"] > 10 for v in vals)
    fp32 = export_qat(run, tmp_path / "sr-x2-qat.onnx")
    spec = read_spec(fp32)
    assert spec.scale == 2 and spec.name == "sr-x2" and spec.provenance["qat"]["steps"] == 3
    ranges = spec.provenance["qat"]["ranges"]["cpu"]
    keep = spec.provenance["qat"]["keep_float"]
    assert keep == ["/skips.2/Conv", "/Add"]  # the image path stays in float
    assert "/skips.2/Conv_output_0" not in ranges and "/Add_output_0" not in ranges
    assert ranges["image"] == [0.0, pytest.approx(1.0, rel=1e-6)]
    out = _calibrate_qat(fp32, data, tmp_path, Int8Settings(target="cpu", method="qat", keep_float=tuple(keep)))
    q = load(str(out))
    assert read_spec(out).provenance["calibration"]["qdq"]["float_layers"] == ["/skips.2/Conv"]
    init = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    checked = 0
    for name, (lo, hi) in ranges.items():
        qn = [n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == name]
        assert qn, name
        assert float(init[qn[0].input[1]]) == pytest.approx((hi - lo) / 255.0, rel=1e-5), name
        assert int(init[qn[0].input[2]]) == round(-lo / ((hi - lo) / 255.0)), name
        checked += 1
    assert checked == len(ranges) == 5  # input, 3 ReLUs, tail


def test_sr_qat_needs_a_scale_the_checkpoint_has_and_a_denoiser_takes_none(trained, trained_sr, tmp_path):
    from edgerestore.errors import InputError
    from edgerestore.training.qat_run import QatRecipe, train_qat

    ckpt, data = trained_sr
    with pytest.raises(InputError, match="--scale"):
        train_qat(ckpt, data, tmp_path / "a", minutes=1, recipe=QatRecipe(), max_steps=1, threads=1,
                  handle_signals=False)
    with pytest.raises(InputError, match="no x4 head"):
        train_qat(ckpt, data, tmp_path / "b", minutes=1, recipe=QatRecipe(scale=4), max_steps=1, threads=1,
                  handle_signals=False)
    with pytest.raises(InputError, match="super-resolution checkpoints"):
        train_qat(trained[0], trained[1], tmp_path / "c", minutes=1, recipe=QatRecipe(scale=2), max_steps=1,
                  threads=1, handle_signals=False)


def test_the_cli_fine_tunes_one_sr_scale_with_the_whole_image_path_quantized(trained_sr, tmp_path, capsys):
    """``--scale 2 --keep-float none``: the skip and the sum are quantized too; the sum
    before the pixel shuffle is simulated as the model output and held at [0, 1]."""
    import json

    from edgerestore.cli import main
    from edgerestore.model_spec import read_spec

    ckpt, data = trained_sr
    assert main(["train", "qat", str(ckpt), "--data", str(data), "--out", str(tmp_path / "run"), "--minutes", "1",
                 "--threads", "1", "--max-steps", "1", "--patch", "8", "--batch", "2", "--val-every", "0",
                 "--scale", "2", "--keep-float", "none", "--export", str(tmp_path / "f.onnx")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 1
    qat = read_spec(tmp_path / "f.onnx").provenance["qat"]
    assert qat["keep_float"] == [] and qat["recipe"]["scale"] == 2
    assert qat["ranges"]["cpu"]["/Add_output_0"] == [0.0, pytest.approx(1.0, rel=1e-6)]
    assert "/skips.2/Conv_output_0" in qat["ranges"]["cpu"]
