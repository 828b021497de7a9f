"""The runtime's guards of issue #21 through the Python API: outputs apart from inputs,
reused output folders, stale temporary files, SIGTERM deferred to the frame boundary,
bounded teardown around a slow stage, skipped unusable images, runs with no frame,
noise estimates in the report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edgerestore.runtime import Pipeline, Stage, sinks, sources
from edgerestore.runtime.errors import SinkError

from .clips import make_frames, read_clip, write_clip


def _images(folder, sizes):
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((h, w, 3), 40 * i, np.uint8))
    return folder


def test_output_folder_equal_to_inside_or_around_the_input_folder_is_refused(tmp_path):
    frames = _images(tmp_path / "frames", [(16, 12)] * 2)
    for out in (frames, frames / "sub", tmp_path):
        with pytest.raises(SinkError, match="input"):
            Pipeline("none").run(sources.ImageFolderSource(frames), sinks.ImageFolderSink(out))
    assert sorted(p.name for p in frames.iterdir()) == ["0.png", "1.png"]
    clip = write_clip(tmp_path / "in.mkv", make_frames(2, 16, 12))
    with pytest.raises(SinkError, match="is the input"):
        Pipeline("none").run(sources.VideoFileSource(clip), sinks.VideoFileSink(tmp_path / "." / "in.mkv"))
    assert len(read_clip(clip)) == 2


def test_folder_output_of_an_earlier_run_is_refused_or_replaced_whole(tmp_path):
    Pipeline("none").run(sources.SyntheticSource(16, 12, 4), sinks.ImageFolderSink(tmp_path / "out"))
    with pytest.raises(SinkError, match="already holds 4 frame image"):
        Pipeline("none").run(sources.SyntheticSource(16, 12, 2), sinks.ImageFolderSink(tmp_path / "out"))
    report = Pipeline("none").run(sources.SyntheticSource(16, 12, 2),
                                  sinks.ImageFolderSink(tmp_path / "out", overwrite=True))
    assert report.frames_out == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.png", "000001.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.png").write_bytes(b"junk")
    report = Pipeline("none").run(sources.ImageFolderSource(empty), sinks.ImageFolderSink(tmp_path / "out", overwrite=True))
    assert report.status == "no_frames"  # a run that wrote nothing removes nothing
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.png", "000001.png"]
    Pipeline("none").run(sources.ImageFolderSource(empty), sinks.ImageFolderSink(tmp_path / "new"))
    assert not (tmp_path / "new").exists()  # nor leaves an empty folder it made


def test_stale_partials_of_ended_processes_only_are_removed(tmp_path):
    from edgerestore.runtime.sinks.base import clean_stale_partials

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    names = [f".a.partial-{p.pid}.mkv", f".b.partial-{os.getpid()}.mkv", f".c.partial-{os.getppid()}",
             "a.partial-1.mkv", ".d.mkv"]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    assert clean_stale_partials(tmp_path) == [f".a.partial-{p.pid}.mkv"]
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(names[1:])


def test_sigterm_mapped_to_an_interrupt_stops_between_frames_and_is_reraised():
    class Terminated(KeyboardInterrupt):
        pass

    def on_sigterm(signum, frame):
        raise Terminated

    completed: list[int] = []

    def sink(frame):
        if frame.index == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        completed.append(frame.index)

    old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        pipe = Pipeline([])
        with pytest.raises(KeyboardInterrupt) as raised:
            pipe.run(sources.SyntheticSource(16, 12, 200), sink)
        assert isinstance(raised.value, Terminated)  # the program's own exception, re-raised
        assert signal.getsignal(signal.SIGTERM) is on_sigterm
    finally:
        signal.signal(signal.SIGTERM, old)
    assert pipe.report.status == "interrupted" and pipe.report.frames_out == len(completed) >= 6


class Stuck(Stage):
    """Passes 3 frames, then waits (up to 60 s) for ``release`` on the 4th."""

    name = "stuck"

    def __init__(self):
        self.release = threading.Event()
        self.seen = 0
        self.closed = False

    def __call__(self, img):
        self.seen += 1
        if self.seen > 3:
            self.release.wait(60)
        return img

    def close(self):
        self.closed = True


def test_ctrl_c_during_a_slow_stage_ends_the_run_within_the_join_limit(tmp_path):
    import _thread

    stage = Stuck()
    out = tmp_path / "out.mkv"
    pipe = Pipeline([stage])
    threading.Timer(1.0, _thread.interrupt_main).start()
    watchdog = threading.Timer(10.0, stage.release.set)  # a run that waits for the stage fails, not hangs
    watchdog.start()
    t0 = time.perf_counter()
    try:
        with pipe:
            with pytest.raises(KeyboardInterrupt):
                pipe.run(sources.SyntheticSource(16, 12, 50), out)
            took = time.perf_counter() - t0
            assert pipe.busy_stages() == ["stuck"]
        assert not stage.closed  # not closed under its running call
        assert took < 3.0
        assert pipe.report.status == "interrupted" and len(read_clip(out)) == pipe.report.frames_out == 3
        with pytest.raises(Exception, match="still busy"):
            pipe.run(sources.SyntheticSource(16, 12, 2), None)
        stage.release.set()
        deadline = time.time() + 5
        while pipe.busy_stages() and time.time() < deadline:
            time.sleep(0.05)
        assert pipe.busy_stages() == [] and stage.seen == 4  # frames still queued were not started
    finally:
        stage.release.set()
        watchdog.cancel()


def test_a_stage_that_refuses_an_image_of_a_folder_skips_that_file(tmp_path):
    folder = _images(tmp_path / "mixed", [(20, 16), (1, 1), (2, 40), (20, 16)])
    report = Pipeline("nlm(sigma=10)").run(sources.ImageFolderSource(folder), tmp_path / "out.mkv")
    assert report.status == "ok" and report.frames_out == 2 and report.frames_skipped == 2
    assert [s.split(":")[0] for s in report.skipped] == [str(folder / "1.png"), str(folder / "2.png")]


def test_a_run_with_no_frame_is_not_ok_and_names_no_output(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    report = Pipeline("none").run(sources.ImageFolderSource(folder), tmp_path / "out.mkv")
    assert report.status == "no_frames" and not report.ok and report.outputs == []
    assert "skipped as unreadable" in report.error and not (tmp_path / "out.mkv").exists()


def test_a_run_that_cannot_start_reports_error_not_ok(tmp_path):
    pipe = Pipeline("none")
    with pytest.raises(SinkError):
        pipe.run(sources.SyntheticSource(16, 12, 2), tmp_path / "no" / "out.mkv")
    assert pipe.report.status == "error" and "does not exist" in pipe.report.error


def test_kernel_stages_report_their_noise_estimates_and_pass_through(tmp_path):
    flat = [np.full((32, 48, 3), 100, np.uint8)] * 3
    for spec in ("nlm()", "bm3d()"):
        st = Pipeline(spec).run(sources.ArraySource(flat), None).stages[0]
        assert st["passed_through"] == 3 and st["sigma_estimated"]["max"] < st["pass_threshold"]
    st = Pipeline("nlm(sigma=10)").run(sources.ArraySource(flat), None).stages[0]
    assert "sigma_estimated" not in st  # a given sigma: nothing estimated


def test_the_summary_hints_when_half_the_frames_or_more_passed_through():
    from edgerestore.runtime.report import noise_lines

    est = {"frames": 8, "min": 0.37, "median": 0.43, "max": 0.74}  # dashcam_solidWhiteRight.mp4, 8 frames
    entry = {"name": "nlm()", "frames": 8, "sigma_estimated": est, "pass_threshold": 0.5}
    assert noise_lines({**entry, "passed_through": 0})[0].endswith("min 0.37, median 0.43, max 0.74")
    assert not any("hint" in line for line in noise_lines({**entry, "passed_through": 3}))
    lines = noise_lines({**entry, "passed_through": 7})
    assert "7 of 8 frame(s) passed through unchanged" in lines[1] and "hint: most frames look clean" in lines[2]


def test_ctrl_c_while_the_outputs_are_finalised_waits_until_they_are_complete():
    class SlowClose(sinks.ListSink):
        finished = False

        def close(self):
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the output is being finalised
            time.sleep(0.05)
            self.finished = True

    sink = SlowClose()
    pipe = Pipeline([])
    with pytest.raises(KeyboardInterrupt):
        pipe.run(sources.SyntheticSource(16, 12, 3), sink)
    assert sink.finished and len(sink.frames) == 3
    assert pipe.report.status == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
