"""annotate(): a user's plain ONNX file checked against the contract, probed, stamped and
tested; real ONNX models built here and run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgerestore.errors import InputError, ModelError
from edgerestore.export.annotate import annotate
from edgerestore.model_spec import read_spec
from edgerestore.restorer import ModelRestorer
from tests import tiny_models as tm


def plain(model, path):
    """Write ``model`` with no metadata at all, as torch.onnx.export would."""
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


def fixed_blur(h=32, w=48):
    """3x3 mean filter, zero padding 1, on exactly 1 x 1 x h x w inputs."""
    wt = numpy_helper.from_array(np.full((1, 1, 3, 3), 1 / 9, np.float32), "w")
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, h, w])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, h, w])
    return tm._model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [inp], [out], [wt])


def needs_multiple_of_4():
    """Identity through SpaceToDepth/DepthToSpace with block 4: H and W must be multiples of 4."""
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, "H", "W"])
    nodes = [helper.make_node("SpaceToDepth", ["x"], ["s"], blocksize=4),
             helper.make_node("DepthToSpace", ["s"], ["y"], blocksize=4)]
    return tm._model(nodes, [inp], [out])


def test_a_plain_denoiser_with_a_noise_map_is_annotated_and_runs(tmp_path):
    src = plain(tm.affine_denoiser(), tmp_path / "plain.onnx")
    before = src.read_bytes()
    report = annotate(src, tmp_path / "mine.onnx", task="denoise", color="gray", image_input="image",
                      noise_map="sigma_map", noise_level_range=(0, 50))
    assert src.read_bytes() == before  # the user's file is not touched
    spec = read_spec(tmp_path / "mine.onnx")
    assert (spec.name, spec.task, spec.scale, spec.size_multiple) == ("mine", "denoise", 1, 1)
    assert dict(spec.inputs) == {"image": "image", "sigma_map": "noise_level"}
    assert spec.noise_level_range == (0, 50) and spec.provenance["annotated_from"] == "plain.onnx"
    assert report.fixed_size is None and report.size_multiple_detected
    assert report.test_output_shape == (96, 128) and report.psnr_before is not None
    x = np.full((8, 8), 0.4, np.float32)
    with ModelRestorer.open(tmp_path / "mine.onnx", backend="ort-cpu") as r:
        np.testing.assert_allclose(r(x, sigma=25.5), 0.2 + 0.1, atol=1e-6)


def test_the_size_multiple_is_found_by_probing(tmp_path):
    src = plain(needs_multiple_of_4(), tmp_path / "p.onnx")
    report = annotate(src, tmp_path / "m.onnx", task="denoise", color="gray")
    assert read_spec(tmp_path / "m.onnx").size_multiple == 4 and report.size_multiple_detected
    with pytest.raises(ModelError, match="needs height and width multiples of 4; --size-multiple 2"):
        annotate(src, tmp_path / "m2.onnx", task="denoise", color="gray", size_multiple=2)
    assert not (tmp_path / "m2.onnx").exists()


def test_super_resolution_scale_is_measured_and_checked(tmp_path):
    src = plain(tm.nearest_upscaler(scale=3), tmp_path / "sr.onnx")
    report = annotate(src, tmp_path / "x3.onnx", task="super_resolution", color="luma")
    assert read_spec(tmp_path / "x3.onnx").scale == 3 and report.test_output_shape == (96, 126)
    assert report.baseline_name() == "bicubic"
    with pytest.raises(ModelError, match="--scale 2, but the model's output is 3x its input"):
        annotate(src, tmp_path / "x2.onnx", task="super_resolution", color="luma", scale=2)
    with pytest.raises(ModelError, match="a denoise model keeps the size"):
        annotate(src, tmp_path / "dn.onnx", task="denoise", color="gray")


def test_a_fixed_input_size_is_kept_and_drives_the_tiling(tmp_path):
    src = plain(fixed_blur(32, 48), tmp_path / "fixed.onnx")
    report = annotate(src, tmp_path / "f.onnx", task="denoise", color="gray")
    spec = read_spec(tmp_path / "f.onnx")
    assert report.fixed_size == spec.fixed_size == (32, 48) and spec.tile_overlap == 7
    assert any("overlap cut to 7" in n for n in report.notes)
    # larger and smaller frames than 32x48 run, tiled: inside the frame the result is the
    # dynamic blur's (the receptive radius, 1, is below the overlap)
    dyn = tm.save(tm.box_blur(), tmp_path / "dyn.onnx")
    x = np.random.default_rng(0).random((100, 77)).astype(np.float32)
    with ModelRestorer.open(dyn, backend="ort-cpu") as r:
        ref = r(x)
    with ModelRestorer.open(tmp_path / "f.onnx", backend="ort-cpu") as r:
        np.testing.assert_allclose(r(x)[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-6)
        assert r(x[:10, :20]).shape == (10, 20)


def test_a_model_stamped_with_a_fixed_size_is_tiled_not_an_onnxruntime_error(tmp_path):
    path = tm.save(fixed_blur(16, 16), tmp_path / "f.onnx", tm.spec_for(fixed_blur(16, 16), tile_overlap=2))
    with ModelRestorer.open(path, backend="ort-cpu") as r:
        assert r(np.full((40, 50), 0.5, np.float32))[5:-5, 5:-5] == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(task="denoise", color="gray"), InputError, r"inputs \['image', 'sigma_map'\]; say which one .* --input"),
    (dict(task="denoise", color="gray", image_input="image"), InputError,
     r"\['sigma_map'\] have no role; name the noise-level map with --noise-map"),
    (dict(task="denoise", color="gray", image_input="img"), InputError, "no input named 'img'"),
    (dict(task="denoise", color="bgr", image_input="image", noise_map="sigma_map"), ModelError,
     "input 'image' has 1 channels; --color bgr means 3"),
    (dict(task="deblur", color="gray"), InputError, "task 'deblur'"),
])
def test_arguments_that_do_not_fit_the_graph_are_explained_and_nothing_is_written(tmp_path, kwargs, error, match):
    src = plain(tm.affine_denoiser(), tmp_path / "plain.onnx")
    with pytest.raises(error, match=match):
        annotate(src, tmp_path / "out.onnx", **kwargs)
    assert not (tmp_path / "out.onnx").exists()


def test_a_plain_onnx_file_is_refused_with_a_pointer_to_annotate(tmp_path):
    src = plain(tm.box_blur(), tmp_path / "plain.onnx")
    with pytest.raises(ModelError, match="no edgerestore metadata.*edgerestore annotate"):
        read_spec(src)
