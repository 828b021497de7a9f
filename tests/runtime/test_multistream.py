"""Many streams in one process (runtime/multistream.py): 4 real clips at once, offline and
live, a stream that ends early, a stream that errors, batches, round-robin fairness."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgerestore.runtime import Pipeline
from edgerestore.runtime.multistream import MultiStreamRunner, stream_output_names
from edgerestore.runtime.stages import BatchStage

from .clips import read_clip, truncate, write_av_clip

MODEL = "model(name='dn-gray', sigma=15, backend='ort-cpu')"


def footage(shared_data: Path, name: str, n: int, size=(96, 64), start: int = 0) -> list[np.ndarray]:
    """``n`` real frames of a shared clip, resized to ``size`` (w, h)."""
    cap = cv2.VideoCapture(str(shared_data / "video" / name))
    frames = []
    while len(frames) < start + n:
        ok, img = cap.read()
        assert ok, f"{name} has fewer than {start + n} frames"
        frames.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames[start:]


@pytest.fixture
def clips(shared_data, tmp_path) -> list[Path]:
    """4 tiny real clips (FFV1 in .mkv, written with PyAV): 10, 10, 4 (ends early), 10 frames."""
    names = ["carphone_distorted.mp4", "dashcam_solidWhiteRight.mp4", "pedestrians_vtest.avi",
             "carphone_pristine.mp4"]
    lengths = [10, 10, 4, 10]
    return [write_av_clip(tmp_path / f"cam{k}.mkv", footage(shared_data, name, n))
            for k, (name, n) in enumerate(zip(names, lengths))]


def lossless_outputs(tmp_path: Path, sources: list) -> list[Path]:
    (tmp_path / "out").mkdir(exist_ok=True)
    return [tmp_path / "out" / n for n in stream_output_names(sources)]


def run_streams(pipeline, sources, outputs, **kw):
    from edgerestore.runtime import sinks

    outs = [sinks.VideoFileSink(o, lossless=True) for o in outputs]
    mode = kw.pop("mode", "offline")
    with MultiStreamRunner(pipeline, mode=mode, **kw) as runner:
        return runner.run(sources, outs)


def test_four_streams_offline_equal_four_single_runs_and_report_each(clips, tmp_path):
    outputs = lossless_outputs(tmp_path, clips)
    report = run_streams(MODEL, clips, outputs)
    assert report.status == "ok"
    assert [r.frames_out for r in report.streams] == [10, 10, 4, 10]
    assert report.totals["frames_out"] == 34 and report.totals["streams"] == 4
    stage = report.stages[0]
    assert stage["batches"] < 34 and stage["mean_batch"] > 1.5  # frames did share inferences
    for k, (clip, out) in enumerate(zip(clips, outputs)):
        r = report.streams[k]
        assert r.status == "ok" and r.fps and r.latency_ms["p50"] is not None and r.latency_ms["p95"] is not None
        assert r.outputs == [str(out)]
        single = tmp_path / f"single{k}.mkv"
        from edgerestore.runtime import sinks

        Pipeline(MODEL).run(clip, sinks.VideoFileSink(single, lossless=True))
        got, want = read_clip(out), read_clip(single)
        assert len(got) == len(want) == r.frames_out
        for a, b in zip(got, want):  # batched inference gives the single-stream frames, bit for bit
            assert np.array_equal(a, b)
    text = report.summary()
    assert text.count("stream ") >= 4 and "fps in all" in text and "frames per call" in text


def test_four_streams_live_keep_their_own_drops_and_latency(clips, tmp_path):
    from edgerestore.runtime import sources

    srcs = [sources.open_source(str(c), realtime=True) for c in clips]
    report = run_streams("nlm(sigma=10, search_size=7)", srcs, lossless_outputs(tmp_path, clips), mode="live")
    assert report.status == "ok"
    for r, n in zip(report.streams, [10, 10, 4, 10]):
        assert r.frames_in == n and r.frames_in == r.frames_out + r.frames_dropped
        assert r.frames_out >= 1 and r.latency_ms["p95"] is not None
    assert report.totals["frames_dropped"] == sum(r.frames_dropped for r in report.streams)


def test_a_stream_that_errors_stops_only_itself(clips, tmp_path):
    long = write_av_clip(tmp_path / "long.mkv", [f for f in read_clip(clips[0]) for _ in range(3)])
    cut = truncate(long, tmp_path / "cut.mkv", 0.5)
    sources = [clips[0], cut, clips[1], clips[3]]
    outputs = lossless_outputs(tmp_path, sources)
    report = run_streams(MODEL, sources, outputs)
    bad = report.streams[1]
    assert bad.status == "input_error" and "decoding failed" in bad.source_error
    assert 0 < bad.frames_out < 30 and len(read_clip(outputs[1])) == bad.frames_out
    for k in (0, 2, 3):
        assert report.streams[k].status == "ok" and len(read_clip(outputs[k])) == 10
    assert report.status == "partial"
    assert "input error" in report.summary()


class RecordingBatch(BatchStage):
    """Inverts the frames and records which streams' frames (by size and first pixel) went
    into each call; a frame of width 77 is refused."""

    name = "recording"

    def __init__(self):
        self.calls: list[list[tuple]] = []

    def process_batch(self, images):
        if any(im.shape[1] == 77 for im in images):
            raise ValueError("width 77 refused")
        self.calls.append([im.shape for im in images])
        return [1.0 - im for im in images]


def synthetic_clip(path: Path, n: int, w: int, h: int, level: int) -> Path:
    frames = [np.full((h, w, 3), (level + 3 * i) % 256, np.uint8) for i in range(n)]
    return write_av_clip(path, frames)


def test_batches_hold_one_frame_per_stream_of_one_size_round_robin(tmp_path):
    clips = [synthetic_clip(tmp_path / "a.mkv", 12, 64, 48, 10), synthetic_clip(tmp_path / "b.mkv", 12, 64, 48, 90),
             synthetic_clip(tmp_path / "c.mkv", 12, 32, 32, 170)]
    stage = RecordingBatch()
    report = run_streams([stage], clips, lossless_outputs(tmp_path, clips), batch_wait_s=0.5)
    assert report.status == "ok" and [r.frames_out for r in report.streams] == [12, 12, 12]
    assert all(len(set(c)) == 1 for c in stage.calls)  # one size per call
    assert all(len(c) <= 2 for c in stage.calls)  # at most one frame per stream (two of 64x48)
    assert sum(len(c) for c in stage.calls) == 36
    assert max(len(c) for c in stage.calls) == 2  # the two 64x48 streams did share calls
    out = read_clip(tmp_path / "out" / "c_restored.mkv")
    assert abs(int(out[0][0, 0, 0]) - (255 - 170)) <= 1


def test_a_frame_a_batch_stage_refuses_fails_its_stream_only(tmp_path):
    clips = [synthetic_clip(tmp_path / "a.mkv", 8, 64, 48, 10), synthetic_clip(tmp_path / "b.mkv", 8, 77, 48, 90)]
    report = run_streams([RecordingBatch()], clips, lossless_outputs(tmp_path, clips))
    assert report.streams[0].status == "ok" and report.streams[0].frames_out == 8
    assert report.streams[1].status == "error" and "width 77 refused" in report.streams[1].error
    assert report.streams[1].outputs == []  # its output discarded, as a failed one-stream run
    assert report.status == "partial"


def test_a_fast_stream_does_not_starve_a_slow_one_live(tmp_path):
    """Live: a 100 fps stream and a 10 fps stream through a stage of 30 ms per frame; the
    fast stream always has a frame waiting, so serving it first would starve the slow
    one (about none of its frames out); round-robin serves the slow one in turn."""
    import time

    from edgerestore.runtime import sources

    class Slow(BatchStage):
        name = "slow"
        batch_size = 1  # one frame per call: the order of service is all that decides

        def process_batch(self, images):
            time.sleep(0.03)
            return images

    fast = synthetic_clip(tmp_path / "fast.mkv", 80, 32, 32, 10)
    slow = synthetic_clip(tmp_path / "slow.mkv", 8, 32, 32, 100)
    srcs = [sources.open_source(str(fast), realtime=True, pace_fps=100),
            sources.open_source(str(slow), realtime=True, pace_fps=10)]
    report = run_streams([Slow()], srcs, lossless_outputs(tmp_path, [fast, slow]), mode="live")
    f, s = report.streams
    assert f.frames_in == 80 and s.frames_in == 8
    assert s.frames_out >= 4  # served in turn, not starved (a loaded machine may drop a few)
    assert f.frames_dropped > s.frames_dropped


def test_frame_and_window_stages_are_refused_before_any_work():
    with pytest.raises(Exception, match="keeps state"):
        MultiStreamRunner("temporal_live()")


def test_output_names_follow_the_sources():
    assert stream_output_names(["a/cam0.mp4", "b/cam1.avi", "rtsp://h/x", "0"]) == [
        "cam0_restored.mkv", "cam1_restored.mkv", "stream2_restored.mkv", "stream3_restored.mkv"]
    assert stream_output_names(["a/cam.mp4", "b/cam.mp4"]) == ["cam_0_restored.mkv", "cam_1_restored.mkv"]


def test_a_slow_stream_does_not_stall_the_others_offline(tmp_path):
    """Offline, a stream whose frames come slowly (a camera, a stream reconnecting) holds
    back neither the others' frames nor their end: the batch waits at most batch_wait_s."""
    from edgerestore.runtime import sources

    fast = synthetic_clip(tmp_path / "fast.mkv", 20, 32, 32, 10)
    slow = synthetic_clip(tmp_path / "slow.mkv", 4, 32, 32, 100)
    srcs = [sources.open_source(str(fast)), sources.open_source(str(slow), realtime=True, pace_fps=2)]
    report = run_streams([RecordingBatch()], srcs, lossless_outputs(tmp_path, [fast, slow]), batch_wait_s=0.02)
    f, s = report.streams
    assert f.frames_out == 20 and s.frames_out == 4 and report.status == "ok"
    assert s.elapsed_s >= 1.4  # 4 frames at 2 fps
    assert f.elapsed_s < 0.5 * s.elapsed_s


def test_the_docs_examples_run_as_written(tmp_path, monkeypatch):
    import re

    from edgerestore.runtime.streams_file import read_streams_file

    doc = (Path(__file__).resolve().parents[2] / "docs" / "runtime.md").read_text()
    block = [b for b in re.findall(r"```python\n(.*?)```", doc, flags=re.S) if "MultiStreamRunner" in b]
    assert len(block) == 1
    for k in range(2):
        write_av_clip(tmp_path / f"cam{k}.mp4", [np.full((32, 48, 3), 60 + 40 * k, np.uint8)] * 3,
                      codec="libx264", pix_fmt="yuv420p")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block[0], "docs/runtime.md", "exec"), ns)
    assert [r.frames_out for r in ns["report"].streams] == [3, 3]
    assert len(read_clip(tmp_path / "out" / "cam1.mkv")) == 3
    toml = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    assert len(toml) == 1
    (tmp_path / "s.toml").write_text(toml[0])
    spec = read_streams_file(tmp_path / "s.toml")
    assert [s.source for s in spec.streams] == [str(tmp_path / "cam0.mp4"), "rtsp://host/cam2"]
    assert spec.streams[0].output == str(tmp_path / "front.mkv") and spec.streams[1].options["source_fps"] == 15
