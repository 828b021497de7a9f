"""The threaded pipeline on real sources and sinks: order, overlap, live drops, faults."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from edgerestore.runtime import Pipeline, sinks, sources
from edgerestore.runtime.errors import SinkError, StageError, StopRun

from .clips import make_frames, read_clip, truncate, write_clip


def sleeper(seconds, name="sleep"):
    def stage(img):
        time.sleep(seconds)
        return img
    stage.__name__ = name
    return stage


def test_offline_every_frame_in_order_unchanged():
    src = sources.SyntheticSource(40, 30, 25, noise_sigma=5, seed=3)
    expected = [f.image.copy() for f in sources.SyntheticSource(40, 30, 25, noise_sigma=5, seed=3)]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(0, 0.004, 100)

    def uneven(img, it=iter(jitter)):
        time.sleep(next(it))
        return img

    out = sinks.ListSink()
    report = Pipeline([uneven, sleeper(0.001)], queue_size=2).run(src, out)
    assert [f.index for f in out.frames] == list(range(25))
    assert all(np.array_equal(f.image, e) for f, e in zip(out.frames, expected))
    assert (report.frames_in, report.frames_out, report.frames_dropped) == (25, 25, 0)
    assert report.status == "ok"


def test_stages_overlap():
    # Three stages of 15 ms each over 20 frames: one after another that is 0.9 s;
    # in threads joined by queues it approaches 20 x 15 ms = 0.3 s.
    n, dt = 20, 0.015
    stages = [sleeper(dt, f"s{i}") for i in range(3)]
    report = Pipeline(stages).run(sources.SyntheticSource(32, 24, n), None)
    sequential = n * 3 * dt
    assert report.elapsed_s < 0.7 * sequential, report.elapsed_s
    assert [s["mean_ms"] for s in report.stages] == pytest.approx([15, 15, 15], abs=8)


def test_live_mode_drops_oldest_and_bounds_latency():
    # Source at 100 fps, a stage that manages 20 fps: live mode must drop, not lag.
    src = sources.SyntheticSource(32, 24, 60, fps=100, realtime=True)
    out = sinks.ListSink()
    report = Pipeline([sleeper(0.05)], mode="live").run(src, out)
    assert report.frames_in == 60
    assert report.frames_dropped > 20
    assert report.frames_out + report.frames_dropped == report.frames_in
    idx = [f.index for f in out.frames]
    assert idx == sorted(idx) and idx[-1] == 59  # in order, and the newest frame made it
    assert report.latency_ms["p95"] < 250


def test_offline_mode_same_load_keeps_every_frame_at_the_slowest_stage_pace():
    src = sources.SyntheticSource(32, 24, 30, fps=100, realtime=True)
    report = Pipeline([sleeper(0.03)], mode="offline").run(src, None)
    assert report.frames_out == 30 and report.frames_dropped == 0
    assert report.elapsed_s >= 30 * 0.03 * 0.95


def test_nan_from_a_stage_names_the_stage_and_leaves_no_output(tmp_path):
    def broken(img):
        out = img.copy()
        if out.mean() > 0:  # every frame
            out[0, 0] = np.nan
        return out

    out = tmp_path / "out.mkv"
    pipe = Pipeline([sleeper(0, "fine"), broken])
    with pytest.raises(StageError) as info:
        pipe.run(sources.SyntheticSource(32, 24, 10), out)
    assert info.value.stage == "broken" and info.value.frame_index == 0
    assert "stage 'broken' at frame 0 produced 3 NaN/Inf values" in str(info.value)
    assert pipe.report.status == "error"
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_stage_exception_is_wrapped_with_stage_and_frame():
    def picky(img, calls=[0]):
        calls[0] += 1
        if calls[0] == 4:
            raise ValueError("cannot handle this one")
        return img

    with pytest.raises(StageError, match=r"stage 'picky' failed at frame 3: ValueError: cannot handle"):
        Pipeline([picky]).run(sources.SyntheticSource(32, 24, 10), None)


def test_bad_stage_output_shape_or_dtype():
    with pytest.raises(StageError, match="returned dtype uint8"):
        Pipeline([lambda img: (img * 255).astype(np.uint8)]).run(sources.SyntheticSource(8, 8, 2), None)
    with pytest.raises(StageError, match=r"returned shape \(8, 8, 4\)"):
        Pipeline([lambda img: np.zeros((8, 8, 4), np.float32)]).run(sources.SyntheticSource(8, 8, 2), None)


def test_unwritable_output_fails_before_any_work(tmp_path):
    calls = []
    (tmp_path / "afile").write_text("x")
    src = sources.SyntheticSource(16, 16, 5)
    pipe = Pipeline([lambda img: calls.append(1) or img])
    t0 = time.perf_counter()
    with pytest.raises(SinkError, match="not a folder"):
        pipe.run(src, tmp_path / "afile" / "out.mkv")
    assert calls == [] and not src._opened
    assert time.perf_counter() - t0 < 1


def test_truncated_input_keeps_every_frame_produced_in_a_playable_file(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(30))
    cut = truncate(clip, tmp_path / "cut.mkv", 0.6)
    readable = len(read_clip(cut))
    out = tmp_path / "out.mp4"
    report = Pipeline("none").run(cut, out)
    assert report.status == "input_error"
    assert report.source_error_frame == readable
    assert f"frame {readable} of 30" in report.source_error
    assert len(read_clip(out)) == report.frames_out == readable


def test_stoprun_from_a_sink_finalises_the_output(tmp_path):
    def enough(frame):
        if frame.index == 4:
            raise StopRun("seen enough")

    out = tmp_path / "out.mkv"
    report = Pipeline("none").run(sources.SyntheticSource(32, 24, 50), [out, enough])
    assert report.status == "stopped"
    assert len(read_clip(out)) == 5


def test_ctrl_c_in_the_calling_thread_finalises_the_output(tmp_path):
    # The interrupt arrives while the pipeline runs (as SIGINT does): the output file
    # is finalised with the frames written so far and KeyboardInterrupt propagates.
    import _thread

    out = tmp_path / "out.mkv"
    timer = threading.Timer(0.4, _thread.interrupt_main)
    pipe = Pipeline([sleeper(0.02)])
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        pipe.run(sources.SyntheticSource(32, 24, 500), out)
    timer.cancel()
    n = len(read_clip(out))
    assert pipe.report.status == "interrupted"
    assert 0 < n == pipe.report.frames_out < 500


def test_report_json_has_the_documented_fields(tmp_path):
    report = Pipeline("upscale(scale=2)").run(sources.SyntheticSource(32, 24, 6), None)
    path = report.write_json(tmp_path / "r.json")
    data = json.loads(path.read_text())
    for key in ("frames_in", "frames_out", "frames_dropped", "fps", "latency_ms", "stages", "status"):
        assert key in data
    assert set(data["latency_ms"]) == {"p50", "p95", "max"}
    assert data["stages"][0]["name"] == "upscale(scale=2, model='sr-x2')"
    assert data["stages"][0]["frames"] == 6 and data["stages"][0]["mean_ms"] >= 0
    assert data["frames_out"] == 6 and data["fps"] > 0


def test_gray_frames_and_size_change_through_stages():
    out = sinks.ListSink()
    Pipeline("upscale(scale=2)|gray").run(sources.SyntheticSource(20, 10, 3), out)
    assert [f.image.shape for f in out.frames] == [(20, 40)] * 3
    assert out.frames[0].image.dtype == np.uint8


def test_process_one_image():
    img = make_frames(1, 32, 24)[0]
    with Pipeline("upscale(scale=2)") as p:
        out = p.process(img)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8


def test_lost_stream_live_is_reopened_offline_stops_cleanly(tmp_path):
    clip = write_clip(tmp_path / "cam.mkv", make_frames(5, 32, 24))
    # live: the stream "ends" after 5 frames, is reopened, and the run goes on
    live = Pipeline("none", mode="live", queue_size=64).run(sources.StreamSource(str(clip)), None, max_frames=12)
    assert live.frames_in == 12 and live.reconnects == 2 and live.status == "ok"
    # offline: the loss ends the run; what was read is written, and the report says why
    out = tmp_path / "out.mkv"
    off = Pipeline("none", mode="offline").run(sources.StreamSource(str(clip)), out)
    assert off.status == "input_error" and off.source_error_frame == 5
    assert len(read_clip(out)) == 5


def test_live_video_output_plays_at_capture_speed(tmp_path):
    # 40 frames at 100 fps = 0.4 s captured; most are dropped, but the video written in
    # live mode keeps each frame's capture time, so it still lasts about 0.4 s.
    import av

    out = tmp_path / "live.mkv"
    src = sources.SyntheticSource(32, 24, 40, fps=100, realtime=True)
    report = Pipeline([sleeper(0.04)], mode="live").run(src, out)
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert report.frames_dropped > 10 and report.frames_out < 30
    assert len(times) == report.frames_out
    assert 0.3 <= times[-1] - times[0] <= 0.45


def test_ctrl_c_stops_between_frames_so_every_written_frame_is_counted():
    """SIGINT in the middle of a sink's write must not cut the write off from its count."""
    import os
    import signal

    completed: list[int] = []

    def sink(frame):
        if frame.index == 5:
            os.kill(os.getpid(), signal.SIGINT)  # delivered at the next bytecode, inside this call
            time.sleep(0.05)
        completed.append(frame.index)  # the sink's own bookkeeping after the write

    pipe = Pipeline([])
    with pytest.raises(KeyboardInterrupt):
        pipe.run(sources.SyntheticSource(16, 12, 200), sink)
    assert completed and completed[-1] >= 5
    assert pipe.report.status == "interrupted"
    assert pipe.report.frames_out == len(completed)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
