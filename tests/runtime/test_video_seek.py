"""``VideoFileSource(start_frame=k)``: seeking to the keyframe at or before frame ``k`` and
decoding forward gives the frames, indexes and timestamps of a decode from the
beginning, bit for bit: B-frames in MP4 and in AVI (where the demuxer's pts are not
presentation times), the real AVI with drop frames, the real dash-cam MP4."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgerestore.runtime import sources
from edgerestore.runtime.video import VideoReader

from .clips import make_frames, write_av_clip


def decode_all(clip, start=0):
    src = sources.VideoFileSource(clip, hardware="off", start_frame=start)
    with src:
        return [(f.index, f.timestamp, f.image) for f in src]


def assert_same(got, want):
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1] for g in got] == [w[1] for w in want]  # exactly: the same pts
    assert [i for i, (g, w) in enumerate(zip(got, want)) if not np.array_equal(g[2], w[2])] == []


def check_starts(clip, starts):
    """Each start gives the tail of the full decode; the late ones by a real seek."""
    full = decode_all(clip)
    n = len(full)
    for start in starts:
        start = start % n
        assert_same(decode_all(clip, start), full[start:])
    reader = VideoReader(str(clip), hwaccel=None)
    plan = reader.seek_plan(n - 1)
    reader.close()
    assert isinstance(plan, tuple) and plan[0] > 0, "the last frame was not reached by a seek"
    return full


def varied_frames(n, w=96, h=64):
    rng = np.random.default_rng(4)
    return [np.clip(f.astype(int) + rng.integers(-40, 40, f.shape), 0, 255).astype(np.uint8)
            for f in make_frames(n, w, h, seed=5)]


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".avi"])
def test_b_frame_clip_from_any_frame(tmp_path, ext):
    clip = write_av_clip(tmp_path / f"b{ext}", varied_frames(40), codec="libx264", pix_fmt="yuv420p",
                         options={"bf": "3", "g": "12", "crf": "18"})
    import av

    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.has_b_frames
    check_starts(clip, [1, 2, 11, 12, 13, 25, -2, -1])


def test_real_avi_with_drop_frames(shared_data):
    clip = shared_data / "video" / "pedestrians_vtest.avi"
    full = check_starts(clip, [1, 127, 128, 129, 200, -1])
    assert len(full) == 341


def test_real_mp4(shared_data):
    check_starts(shared_data / "video" / "dashcam_solidWhiteRight.mp4", [1, 29, 30, 31, 100, -1])


def test_a_seek_that_misses_falls_back_to_decoding_from_the_start(tmp_path, monkeypatch, caplog):
    """Where the first frame kept after the seek is not the one asked for (here: the
    plan points past it), the reader decodes from the start instead, and says so."""
    clip = write_av_clip(tmp_path / "b.mp4", varied_frames(30), codec="libx264", pix_fmt="yuv420p",
                         options={"bf": "2", "g": "10"})
    full = decode_all(clip)
    real_plan = VideoReader.seek_plan

    def late_plan(self, start):
        keyframe, target = real_plan(self, start)
        return keyframe, target + 1  # no frame has that time: the first kept one differs

    monkeypatch.setattr(VideoReader, "seek_plan", late_plan)
    with caplog.at_level(logging.WARNING, logger="edgerestore.runtime"):
        got = decode_all(clip, 15)
    assert_same(got, full[15:])
    assert "did not land" in caplog.text


def test_start_past_the_end_gives_no_frame_and_no_error(tmp_path):
    clip = write_av_clip(tmp_path / "c.mkv", make_frames(10, 64, 48))
    assert decode_all(clip, 10) == [] and decode_all(clip, 25) == []
    with pytest.raises(ValueError, match="start_frame"):
        sources.VideoFileSource(clip, start_frame=-1)
