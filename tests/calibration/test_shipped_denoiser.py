"""The shipped denoiser quantizes within the gate (slow: real model, real images)."""

from __future__ import annotations

import pytest

from edgerestore.calibration.convert import CalibrationJob, calibrate
from edgerestore.backends.onnx_graph import summarize
from edgerestore.calibration.quantize import Int8Settings
from edgerestore.zoo import ZOO_DIR

DN_GRAY = ZOO_DIR / "dn-gray.onnx"


@pytest.mark.slow
def test_dn_gray_int8_cpu_passes_the_gate_at_sigma_25(shared_data, tmp_path):
    if not DN_GRAY.is_file():
        pytest.skip("edgerestore/zoo/dn-gray.onnx is not in this checkout yet")
    out = tmp_path / "dn-gray-int8.onnx"
    result = calibrate(CalibrationJob(
        model=str(DN_GRAY), output=str(out), frames=str(shared_data / "train" / "Train400"),
        count=16, gate_sigmas=(25.0,), int8=Int8Settings(), threads=2))
    assert out.is_file() and result.report.passed
    assert result.report.drop_db <= 0.3
    assert result.qdq["int8_layers"] >= 10 and result.qdq["float_layers"] == []
    import onnx

    assert summarize(onnx.load(str(out))).quantize > 0
