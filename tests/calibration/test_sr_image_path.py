"""Super-resolution INT8 defaults: minmax ranges and the image path (skip conv and the
final add) left in float, on the shipped sr-x2."""

from pathlib import Path

import numpy as np
import pytest

ZOO = Path(__file__).resolve().parents[2] / "edgerestore" / "zoo"


def test_image_path_is_the_skip_conv_and_its_add_and_nothing_of_a_denoiser():
    import onnx

    from edgerestore.calibration.quantize import image_path, skip_connections

    sr = onnx.load(str(ZOO / "sr-x2.onnx"))
    assert image_path(sr) == ["/Add", "/skips.2/Conv"]
    dn = onnx.load(str(ZOO / "dn-gray.onnx"))
    assert image_path(dn) == [] and skip_connections(dn) == ["/Sub"]


def test_default_method_is_minmax_for_super_resolution_only_when_none_was_given():
    from edgerestore.calibration.quantize import Int8Settings, Method, default_method

    assert default_method(Int8Settings(method=None), "super_resolution").method is Method.MINMAX
    assert default_method(Int8Settings(method=None), "denoise").method is Method.ENTROPY
    assert default_method(Int8Settings(method="entropy"), "super_resolution").method is Method.ENTROPY


def test_calibrate_sr_defaults_keep_the_image_path_float_and_beat_entropy_on_photos(shared_data, tmp_path):
    """On real photos (Set14) the defaults (minmax, image path float) lose at most 0.1 dB
    on the held-apart frames, and less than entropy with everything quantized."""
    import onnx

    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.model_spec import read_spec

    def run(name, settings):
        return calibrate(CalibrationJob(model="sr-x2", output=str(tmp_path / name), frames=str(shared_data / "testsets" / "Set14"),
                                        count=12, crop=96, max_drop_db=5.0, fallback=False, int8=settings))

    ours = run("default.onnx", Int8Settings(method=None))
    old = run("entropy.onnx", Int8Settings(method="entropy", image_path_float=False))
    assert ours.report.worst_drop_db <= 0.1 < old.report.worst_drop_db
    settings = read_spec(tmp_path / "default.onnx").provenance["calibration"]["settings"]
    assert settings["method"] == "minmax" and settings["image_path"] == "float"
    g = onnx.load(str(tmp_path / "default.onnx")).graph
    producers = {o: n for n in g.node for o in n.output}
    skip = next(n for n in g.node if n.name == "/skips.2/Conv")
    # the skip conv's weight is float (no DequantizeLinear in front of it; its bias may be
    # shared with a quantized conv's, 32-bit), and the add reads the skip's float output
    assert skip.input[1] not in producers
    add = next(n for n in g.node if n.name == "/Add")
    assert any(producers.get(i) is skip for i in add.input)
