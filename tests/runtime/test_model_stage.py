"""Model stages: real tiny ONNX models run by ONNX Runtime through ModelRestorer."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgerestore.runtime import Pipeline, sinks, sources
from edgerestore.runtime.errors import PipelineSpecError, StageError

from ..tiny_models import _io, _model, box_blur, save, spec_for


def nan_model(channels: int = 3):
    """out = sqrt(image - 2): NaN for every pixel in [0, 1] (a broken model)."""
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    nodes = [helper.make_node("Sub", ["image", "two"], ["d"]), helper.make_node("Sqrt", ["d"], ["output"])]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H", "W"])
    return _model(nodes, [_io("image", channels)], [out], [two])


def test_model_stage_runs_and_reports_its_backend(tmp_path):
    path = save(box_blur(3), tmp_path / "blur.onnx")
    out = sinks.ListSink()
    pipe = Pipeline(str(path))
    report = pipe.run(sources.SyntheticSource(40, 30, 4, noise_sigma=20), out)
    pipe.close()
    assert report.frames_out == 4
    st = report.stages[0]
    assert st["backend"] and st["backend_reason"] and st["model"] == "tiny"
    noisy = next(iter(sources.SyntheticSource(40, 30, 1, noise_sigma=20))).image
    # a 3x3 box blur smooths the noise: neighbouring-pixel differences shrink
    assert np.abs(np.diff(out.frames[0].image.astype(float), axis=1)).mean() < \
        0.6 * np.abs(np.diff(noisy.astype(float), axis=1)).mean()


def test_nan_from_a_model_stage_names_the_stage(tmp_path):
    path = save(nan_model(3), tmp_path / "broken.onnx", spec_for(nan_model(3), name="broken"))
    pipe = Pipeline(f"upscale(scale=1)|model('{path}')")
    with pytest.raises(StageError) as info:
        pipe.run(sources.SyntheticSource(16, 16, 3), tmp_path / "out.mkv")
    pipe.close()
    assert info.value.stage.startswith("model(") and "broken.onnx" in info.value.stage
    assert "NaN" in str(info.value)
    assert not (tmp_path / "out.mkv").exists()


def test_missing_model_fails_before_any_work(tmp_path):
    src = sources.SyntheticSource(16, 16, 3)
    with pytest.raises(Exception, match="not-a-model"):
        Pipeline("model('not-a-model')").run(src, tmp_path / "out.mkv")
    assert not src._opened and not list(tmp_path.iterdir())


def test_model_stage_tiles_large_frames_and_blends_the_seams(tmp_path):
    # A 3x3 blur run on 32-pixel tiles with 8 pixels of overlap must match the blur of
    # the whole frame away from the frame border (blending hides the tile seams).
    path = save(box_blur(3), tmp_path / "blur.onnx")
    whole, tiled = sinks.ListSink(), sinks.ListSink()
    for spec, out in ((f"model('{path}')", whole), (f"model('{path}', tile_size=32, tile_overlap=8)", tiled)):
        pipe = Pipeline(spec)
        pipe.run(sources.SyntheticSource(100, 70, 2, noise_sigma=10), out)
        pipe.close()
    a = whole.frames[0].image[2:-2, 2:-2].astype(int)
    b = tiled.frames[0].image[2:-2, 2:-2].astype(int)
    assert a.shape == (66, 96, 3)
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("text", ["model(my/model.onnx)", "model(dn-gray)", "model(./m.onnx, backend='ort-cpu')"])
def test_an_unquoted_model_says_to_quote_it(text):
    from edgerestore.runtime.spec import parse_stage

    inner = text[len("model("):].split(",")[0].rstrip(")")
    with pytest.raises(PipelineSpecError, match=f"quote the model, model\\('{inner}'\\)"):
        parse_stage(text)


def test_the_backend_choice_is_short_in_the_summary_and_whole_in_the_report(tmp_path):
    path = save(box_blur(3), tmp_path / "blur.onnx")
    pipe = Pipeline(f"model('{path}')|model('{path}')")  # backend auto
    report = pipe.run(sources.SyntheticSource(40, 30, 1), sinks.ListSink())
    pipe.close()
    for st in report.stages:
        assert st["backend_reason"].startswith(f"auto picked {st['backend']}")
        assert len(st["backend_reason"]) < 100
        if "skipped" in st.get("backend_detail", ""):  # this machine lacks a backend
            assert st["backend_reason"].endswith("others unavailable here (details: -v or the report)")
            assert "pip install" in st["backend_detail"]  # the long form keeps the fix
    assert all(len(line.replace(str(path), "")) < 140 for line in report.summary().splitlines())


def test_a_sigma_for_a_model_without_a_noise_input_is_reported(tmp_path, caplog):
    path = save(box_blur(3), tmp_path / "blur.onnx")
    pipe = Pipeline(f"model('{path}', sigma=15, backend='ort-cpu')")
    with caplog.at_level("WARNING", logger="edgerestore"):
        pipe.run(sources.SyntheticSource(40, 30, 3), sinks.ListSink())
    pipe.close()
    said = [r.getMessage() for r in caplog.records if "no noise-level input" in r.getMessage()]
    assert said == ["model tiny has no noise-level input: the sigma given (15) is not used"]  # once


def test_cancel_stops_a_model_stage_mid_frame(tmp_path):
    import threading
    import time

    from edgerestore.errors import BackendError
    from tests.cli.test_denoise_interrupt import slow_model

    path = save(slow_model(), tmp_path / "slow.onnx", spec_for(slow_model(), name="slow"))
    st = Pipeline(f"model('{path}', backend='ort-cpu', threads=1)").stages[0]
    st.open()
    outcome = {}

    def work():
        try:
            st(np.full((600, 600), 0.5, np.float32))
        except BackendError as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    st.cancel()
    worker.join(10)
    st.close()
    assert not worker.is_alive() and time.monotonic() - t0 < 1.0
    assert "stopped" in outcome["error"]
