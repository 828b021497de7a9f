"""The batched model call behind the batch stage: ``ModelRestorer.restore_batch`` and
``ModelStage.process_batch`` equal one call per frame (ONNX Runtime, the shipped model)."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.restorer import ModelRestorer
from edgerestore.runtime.stages import BatchStage, ModelStage


@pytest.fixture(scope="module")
def restorer():
    with ModelRestorer.open("dn-gray", backend="ort-cpu") as r:
        yield r


def noisy(rng, shape, sigma=15):
    clean = np.clip(rng.random(shape[:2])[..., None] * 0.6 + 0.2, 0, 1) * np.ones(shape[2:] or (1,))
    clean = clean.reshape(shape)
    return (clean + rng.normal(0, sigma / 255, shape)).astype(np.float32)


@pytest.mark.parametrize("shape", [(48, 64), (48, 64, 3)])
def test_one_inference_of_n_frames_equals_n_calls(restorer, shape):
    rng = np.random.default_rng(7)
    frames = [noisy(rng, shape) for _ in range(4)]
    calls = []
    infer = restorer.runner.infer

    def counting(feed):
        calls.append(next(iter(feed.values())).shape[0])
        return infer(feed)

    restorer.runner.infer = counting
    try:
        got = restorer.restore_batch(frames, sigma=15)
    finally:
        restorer.runner.infer = infer
    planes = 1 if len(shape) == 2 else 3  # a gray model runs each opponent plane of a colour frame
    assert calls == [4 * planes]
    for f, g in zip(frames, got):
        want = restorer(f, sigma=15)
        assert g.dtype == np.float32 and g.shape == f.shape
        np.testing.assert_allclose(g, want, atol=1e-6)


def test_mixed_sizes_and_estimated_sigma_fall_back_to_one_call_each(restorer):
    rng = np.random.default_rng(3)
    frames = [noisy(rng, (40, 56)), noisy(rng, (48, 64))]
    got = restorer.restore_batch(frames)
    for f, g in zip(frames, got):
        np.testing.assert_allclose(g, restorer(f), atol=1e-6)
    assert restorer.dynamic_batch


def test_model_stage_is_a_batch_stage():
    st = ModelStage("dn-gray", backend="ort-cpu", sigma=15)
    assert isinstance(st, BatchStage)
    st.open()
    try:
        rng = np.random.default_rng(1)
        frames = [noisy(rng, (32, 48, 3)) for _ in range(3)]
        for f, g in zip(frames, st.process_batch(frames)):
            np.testing.assert_allclose(g, st(f), atol=1e-6)
    finally:
        st.close()
