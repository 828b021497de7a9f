"""Calibration frames and samples: even sampling, refusals, runtime-exact feeds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.calibration.frames import even_indices, load_frames
from edgerestore.calibration.samples import (
    RecordingRunner,
    check_frames_for_model,
    make_samples,
    sigma_schedule,
)
from edgerestore.errors import InputError
from tests import tiny_models as tm
from tests.calibration.conftest import write_frames


def test_even_indices_spread_over_the_whole_range():
    assert even_indices(100, 5) == [0, 25, 50, 74, 99]
    assert even_indices(3, 10) == [0, 1, 2]
    idx = even_indices(341, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 340
    assert max(np.diff(idx)) - min(np.diff(idx)) <= 1


def test_folder_frames_are_sampled_evenly_in_name_order(tmp_path):
    levels = [np.full((8, 10), i / 20, np.float32) for i in range(20)]
    folder = write_frames(tmp_path / "f", levels)
    frames = load_frames(folder, 5)
    got = [round(float(f.mean()) * 20) for f in frames]
    assert got == even_indices(20, 5)
    assert all(f.dtype == np.float32 and f.ndim == 2 for f in frames)


def test_video_frames_are_sampled_evenly(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(30):
        writer.write(np.full((24, 32, 3), i * 8, np.uint8))
    writer.release()
    frames = load_frames(path, 4)
    assert len(frames) == 4 and frames[0].shape == (24, 32, 3)
    got = [float(f.mean()) * 255 / 8 for f in frames]
    np.testing.assert_allclose(got, even_indices(30, 4), atol=0.5)


def test_frame_refusals_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_frames(tmp_path / "nope", 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        load_frames(tmp_path / "empty", 4)
    one = write_frames(tmp_path / "one", [np.zeros((8, 8), np.float32)])
    with pytest.raises(InputError, match="single image"):
        load_frames(one / "000.png", 4)
    with pytest.raises(InputError, match="too few calibration frames: 1 usable"):
        load_frames(one, 8, minimum=4)
    alpha = tmp_path / "alpha"
    alpha.mkdir()
    cv2.imwrite(str(alpha / "a.png"), np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(InputError, match="alpha channel"):
        load_frames(alpha, 1)
    mixed = write_frames(tmp_path / "mixed", [np.zeros((8, 8), np.float32)])
    cv2.imwrite(str(mixed / "z.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="mix gray and colour"):
        load_frames(mixed, 2)
    assert [f.ndim for f in load_frames(mixed, 2, allow_mixed=True)] == [2, 3]  # 1-channel models
    (tmp_path / "notvideo.mp4").write_bytes(b"not a video at all")
    with pytest.raises(InputError, match="cannot open this file as a video"):
        load_frames(tmp_path / "notvideo.mp4", 2)


def test_colour_model_refuses_gray_frames():
    spec = tm.spec_for(tm.box_blur(channels=3))
    with pytest.raises(InputError, match="calibration frames are gray"):
        check_frames_for_model([np.zeros((8, 8), np.float32)], spec, where="frames/")
    check_frames_for_model([np.zeros((8, 8, 3), np.float32)], spec, where="frames/")


def test_denoise_samples_cover_the_trained_sigma_range(rng):
    spec = tm.spec_for(tm.affine_denoiser(), noise_level_range=(5.0, 50.0))
    assert sigma_schedule(spec, 4) == [5.0, 20.0, 35.0, 50.0]
    frames = [np.full((64, 64), 0.5, np.float32) for _ in range(4)]
    samples = make_samples(frames, spec, seed=3)
    assert sorted(s.sigma for s in samples) == [5.0, 20.0, 35.0, 50.0]
    for s in samples:
        assert s.degraded.min() >= 0 and s.degraded.max() <= 1  # clipped like 8-bit frames
        assert np.std(s.degraded - s.clean) * 255 == pytest.approx(s.sigma, rel=0.1)


def test_super_resolution_samples_are_downscaled():
    spec = tm.spec_for(tm.nearest_upscaler(scale=2), task="super_resolution", scale=2)
    (s,) = make_samples([np.random.default_rng(0).random((33, 40), dtype=np.float32)], spec)
    assert s.clean.shape == (32, 40) and s.degraded.shape == (16, 20)


def test_recording_runner_sees_the_runtime_feeds(tmp_path):
    """A gray model on a colour frame: three feeds (opponent channels), padded to the
    size multiple, with the noise map at sigma/255 scaled per channel, as the runtime does."""
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.restorer import ModelRestorer

    model = tm.affine_denoiser()
    path = tm.save(model, tmp_path / "aff.onnx", tm.spec_for(model, size_multiple=4))
    from edgerestore.model_spec import read_spec

    spec = read_spec(path)
    inner, reason = open_runner(str(path), "ort-cpu", RunnerOptions(threads=1))
    rec = RecordingRunner(inner)
    with ModelRestorer(spec, rec, reason) as r:
        img = np.random.default_rng(1).random((10, 13, 3), dtype=np.float32)
        out = r(img, sigma=20)
    assert out.shape == img.shape
    assert len(rec.feeds) == 3
    for feed in rec.feeds:
        assert feed["image"].shape == (1, 1, 12, 16)  # padded to multiples of 4
        assert feed["sigma_map"].shape == (1, 1, 12, 16)
    levels = sorted(float(f["sigma_map"].max()) for f in rec.feeds)
    assert levels[0] > 0 and len(set(np.round(levels, 6))) >= 2  # per-channel scaling
    assert not inner.active  # closing the restorer deactivated the inner runner too


def test_record_feeds_checks_the_range_only_when_asked(tmp_path):
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.calibration.samples import Sample, record_feeds
    from edgerestore.model_spec import read_spec

    model = tm.affine_denoiser()
    spec = read_spec(tm.save(model, tmp_path / "aff.onnx", tm.spec_for(model)))
    unclipped = np.full((8, 8), 1.2, np.float32)  # noisy, not clipped to [0, 1]
    samples = [Sample(clean=np.ones((8, 8), np.float32), degraded=unclipped, sigma=25.0)]
    inner, reason = open_runner(spec.path, "ort-cpu", RunnerOptions(threads=1))
    with inner:
        with pytest.raises(InputError, match=r"\[0, 1\]"):
            record_feeds(spec, inner, reason, samples)
        feeds = record_feeds(spec, inner, reason, samples, range_check=False)
        assert inner.active  # left active for the caller
    assert len(feeds) == 1 and feeds[0]["image"].max() == pytest.approx(1.2)


def test_video_whose_header_over_reports_its_length(shared_data):
    """pedestrians_vtest.avi says 682 frames and holds 341: all 32 asked for still come,
    spread over the real length."""
    clip = shared_data / "video" / "pedestrians_vtest.avi"
    if not clip.is_file():
        pytest.skip(f"{clip} not present")
    frames = load_frames(clip, 32)
    assert len(frames) == 32 and frames[0].shape == (720, 1280, 3)
    assert not np.array_equal(frames[-1], frames[-2])


def test_mixed_crops_alternate_textured_and_flat_windows():
    from edgerestore.calibration.samples import crop_window

    rng = np.random.default_rng(3)
    frame = np.full((64, 256), 0.5, np.float32)
    frame[:, 128:] = rng.random((64, 128), dtype=np.float32)  # right half textured

    def detail(w):
        return float(np.abs(np.diff(w, axis=1)).mean())

    textured = crop_window(frame, 48, 1, np.random.default_rng(0), "textured")
    flat = crop_window(frame, 48, 1, np.random.default_rng(0), "flat")
    assert detail(textured) > 0.2 and detail(flat) < 0.05
    spec = tm.spec_for(tm.affine_denoiser(), name="t")
    samples = make_samples([frame] * 4, spec, crop=48, seed=0, crops="mixed")
    details = [detail(s.clean) for s in samples]
    assert details[0] > details[1] and details[2] > details[3]


def test_gray_models_calibrate_on_gray_copies_of_half_the_colour_frames():
    from edgerestore.calibration.samples import mix_gray

    colour = [np.random.default_rng(i).random((8, 8, 3), dtype=np.float32) for i in range(4)]
    mixed = mix_gray(colour, tm.spec_for(tm.affine_denoiser(), name="g"))
    assert [f.ndim for f in mixed] == [3, 2, 3, 2]
    bgr = colour[1].astype(np.float64)
    luma = 0.114 * bgr[..., 0] + 0.587 * bgr[..., 1] + 0.299 * bgr[..., 2]
    np.testing.assert_allclose(mixed[1], luma, atol=1e-5)
    colour_model = tm.spec_for(tm.affine_denoiser(channels=3), name="c")
    assert all(f.ndim == 3 for f in mix_gray(colour, colour_model))
