"""Built-in stages: kernel stages denoise, format stages."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.runtime import Pipeline, sources


def _noisy_and_clean(sigma=20, w=64, h=48):
    noisy = next(iter(sources.SyntheticSource(w, h, 1, noise_sigma=sigma, seed=5))).image
    src = sources.SyntheticSource(w, h, 1)
    src.open()
    return noisy, src.clean(0)


@pytest.mark.parametrize("spec", ["nlm()", "nlm(sigma=20)", "denoise-fast", "bm3d()"])
def test_kernel_stages_bring_the_frame_closer_to_the_clean_one(spec):
    noisy, clean = _noisy_and_clean()
    out = Pipeline(spec).process(noisy)
    err = lambda a: np.abs(a.astype(float) - clean).mean()  # noqa: E731
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert err(out) < 0.6 * err(noisy)


def test_clean_frame_passes_through_nlm_unchanged():
    flat = np.full((40, 40, 3), 120, np.uint8)
    assert np.array_equal(Pipeline("nlm()").process(flat), flat)


def test_format_stages():
    img = np.zeros((10, 20, 3), np.uint8)
    assert Pipeline("resize(width=10)").process(img).shape == (5, 10, 3)
    assert Pipeline("gray").process(img).shape == (10, 20)
    assert Pipeline("gray|color").process(img).shape == (10, 20, 3)
    assert Pipeline("upscale(scale=1.5)").process(img).shape == (15, 30, 3)


def test_nlm_threads_apply_to_the_kernel_call_only():
    import numba

    from edgerestore.runtime.stages import NLMStage

    seen = []
    stage = NLMStage(sigma=10, threads=1)
    pipe = Pipeline([stage]).open()
    kernel = stage._nlm

    def recording(img, **kw):
        seen.append(numba.get_num_threads())
        return kernel(img, **kw)

    stage._nlm = recording
    before = numba.get_num_threads()
    pipe.process(np.full((24, 24, 3), 100, np.uint8))
    assert seen == [1]
    assert numba.get_num_threads() == before  # the caller's thread keeps its setting


def test_nlm_estimate_every_reuses_the_noise_level_between_estimates():
    def frame(sigma, seed):
        return next(iter(sources.SyntheticSource(96, 64, 1, noise_sigma=sigma, seed=seed))).image

    frames = [frame(8, 0), frame(8, 1), frame(30, 2), frame(30, 3), frame(30, 4)]
    every = Pipeline("nlm(estimate_every=3)")
    levels = []
    for f in frames:
        out = every.process(f)
        levels.append(every.stages[0].last_sigma)
    assert every.stages[0].name == "nlm(estimate_every=3)"
    assert levels[0] == pytest.approx(8, abs=2.5)
    assert levels[1] == levels[2] == levels[0]      # frames 1 and 2 reuse frame 0's level
    assert levels[3] == pytest.approx(30, abs=5)    # frame 3 is estimated again
    assert levels[4] == levels[3]
    # the reused level gives exactly what nlm with that sigma gives
    fixed = Pipeline(f"nlm(sigma={levels[4]!r})").process(frames[4])
    assert np.array_equal(out, fixed)
    with pytest.raises(Exception, match="estimate_every"):
        Pipeline("nlm(estimate_every=0)")
