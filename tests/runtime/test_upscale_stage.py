"""The ``upscale`` stage runs the shipped super-resolution model for integer scales."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.runtime import Pipeline, sinks, sources
from edgerestore.runtime import stages
from edgerestore.runtime.errors import PipelineSpecError
from tests import tiny_models as tm


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_integer_scales_use_the_shipped_model(scale):
    out = sinks.ListSink()
    pipe = Pipeline(f"upscale(scale={scale})")
    report = pipe.run(sources.SyntheticSource(40, 24, 2), out)
    assert [f.image.shape for f in out.frames] == [(24 * scale, 40 * scale, 3)] * 2
    assert report.pipeline == [f"upscale(scale={scale}, model='sr-x{scale}')"]


def test_model_stage_beats_the_cubic_stage_on_a_natural_image(shared_data):
    import cv2

    from edgerestore.resize import imresize

    hr = cv2.imread(str(shared_data / "testsets" / "Set5" / "butterfly_GT.bmp"))[60:204, 60:204]
    hr = hr.astype(np.float32) / 255.0
    lr = np.clip(imresize(hr, 1 / 3), 0, 1).astype(np.float32)  # MATLAB-style antialiased bicubic
    model, cubic = stages.UpscaleStage(scale=3), stages.UpscaleStage(scale=3, method="cubic")
    model.open()
    try:
        a, b = model(lr), cubic(lr)
    finally:
        model.close()
    assert a.shape == b.shape == hr.shape

    def luma(x):
        return cv2.cvtColor(x, cv2.COLOR_BGR2YCrCb)[3:-3, 3:-3, 0]

    # chroma is resized the same way by both; on luma the model is clearly better
    err_model, err_cubic = (np.mean((luma(x) - luma(hr)) ** 2) for x in (a, b))
    assert err_model < 0.9 * err_cubic, (err_model, err_cubic)  # > 0.45 dB better


def test_non_integer_scale_falls_back_to_cubic_and_bad_requests_are_refused(tmp_path):
    st = stages.UpscaleStage(scale=1.5)
    assert st.method == "cubic" and st.name == "upscale(scale=1.5, method='cubic')"
    with pytest.raises(PipelineSpecError, match="no shipped model for scale 5; shipped scales: x2, x3, x4"):
        stages.UpscaleStage(scale=5, method="model")
    with pytest.raises(PipelineSpecError, match="contradicts"):
        stages.UpscaleStage(scale=2, method="cubic", model="sr-x2")
    dn = tm.save(tm.affine_denoiser(), tmp_path / "dn.onnx")
    st = stages.UpscaleStage(model=str(dn))
    from edgerestore.errors import ModelError

    with pytest.raises(ModelError, match="not a super-resolution model"):
        st.open()


@pytest.mark.parametrize("spec", ["upscale(scale=16, method='cubic')", "upscale(scale=4)"])
def test_an_output_above_the_limit_is_refused_before_the_work_with_the_option(spec):
    from edgerestore.errors import InputError

    st = Pipeline(spec).stages[0]
    st.open()
    try:
        with pytest.raises(InputError, match=r"3840x2160 image would be .*above the limit of 40 MP.*"
                                             r"max_output_mp"):
            st(np.zeros((2160, 3840), np.float32))  # 4K: x4 is 133 MP, x16 2123 MP
    finally:
        st.close()
    small = Pipeline(spec.replace(")", ", max_output_mp=0.002)")).stages[0]
    with pytest.raises(InputError, match="above the limit of 0.002 MP"):
        small(np.zeros((24, 40), np.float32))
    unlimited = stages.UpscaleStage(scale=16, method="cubic", max_output_mp=0)
    assert unlimited(np.zeros((24, 40), np.float32)).shape == (384, 640)
