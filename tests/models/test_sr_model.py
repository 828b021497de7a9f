"""The ESPCN-class SR architecture, its training recipe and its export (needs torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerestore.errors import InputError, ModelError
from edgerestore.resize import imresize

pytestmark = pytest.mark.torch

TINY = {"scales": [2, 3], "features": 8, "depth": 2}


def test_output_is_exactly_scale_times_input_for_every_head():
    import torch

    from edgerestore.models import espcn

    m = espcn.build(**TINY).eval()
    x = torch.rand(2, 1, 13, 21)
    with torch.no_grad():
        for s in (2, 3):
            assert tuple(m(x, s).shape) == (2, 1, 13 * s, 21 * s)
        single = espcn.build(**TINY, scale=3).eval()
        assert tuple(single(x).shape) == (2, 1, 39, 63)
    with pytest.raises(KeyError):
        m(x, 4)  # no x4 head in this model


def test_untrained_model_is_matlab_bicubic_in_the_interior(rng):
    # the skip is initialised to bicubic's polyphase weights and the tail to ~0
    import torch

    from edgerestore.models import espcn

    m = espcn.build(**TINY).eval()
    with torch.no_grad():
        for t in m.tails.values():
            t.weight.zero_()
        x = rng.random((30, 40))
        for s in (2, 3):
            y = m(torch.from_numpy(x.astype(np.float32))[None, None], s)[0, 0].numpy()
            ref = imresize(x, s)
            b = 3 * s  # zero padding of the conv vs mirror padding of imresize at the border
            assert np.abs(y - ref)[b:-b, b:-b].max() < 1e-5


def test_single_scale_weights_are_a_subset_of_the_multiscale_ones():
    import torch

    from edgerestore.models import espcn

    full = espcn.build(**TINY)
    sub = espcn.state_for_scale(full.state_dict(), 3)
    assert not any(k.startswith(("tails.2.", "skips.2.")) for k in sub)
    one = espcn.build(**TINY, scale=3)
    one.load_state_dict(sub)  # strict: same names, nothing missing
    x = torch.rand(1, 1, 9, 9)
    with torch.no_grad():
        assert torch.equal(one.eval()(x), full.eval()(x, 3))
    assert espcn.count_params(TINY, 3) == sum(p.numel() for p in one.parameters())


def _export(tmp_path, model, scale, **kw):
    from edgerestore.models import espcn
    from edgerestore.export import SR_PARITY_SIZES, export_model

    spec = espcn.model_spec(TINY, scale=scale, name=f"tiny-x{scale}", provenance={"made_by": "test"})
    return export_model(model, espcn, TINY, spec, tmp_path / f"x{scale}.onnx", sizes=SR_PARITY_SIZES, **kw)


def test_export_metadata_round_trip_and_ort_matches_torch(tmp_path):
    import onnx
    import onnxruntime as ort
    import torch

    from edgerestore.model_spec import read_spec
    from edgerestore.models import espcn

    torch.manual_seed(0)
    model = espcn.build(**TINY, scale=3, clip_output=True)
    with torch.no_grad():  # random, non-trivial tail weights
        for p in model.tails.parameters():
            p.normal_(0, 0.05)
    _export(tmp_path, model, 3)
    spec = read_spec(tmp_path / "x3.onnx")
    assert (spec.task, spec.scale, spec.color, spec.value_range) == ("super_resolution", 3, "luma", (0.0, 1.0))
    assert spec.inputs == {"image": "image"} and spec.size_multiple == 1
    parity = spec.provenance["parity"]
    assert parity["atol"] == 1e-4 and max(parity["max_abs_diff"].values()) <= 1e-4
    proto = onnx.load(str(tmp_path / "x3.onnx"))
    assert proto.opset_import[0].version == 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param  # dynamic H and W
    # independent check at a size the exporter did not try: ORT vs torch within 1e-5
    x = torch.rand(1, 1, 17, 29)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    got = ort.InferenceSession(str(tmp_path / "x3.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"image": x.numpy()})[0]
    assert got.shape == (1, 1, 51, 87)
    assert np.abs(got - ref).max() < 1e-5


def test_parity_check_refuses_a_graph_that_differs_from_the_model(tmp_path):
    import torch

    from edgerestore.models import espcn
    from edgerestore.export import parity_check, to_onnx_bytes

    a = espcn.build(**TINY, scale=2, clip_output=True)
    raw = to_onnx_bytes(a, espcn, TINY)
    b = espcn.build(**TINY, scale=2, clip_output=True)
    with torch.no_grad():
        b.tails["2"].bias.add_(0.01)  # 0.01 everywhere: far above atol 1e-4
    with pytest.raises(ModelError, match="parity check failed"):
        parity_check(raw, b, espcn, TINY, sizes=((1, 16, 16),))


@pytest.fixture
def tiny_train_dir(tmp_path, rng):
    import cv2

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(6):  # smooth random images, 72x72 (a multiple of 2, 3 and 4)
        img = cv2.GaussianBlur(rng.random((72, 72)).astype(np.float32), (0, 0), 2.0)
        img = (img - img.min()) / (img.max() - img.min())
        cv2.imwrite(str(d / f"im{i}.png"), (img * 255).astype(np.uint8))
    return d


def _recipe(**kw):
    from edgerestore.training.sr import SRRecipe

    return SRRecipe(scales=(2, 3), features=8, depth=2, lr_patch=12, batch=4, val_every=3, log_every=2,
                    holdout_every=3, **kw)


def test_training_resumes_exactly_and_exports_each_scale(tmp_path, tiny_train_dir):
    import torch

    from edgerestore.model_spec import read_spec
    from edgerestore.export import export_checkpoint
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.sr import train

    a, b = tmp_path / "a", tmp_path / "b"
    r = train(tiny_train_dir, a, minutes=5, recipe=_recipe(), max_steps=6, threads=1, handle_signals=False)
    assert (r.step, r.stopped_by) == (6, "max_steps")
    train(tiny_train_dir, b, minutes=5, recipe=_recipe(), max_steps=4, threads=1, handle_signals=False)
    r2 = train(tiny_train_dir, b, minutes=5, resume=True, max_steps=6, threads=1, handle_signals=False)
    assert r2.step == 6
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k  # interrupted == uninterrupted
    kinds = [json.loads(line)["kind"] for line in (b / "log.jsonl").read_text().splitlines()]
    assert kinds.count("start") == 2 and "val" in kinds
    assert set(ca["last_val"]) >= {"psnr_x2", "gain_x2", "psnr_x3", "gain_x3", "gain_mean"}
    with pytest.raises(InputError, match="--resume"):
        train(tiny_train_dir, a, minutes=1, recipe=_recipe(), max_steps=1, threads=1, handle_signals=False)

    target = f"edgerestore.models.espcn:{a / 'best.pt'}"
    spec = export_checkpoint(target, tmp_path / "x3.onnx", scale=3)
    assert spec.name == "sr-x3" and read_spec(tmp_path / "x3.onnx").scale == 3
    assert spec.provenance["steps"] >= 3 and spec.provenance["params"] == 8 * 25 + 8 + 2 * (8 * 8 * 9 + 8) + 8 * 9 * 9 + 9 + 25 * 9 + 9
    with pytest.raises(InputError, match=r"scales \[2, 3\]"):
        export_checkpoint(target, tmp_path / "x4.onnx", scale=4)
    with pytest.raises(InputError, match="choose one with --scale"):
        export_checkpoint(target, tmp_path / "x.onnx")
    assert not (tmp_path / "x4.onnx").exists() and not (tmp_path / "x.onnx").exists()


def test_train_sr_and_export_commands(tmp_path, tiny_train_dir, capsys):
    from edgerestore.cli import main
    from edgerestore.model_spec import read_spec

    out = tmp_path / "ck"
    code = main(["train", "sr", "--data", str(tiny_train_dir), "--out", str(out), "--minutes", "2",
                 "--max-steps", "3", "--threads", "1", "--scales", "2,4", "--features", "8", "--depth", "1",
                 "--lr-patch", "12", "--batch", "2", "--val-every", "3", "--holdout-every", "3"])
    assert code == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["step"] == 3 and res["stopped_by"] == "max_steps" and "gain_x4" in res["last_val"]
    code = main(["export", f"edgerestore.models.espcn:{out / 'best.pt'}", "-o", str(tmp_path / "m.onnx"),
                 "--scale", "4"])
    assert code == 0
    spec = read_spec(tmp_path / "m.onnx")
    assert (spec.name, spec.scale, spec.provenance["config"]["scales"]) == ("sr-x4", 4, [2, 4])
    # --scale on a denoiser checkpoint is refused
    from edgerestore.training.denoise import Recipe, train

    train(tiny_train_dir, tmp_path / "dn", minutes=1, recipe=Recipe(features=8, depth=3, batch=2, patch=32,
          val_every=0), max_steps=1, threads=1, handle_signals=False)
    capsys.readouterr()
    code = main(["export", f"edgerestore.models.ffdnet:{tmp_path / 'dn' / 'last.pt'}", "-o",
                 str(tmp_path / "d.onnx"), "--scale", "2"])
    assert code == 1 and "applies to super-resolution checkpoints only" in capsys.readouterr().err
