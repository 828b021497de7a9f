"""Pipeline strings and named pipelines."""

from __future__ import annotations

import pytest

from edgerestore.runtime import catalog, spec, stages
from edgerestore.runtime.errors import PipelineSpecError


def test_chain_with_arguments():
    st = spec.parse_pipeline("nlm(sigma=15)|upscale(scale=2)")
    assert [type(s) for s in st] == [stages.NLMStage, stages.UpscaleStage]
    assert st[0].sigma == 15 and st[1].scale == 2.0
    assert st[0].name == "nlm(sigma=15)"


def test_named_pipelines_expand():
    assert spec.expand("default") == catalog.NAMED_PIPELINES.get("default")
    st = spec.parse_pipeline("denoise")
    assert len(st) == 1 and isinstance(st[0], stages.NLMStage)
    assert spec.parse_pipeline("none") == []


def test_live_mode_has_its_own_default_pipeline():
    from edgerestore.runtime import Pipeline

    assert spec.default_pipeline("offline") == "default" and spec.default_pipeline("live") == "live"
    offline, live = Pipeline(), Pipeline(mode="live")
    assert offline.description == spec.expand("default") == "nlm()"
    assert live.description == spec.expand("live") == "nlm(search_size=11, estimate_every=10)"
    st = live.stages[0]
    assert isinstance(st, stages.NLMStage) and st.kernel_args == {"search_size": 11} and st.estimate_every == 10
    # a pipeline named explicitly is used as given in either mode
    assert Pipeline("default", mode="live").description == "nlm()"


def test_model_forms():
    a = spec.parse_pipeline("model('dn-gray', backend='ort-cpu')")[0]
    b = spec.parse_pipeline("model(name='dn-gray')")[0]
    c = spec.parse_pipeline("/models/my net.onnx | gray")[0]
    assert isinstance(a, stages.ModelStage) and a.model == "dn-gray" and a.backend == "ort-cpu"
    assert b.model == "dn-gray"
    assert c.model == "/models/my net.onnx"


def test_quoted_bar_is_not_a_separator():
    st = spec.parse_pipeline("model('a|b.onnx')|gray")
    assert st[0].model == "a|b.onnx" and len(st) == 2


@pytest.mark.parametrize("text, message", [
    ("blur(k=3)", "unknown stage 'blur'. Available stages: "),
    ("upscale(factor=2)", "has no parameter 'factor'; it accepts: scale, method"),
    ("upscale(scale=2", "cannot parse"),
    ("nlm(sigma=x)", "must be literals"),
    ("upscale(2)", "keyword arguments only"),
    ("nlm()||gray", "empty stage"),
    ("gray|denoise", "is a named pipeline"),
    ("upscale(scale=0)", "must be > 0"),
    ("resize()", "width=... and/or height"),
    ("nlm(estimate='magic')", "must be one of video, white"),
])
def test_errors_say_what_is_wrong(text, message):
    with pytest.raises(PipelineSpecError) as info:
        spec.parse_pipeline(text)
    assert message in str(info.value)


def test_unknown_kernel_argument_fails_at_open():
    st = spec.parse_pipeline("nlm(patch=3)")[0]
    with pytest.raises(PipelineSpecError, match="unknown parameter 'patch'; accepted: .*patch_size"):
        st.open()


def test_register_stage_makes_it_usable_in_strings():
    @catalog.register_stage("invert_test")
    class Invert(stages.Stage):
        name = "invert_test"

        def __init__(self, amount: float = 1.0):
            self.amount = amount

        def __call__(self, img):
            return self.amount - img

    try:
        st = spec.parse_pipeline("invert_test(amount=1.0)")
        assert isinstance(st[0], Invert)
    finally:
        catalog.STAGES.remove("invert_test")
