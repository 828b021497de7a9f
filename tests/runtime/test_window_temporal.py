"""The temporal stages in real Pipeline runs on real clips: no frame of one shot leaks
into the next, and the awkward inputs (one or two frames, mixed sizes, a static camera,
a whip pan) run, keep frames in order, and are never much worse than nlm() alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.metrics import psnr
from edgerestore.runtime import Pipeline, sinks, sources

SIZE = (160, 90)


def _clip(shared_data, name, n, size=SIZE, start=0):
    cap = cv2.VideoCapture(str(shared_data / "video" / name))
    frames = []
    while len(frames) < n + start:
        ok, f = cap.read()
        assert ok
        frames.append(cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    return frames[start:]


def _noisy(frames, sigma=25.0, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(np.rint(f + rng.normal(0, sigma, f.shape)), 0, 255).astype(np.uint8) for f in frames]


def _run(spec, frames, source=None):
    out = sinks.ListSink()
    with Pipeline(spec) as pipe:
        report = pipe.run(source or sources.ArraySource(frames), [out])
    return [f.image for f in out.frames], [f.index for f in out.frames], report


@pytest.mark.parametrize("spec", ["temporal(radius=2)", "temporal(radius=2, sigma_map=False)", "temporal_live()",
                                  "temporal_live(sigma_map=False)"])
def test_no_frame_of_the_previous_shot_leaks_into_the_next(shared_data, spec):
    a = _noisy(_clip(shared_data, "dashcam_solidWhiteRight.mp4", 5), seed=1)
    b = _noisy(_clip(shared_data, "pedestrians_vtest.avi", 5), seed=2)
    joined, order, _ = _run(spec, a + b)
    alone_a, _, _ = _run(spec, a)
    alone_b, _, _ = _run(spec, b)
    assert order == list(range(10))
    # Each shot comes out exactly as when it is filtered on its own.
    for got, want in zip(joined, alone_a + alone_b):
        np.testing.assert_array_equal(got, want)


def _psnr_all(clean, outs):
    return float(np.mean([psnr(c.astype(np.float32) / 255, o.astype(np.float32) / 255) for c, o in zip(clean, outs)]))


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frame_clips(shared_data, n):
    clean = _clip(shared_data, "pedestrians_vtest.avi", n)
    outs, order, report = _run("temporal(radius=2)", _noisy(clean))
    assert order == list(range(n))
    per_frame, _, _ = _run("nlm()", _noisy(clean))
    if n == 1:
        np.testing.assert_array_equal(outs[0], per_frame[0])  # time gives nothing: nlm() alone
        assert report.stages[0]["frames_without_neighbours"] == 1
    assert _psnr_all(clean, outs) >= _psnr_all(clean, per_frame) - 0.2


def test_mixed_sizes_run_frame_by_frame(shared_data, tmp_path):
    frames = _noisy(_clip(shared_data, "pedestrians_vtest.avi", 3))
    frames[1] = cv2.resize(frames[1], (120, 68))
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    outs, order, report = _run("temporal(radius=2)", None, sources.ImageFolderSource(tmp_path))
    assert order == [0, 1, 2] and outs[1].shape == (68, 120, 3)
    assert report.stages[0]["frames_without_neighbours"] == 3


@pytest.mark.parametrize("spec", ["temporal(radius=2)", "temporal(radius=2, sigma_map=False)"])
def test_static_camera_gains_and_whip_pan_falls_back(shared_data, spec):
    still = _clip(shared_data, "pedestrians_vtest.avi", 1)[0]
    static = [still] * 5
    outs, _, _ = _run(spec, _noisy(static))
    per_frame, _, _ = _run("nlm()", _noisy(static))
    assert _psnr_all(static, outs) > _psnr_all(static, per_frame) + 1.0
    # A whip pan: crops of one big real frame 60 px apart (flow fails, little overlap).
    big = _clip(shared_data, "dashcam_solidWhiteRight.mp4", 1, size=(480, 270))[0]
    pan = [big[60:150, x:x + 160] for x in range(0, 300, 60)]
    outs, order, _ = _run(spec, _noisy(pan))
    per_frame, _, _ = _run("nlm()", _noisy(pan))
    assert order == list(range(5))
    assert _psnr_all(pan, outs) >= _psnr_all(pan, per_frame) - 0.3


@pytest.mark.parametrize("spec, word", [("temporal(alone_search=4)", "alone_search"),
                                        ("temporal(flow_scale=0)", "flow_scale"),
                                        ("temporal(flow_scale=True)", "flow_scale")])
def test_bad_cost_options_are_refused_by_name(spec, word):
    from edgerestore.runtime.errors import PipelineSpecError

    with pytest.raises(PipelineSpecError, match=word):
        Pipeline(spec)


def test_cheap_options_run_and_keep_their_names(shared_data):
    frames = _clip(shared_data, "pedestrians_vtest.avi", 5)
    spec = "temporal(radius=1, alone_search=7, flow_scale=0.5, h_factor=1.0, level_scale=1.0)"
    name = Pipeline(spec).stages[0].name
    assert "alone_search=7" in name and "flow_scale=0.5" in name and "h_factor=1.0" in name
    outs, indices, report = _run(spec, _noisy(frames))
    assert indices == list(range(5))
    assert psnr(frames[2].astype(np.float32) / 255, outs[2].astype(np.float32) / 255) > 25.0


def test_live_with_a_sigma_map_gains_on_a_static_camera_and_resets_on_gaps(shared_data):
    # The noisy-first order: the recursion averages the noisy frames, one nlm pass with
    # the residual map follows. On a static camera it must beat today's live pipeline.
    still = _clip(shared_data, "pedestrians_vtest.avi", 1)[0]
    static = [still] * 8
    outs, order, report = _run("temporal_live()", _noisy(static))
    live, _, _ = _run("nlm(search_size=11, estimate_every=10)", _noisy(static))
    assert order == list(range(8))
    assert _psnr_all(static[3:], outs[3:]) > _psnr_all(static[3:], live[3:]) + 1.0
    nlm_guide, _, _ = _run("temporal_live(guide_search=5)", _noisy(static))
    assert _psnr_all(static[3:], nlm_guide[3:]) > _psnr_all(static[3:], live[3:]) + 1.0
    name = Pipeline("temporal_live(guide_search=5, min_var=0.25, search_size=11)").stages[0].name
    assert "guide_search=5" in name and "min_var=0.25" in name and "search_size=11" in name
    assert "sigma_map=False" in Pipeline("temporal_live(sigma_map=False)").stages[0].name
    stage = Pipeline("temporal_live()").stages[0]
    assert stage.name == "temporal_live()" and (stage.search_size, stage.min_var) == (9, 0.8)


@pytest.mark.parametrize("spec, word", [("temporal(sigma_map=1)", "sigma_map"),
                                        ("temporal_live(sigma_map='yes')", "sigma_map"),
                                        ("temporal_live(guide_search=4)", "guide_search")])
def test_bad_map_options_are_refused_by_name(spec, word):
    from edgerestore.runtime.errors import PipelineSpecError

    with pytest.raises(PipelineSpecError, match=word):
        Pipeline(spec)


def test_recursive_output_flickers_less_on_a_static_camera_and_is_never_chunked(shared_data):
    # A static camera with fresh noise each frame: blending each output with the one
    # before (warped) makes the frame-to-frame change of the output smaller, without
    # losing PSNR; shots still do not leak (a cut resets the memory), and the stage is
    # one frame longer behind than ahead, so batch runs do not chunk it.
    from edgerestore.batch.job import chunk_overlap
    from edgerestore.runtime import parse_pipeline

    still = _clip(shared_data, "pedestrians_vtest.avi", 1)[0]
    static = [still] * 6
    plain, _, _ = _run("temporal(radius=1, sigma=25)", _noisy(static))
    rec, order, _ = _run("temporal(radius=1, sigma=25, recursive=True)", _noisy(static))
    assert order == list(range(6))

    def change(outs):
        return float(np.mean([np.abs(b.astype(np.float32) - a).mean() for a, b in zip(outs[2:], outs[3:])]))

    assert change(rec) < 0.9 * change(plain)
    assert _psnr_all(static[2:], rec[2:]) > _psnr_all(static[2:], plain[2:]) - 0.05
    assert chunk_overlap(parse_pipeline("temporal(radius=1, recursive=True)")) is None
    assert chunk_overlap(parse_pipeline("temporal(radius=1)")) == 1
    a = _noisy(_clip(shared_data, "dashcam_solidWhiteRight.mp4", 3), seed=1)
    b = _noisy(_clip(shared_data, "pedestrians_vtest.avi", 3), seed=2)
    joined, _, _ = _run("temporal(radius=1, sigma=25, recursive=True)", a + b)
    alone_b, _, _ = _run("temporal(radius=1, sigma=25, recursive=True)", b)
    for got, want in zip(joined[3:], alone_b):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("spec, word", [("temporal(radius=0, recursive=True)", "recursive"),
                                        ("temporal(recursive=1)", "recursive")])
def test_bad_recursive_options_are_refused_by_name(spec, word):
    from edgerestore.runtime.errors import PipelineSpecError

    with pytest.raises(PipelineSpecError, match=word):
        Pipeline(spec)
