"""The model file contract: valid files load, every kind of broken file is refused clearly."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgerestore.errors import ModelError
from edgerestore.model_spec import ModelSpec, read_spec, spec_from_metadata, write_spec
from tests import tiny_models as tm


def test_round_trip_keeps_every_field(tmp_path):
    model = tm.affine_denoiser()
    spec = tm.spec_for(model, tile_size=128, tile_overlap=16, size_multiple=2,
                       profile={"min": (16, 16), "opt": (360, 640), "max": (1080, 1920)},
                       provenance={"commit": "abc", "steps": 10})
    path = tm.save(model, tmp_path / "m.onnx", spec)
    got = read_spec(path)
    assert got.path == str(path) and got.size_bytes == path.stat().st_size
    assert got.output == "output"
    for field in ("name", "task", "scale", "color", "value_range", "noise_level_range",
                  "size_multiple", "tile_size", "tile_overlap", "profile", "precision",
                  "description", "provenance"):
        assert getattr(got, field) == getattr(spec, field), field
    assert dict(got.inputs) == {"image": "image", "sigma_map": "noise_level"}
    assert got.channels == 1 and got.input_for("noise_level") == "sigma_map"
    json.dumps(got.to_dict())  # JSON-ready


@pytest.mark.parametrize("key", ["name", "task", "scale", "color", "value_range", "inputs"])
def test_missing_required_key_is_named(tmp_path, key):
    model = tm.affine_denoiser()
    meta = tm.spec_for(model).to_metadata()
    del meta[key]
    path = tm.save_raw(model, tmp_path / "m.onnx", meta)
    with pytest.raises(ModelError, match=f"required metadata missing: {key}"):
        read_spec(path)


def test_file_without_any_metadata_says_how_to_add_it(tmp_path):
    path = tm.save_raw(tm.affine_denoiser(), tmp_path / "m.onnx", {})
    with pytest.raises(ModelError, match="no edgerestore metadata.*write_spec"):
        read_spec(path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("task", "deblur", "expected one of denoise"),
        ("color", "yuv", "'color' is 'yuv'"),
        ("scale", "two", "'scale' must be an integer"),
        ("scale", "2", "denoise model must have scale 1"),
        ("value_range", "1,0", "lo < hi"),
        ("value_range", "0-1", "two numbers"),
        ("inputs", "{not json", "not valid JSON"),
        ("inputs", '{"image": "picture", "sigma_map": "noise_level"}', "unknown roles"),
        ("inputs", '{"image": "noise_level", "sigma_map": "noise_level"}', "exactly one 'image'"),
        ("edgerestore_format", "99", "format version '99' is not supported"),
        ("precision", "int4", "'precision' is 'int4'"),
        ("profile", '{"min": [1, 1]}', "'profile' must be"),
        ("provenance", "[1, 2]", "'provenance' must be a JSON object"),
        ("size_multiple", "100000", r"'size_multiple' is 100000; at most 256 .*100000x100000"),
        ("tile_size", "3", r"'tile_size' is 3; give 0 .* or at least 8 .*230400 model calls"),
        ("tile_overlap", "300", r"'tile_overlap' \(300\) must be less than half of 'tile_size' \(512\)"),
    ],
)
def test_wrong_metadata_value_is_explained(tmp_path, key, value, message):
    model = tm.affine_denoiser()
    meta = tm.spec_for(model, tile_size=512).to_metadata()
    meta[key] = value
    path = tm.save_raw(model, tmp_path / "m.onnx", meta)
    with pytest.raises(ModelError, match=message):
        read_spec(path)


def test_noise_level_input_needs_its_range(tmp_path):
    model = tm.affine_denoiser()
    meta = tm.spec_for(model).to_metadata()
    del meta["noise_level_range"]
    with pytest.raises(ModelError, match="noise_level_range"):
        read_spec(tm.save_raw(model, tmp_path / "m.onnx", meta))


def test_inputs_that_differ_from_the_graph_are_refused(tmp_path):
    model = tm.affine_denoiser()
    meta = tm.spec_for(model).to_metadata()
    meta["inputs"] = json.dumps({"image": "image", "noise": "noise_level"})
    with pytest.raises(ModelError, match="graph's inputs are"):
        read_spec(tm.save_raw(model, tmp_path / "m.onnx", meta))


def test_channel_count_must_match_colour(tmp_path):
    model = tm.affine_denoiser(channels=3)
    meta = tm.spec_for(model).to_metadata()
    meta["color"] = "gray"
    with pytest.raises(ModelError, match="3 channels in the graph.*implies 1"):
        read_spec(tm.save_raw(model, tmp_path / "m.onnx", meta))


def test_write_spec_refuses_a_spec_that_does_not_fit_the_graph():
    model = tm.affine_denoiser()
    bad = ModelSpec(name="x", task="denoise", inputs={"image": "image"})
    with pytest.raises(ModelError, match="graph's inputs"):
        write_spec(model, bad)
    assert not any(p.key == "edgerestore_format" for p in model.metadata_props)


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model\n", bytes(range(256)) * 40])
def test_not_onnx(tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="not an ONNX model"):
        read_spec(path)


def test_truncated_model_file(tmp_path):
    path = tm.save(tm.box_blur(), tmp_path / "m.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"not an ONNX model|invalid"):
        read_spec(path)


def test_checker_failure_is_reported(tmp_path):
    model = tm.affine_denoiser()
    tm.save(model, tmp_path / "ok.onnx")
    model.graph.node[0].input[1] = "no_such_tensor"  # dangling input: checker rejects it
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="onnx.checker"):
        read_spec(tmp_path / "bad.onnx")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_spec(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match="not a file"):
        read_spec(tmp_path)


def test_spec_from_metadata_accepts_what_to_metadata_writes():
    spec = ModelSpec(name="sr", task="super_resolution", scale=3, color="luma",
                     value_range=(0, 255), inputs={"x": "image"})
    again = spec_from_metadata(spec.to_metadata())
    assert again.scale == 3 and again.value_range == (0.0, 255.0) and again.channels == 1
    assert np.isclose(again.value_range[1], 255)
