"""Chunked videos: restored in parallel chunks and joined, the result equals one
unchunked run bit for bit (FFV1 outputs decoded and compared frame by frame, with their
timestamps). Each chunk starts by seeking (``VideoFileSource(start_frame=...)``); the
H.264 input with B-frames and a keyframe every 8 frames makes chunks of 6 start between
keyframes."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.batch import BatchOptions, run_batch
from edgerestore.batch import job as job_module
from edgerestore.batch.job import chunk_overlap
from edgerestore.batch.units import chunk_ranges
from edgerestore.runtime import parse_pipeline
from tests.batch.conftest import decode
from tests.runtime.clips import make_frames, write_av_clip

TEMPORAL = "temporal(radius=1, sigma=20, preset='ultrafast')"
# The noise level estimated per frame: each frame's own estimate, never a neighbour's
# (a chunk starts with other frames than the whole run had seen before the same frame).
TEMPORAL_ESTIMATED = "temporal(radius=1, preset='ultrafast')"


def test_chunk_ranges_and_overlap():
    assert chunk_ranges(20, 6) == [(0, 6), (6, 12), (12, 18), (18, 20)]
    assert chunk_ranges(5, 6) == [(0, 5)] and chunk_ranges(5, None) == [(0, 5)]
    assert chunk_overlap(parse_pipeline("gray")) == 0
    assert chunk_overlap(parse_pipeline("temporal(radius=2, sigma=10)|temporal(radius=1, sigma=10)")) == 3
    assert chunk_overlap(parse_pipeline("temporal_live()")) is None  # recursive: never chunked


H264_B_FRAMES = {"codec": "libx264", "pix_fmt": "yuv420p", "options": {"bf": "3", "g": "8", "crf": "20"}}
"""An input whose chunks start between keyframes: each chunk seeks to the keyframe before
its start and decodes forward through B-frames."""


def run_both(tmp_path, pipeline, chunk, clip_format=None):
    root = tmp_path / "in"
    root.mkdir(exist_ok=True)
    frames = make_frames(20, 64, 48, seed=3)
    noisy = [np.clip(f + np.random.default_rng(i).normal(0, 12, f.shape), 0, 255).astype(np.uint8)
             for i, f in enumerate(frames)]
    write_av_clip(root / "long.mkv", noisy, **(clip_format or {}))
    whole = run_batch(str(root), tmp_path / "whole", BatchOptions(pipeline=pipeline, lossless=True, workers=2,
                                                                  progress=False))
    parts = run_batch(str(root), tmp_path / f"chunked{chunk}", BatchOptions(
        pipeline=pipeline, lossless=True, workers=2, chunk_frames=chunk, progress=False))
    assert whole.ok and parts.ok
    assert parts.files[0]["chunks"] == len(chunk_ranges(20, chunk))
    return decode(tmp_path / "whole" / "long.mkv"), decode(tmp_path / f"chunked{chunk}" / "long.mkv")


@pytest.mark.parametrize("pipeline, clip_format", [("gray", None), (TEMPORAL, None), (TEMPORAL_ESTIMATED, None),
                                                  (TEMPORAL, H264_B_FRAMES)],
                         ids=["gray-ffv1", "temporal-ffv1", "temporal-estimated-ffv1", "temporal-h264-bframes"])
def test_chunked_equals_unchunked_bit_for_bit(tmp_path, pipeline, clip_format):
    want, got = run_both(tmp_path, pipeline, 6, clip_format)
    assert len(got) == len(want) == 20
    assert [g[1] for g in got] == [w[1] for w in want]
    assert [i for i, (g, w) in enumerate(zip(got, want)) if not np.array_equal(g[0], w[0])] == []


def test_without_the_overlap_chunk_edges_differ(tmp_path, monkeypatch):
    """The comparison above can fail: chunks cut without the window's overlap change the
    frames at their edges."""
    monkeypatch.setattr(job_module, "chunk_overlap", lambda stages: 0)
    want, got = run_both(tmp_path, TEMPORAL, 6)
    differ = [i for i, (g, w) in enumerate(zip(got, want)) if not np.array_equal(g[0], w[0])]
    assert differ and set(differ) <= {5, 6, 11, 12, 17, 18}


def test_chunk_units_past_the_announced_end(tmp_path):
    """A container may announce a wrong frame count: the last chunk reads to the real end,
    and a chunk wholly past it is an empty part that the join skips."""
    from edgerestore.batch.job import OPEN_END
    from edgerestore.batch.work import ConcatSource, restore_unit

    clip = write_av_clip(tmp_path / "c.mkv", make_frames(20, 64, 48, seed=1))
    base = {"input": str(clip), "outdir": str(tmp_path / "o"), "pipeline": "gray", "overlap": 0}
    tail = restore_unit(base | {"key": "a", "output": str(tmp_path / "tail.mkv"), "start": 18, "stop": OPEN_END})
    empty = restore_unit(base | {"key": "b", "output": str(tmp_path / "empty.mkv"), "start": 24, "stop": OPEN_END})
    assert (tail["frames"], empty["frames"]) == (2, 0) and (tmp_path / "empty.mkv").stat().st_size == 0
    with ConcatSource([tmp_path / "tail.mkv", tmp_path / "empty.mkv"], 25.0) as src:
        assert [f.index for f in src] == [0, 1]


def test_chunk_sources_seek_and_give_the_frames_of_a_full_decode(tmp_path):
    """Each chunk's source (from ``start - overlap``) gives exactly the frames, indexes and
    timestamps of a full decode, reached by a seek to the keyframe before it."""
    from edgerestore.batch.work import FrameRangeSource
    from edgerestore.runtime.sources import VideoFileSource

    clip = write_av_clip(tmp_path / "b.mkv", [np.full((48, 64, 3), 9 * i, np.uint8) for i in range(20)],
                         **H264_B_FRAMES)
    with VideoFileSource(clip, hardware="off") as src:
        full = [(f.index, f.timestamp, f.image) for f in src]
    for first, last in [(5, 13), (11, 19), (17, 20)]:
        src = FrameRangeSource(clip, first, last, hardware="off")
        with src:
            got = [(f.index, f.timestamp, f.image) for f in src]
            plan = src._reader.seek_plan(first)
        assert [g[:2] for g in got] == [w[:2] for w in full[first:last]]
        assert all(np.array_equal(g[2], w[2]) for g, w in zip(got, full[first:last]))
        assert isinstance(plan, tuple) and plan[0] < plan[1]  # a keyframe before the start
        assert (plan[0] > 0) == (first >= 8)  # past the first GOP: a real seek
