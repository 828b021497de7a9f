"""`edgerestore run` faults from issue #21, end to end in subprocesses on real files: the
report path, output folders, SIGTERM and stale temporary files, runs that produce no
frame, unusable images in a folder, clean input, unwritable log and full disks, and
Ctrl-C inside a slow stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli.test_run import _env, _sigint_default, edgerestore
from tests.cli.tinyfs import fill, tmpfs
from tests.runtime.clips import make_frames, read_clip, write_clip


def _communicate(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``proc.communicate`` that kills the process (and fails) when it does not end in time."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the run did not end within {timeout} s of the signal; stderr:\n{err}")


def _folder(path: Path, sizes, seed=0) -> Path:
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(path / f"img{i}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


# ----------------------------------------------------------------- 1, 10: the report path
def test_report_that_would_replace_the_input_or_an_output_is_refused_before_any_work(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(3, 32, 24))
    before = clip.read_bytes()
    (tmp_path / "adir").mkdir()
    cases = {
        "in.mkv": "is the run's input",
        "o.mkv": "is the run's output",
        "o3.mkv": "video/image extension",
        "adir": "it is a folder",
        "missing/r.json": "does not exist",
    }
    for report, message in cases.items():
        r = edgerestore("run", "in.mkv", "-o", "o.mkv", "-p", "none", "--report", report, cwd=tmp_path)
        assert r.returncode == 1 and message in r.stderr, (report, r.stderr)
        assert "Traceback" not in r.stderr
    r = edgerestore("run", "in.mkv", "-o", "frames/", "-p", "none", "--report", "frames/r.json", cwd=tmp_path)
    assert r.returncode == 1 and "inside the output folder" in r.stderr
    assert clip.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "in.mkv"]  # nothing written


def test_report_in_a_read_only_folder_is_refused_before_any_work(tmp_path):
    write_clip(tmp_path / "in.mkv", make_frames(3, 32, 24))
    with tmpfs(tmp_path / "ro", read_only=True):
        r = edgerestore("run", "in.mkv", "-o", "o.mkv", "-p", "none", "--report", "ro/r.json", cwd=tmp_path)
    assert r.returncode == 1 and "not writable" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.mkv").exists()


# ----------------------------------------------------------------- 2: output folders
def test_output_folder_that_is_in_or_holds_the_input_folder_is_refused(tmp_path):
    _folder(tmp_path / "frames", [(32, 24)] * 3)
    before = {p.name: p.read_bytes() for p in (tmp_path / "frames").iterdir()}
    for out in ("frames/", "frames", "frames/sub/", "."):
        r = edgerestore("run", "frames/", "-o", out, "-p", "none", cwd=tmp_path)
        assert r.returncode == 1, (out, r.stderr)
        assert ("is the input" in r.stderr or "input folder" in r.stderr) and "Traceback" not in r.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "frames").iterdir()} == before


def test_reused_output_folder_is_refused_unless_overwrite_which_leaves_no_earlier_frame(tmp_path):
    _folder(tmp_path / "five", [(32, 24)] * 5)
    _folder(tmp_path / "two", [(32, 24)] * 2, seed=1)
    assert edgerestore("run", "five/", "-o", "out/", "-p", "none", cwd=tmp_path).returncode == 0
    (tmp_path / "out" / "notes.txt").write_text("mine")
    r = edgerestore("run", "two/", "-o", "out/", "-p", "none", cwd=tmp_path)
    assert r.returncode == 1 and "already holds 5 frame image(s)" in r.stderr and "--overwrite" in r.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 5
    r = edgerestore("run", "two/", "-o", "out/", "-p", "none", "--overwrite", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000000.png", "000001.png", "notes.txt"]
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "000001.png")), cv2.imread(str(tmp_path / "two" / "img1.png")))


# ----------------------------------------------------------------- 3: SIGTERM, stale partials
def test_sigterm_finalises_the_output_writes_the_report_and_exits_143(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgerestore", "run", "synthetic:64x48:2000", "-o", "out.mkv",
         "-p", "none", "--source-fps", "50", "--report", "r.json"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not list(tmp_path.glob(".out.partial-*.mkv")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = _communicate(proc, 30)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    frames = read_clip(tmp_path / "out.mkv")
    assert 10 < len(frames) < 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "r.json"]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "interrupted" and rep["frames_out"] == len(frames)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporary_files_of_ended_runs_are_removed_at_the_next_run_into_the_folder(tmp_path):
    write_clip(tmp_path / "in.mkv", make_frames(2, 32, 24))
    dead, alive = _dead_pid(), os.getpid()
    stale = [f".out.partial-{dead}.mkv", f".r.json.partial-{dead}", f".000001.png.partial-{dead}.x.tmp"]
    for name in stale + [f".other.partial-{alive}.mkv"]:
        (tmp_path / name).write_bytes(b"half")
    r = edgerestore("run", "in.mkv", "-o", "out.mkv", "-p", "none", "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left by runs that did not finish" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".other.partial-{alive}.mkv", "in.mkv", "out.mkv", "r.json"])


# ----------------------------------------------------------------- 4: no frame out
def _zero_frame_avi(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuvj420p"
        c.start_encoding()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and not cap.read()[0]  # opens, holds no frame
    return path


def test_a_run_that_produces_no_frame_exits_1_and_names_no_output(tmp_path):
    _zero_frame_avi(tmp_path / "empty.avi")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"junk")
    (bad / "b.png").write_bytes(b"")
    (tmp_path / "old.mkv").write_bytes(b"an earlier run's output")
    for src, message in (("empty.avi", "the input holds no frames"), ("bad/", "2 input image(s) were skipped")):
        r = edgerestore("run", src, "-o", "old.mkv", "-p", "none", "--report", "r.json", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert f"no frames came out: {message}" in r.stderr and "Traceback" not in r.stderr
        assert "from before this run and was left as it was" in r.stderr
        assert "wrote" not in r.stdout
        rep = json.loads((tmp_path / "r.json").read_text())
        assert rep["status"] == "no_frames" and rep["outputs"] == [] and rep["frames_out"] == 0
        assert (tmp_path / "old.mkv").read_bytes() == b"an earlier run's output"


# ----------------------------------------------------------------- 5: unusable image in a folder
def test_a_1x1_image_in_a_folder_of_mixed_sizes_is_skipped_naming_the_file(tmp_path):
    _folder(tmp_path / "mixed", [(40, 30), (1, 1), (50, 20), (40, 30)])
    r = edgerestore("run", "mixed/", "-o", "out.mkv", "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "skipping mixed/img1.png" in r.stderr and "1x1" in r.stderr
    assert len(read_clip(tmp_path / "out.mkv")) == 3
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "ok" and rep["frames_skipped"] == 1 and rep["skipped"][0].startswith("mixed/img1.png: ")


# ----------------------------------------------------------------- 9: clean input
def test_clean_input_is_reported_with_its_noise_estimate_and_a_hint(tmp_path, shared_data):
    clean = shared_data / "video" / "carphone_pristine.mp4"
    r = edgerestore("run", clean, "-o", "out.mkv", "--max-frames", "2", "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads((tmp_path / "r.json").read_text())["stages"][0]
    est = st["sigma_estimated"]
    assert est["frames"] == 2 and est["min"] <= est["median"] <= est["max"]
    if st["passed_through"] == 2:  # the estimate found no noise: the summary says so
        assert est["max"] < st["pass_threshold"]
        assert "2 of 2 frame(s) passed through unchanged" in r.stderr and "hint: the input looks clean" in r.stderr
    assert "estimated noise sigma (0-255) over 2 frame(s)" in r.stderr


def test_noisy_input_reports_the_estimate_and_no_pass_through(tmp_path):
    frames = [np.full((48, 64, 3), 120, np.uint8) for _ in range(3)]
    flat = write_clip(tmp_path / "flat.mkv", frames)
    r = edgerestore("run", flat, "-o", "-", "--report", "flat.json", cwd=tmp_path)
    st = json.loads((tmp_path / "flat.json").read_text())["stages"][0]
    assert st["passed_through"] == 3 and "hint: the input looks clean" in r.stderr
    rng = np.random.default_rng(3)
    noisy = [np.clip(f + rng.normal(0, 15, f.shape), 0, 255).astype(np.uint8) for f in frames]
    write_clip(tmp_path / "noisy.mkv", noisy)
    r = edgerestore("run", "noisy.mkv", "-o", "-", "--report", "noisy.json", cwd=tmp_path)
    st = json.loads((tmp_path / "noisy.json").read_text())["stages"][0]
    assert st["passed_through"] == 0 and 12 < st["sigma_estimated"]["median"] < 18
    assert "passed through" not in r.stderr


# ----------------------------------------------------------------- 10: log file, full disk
def test_unwritable_log_file_is_a_message(tmp_path):
    (tmp_path / "adir").mkdir()
    for log_file, message in (("missing/x.log", "No such file"), ("adir", "it is a folder")):
        r = edgerestore("--log-file", log_file, "info", cwd=tmp_path)
        assert r.returncode == 1 and f"cannot write the log file {log_file}: {message}" in r.stderr
        assert "Traceback" not in r.stderr


def test_full_disk_while_writing_a_folder_output_is_a_message_and_leaves_no_partial(tmp_path):
    _folder(tmp_path / "frames", [(160, 120)] * 8)  # ~58 KB of noise PNGs each
    with tmpfs(tmp_path / "disk", size_kb=128) as disk:
        r = edgerestore("run", "frames/", "-o", "disk/out/", "-p", "none", "--report", "r.json", cwd=tmp_path)
        left = sorted(p.name for p in (disk / "out").iterdir())
    assert r.returncode == 1 and "No space left on device" in r.stderr and "Traceback" not in r.stderr
    assert left and all(n.endswith(".png") and not n.startswith(".") for n in left)
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "error"


def test_full_disk_while_writing_the_report_is_a_message_and_leaves_no_partial(tmp_path):
    write_clip(tmp_path / "in.mkv", make_frames(2, 32, 24))
    with tmpfs(tmp_path / "disk", size_kb=8) as disk:
        fill(disk)
        r = edgerestore("run", "in.mkv", "-o", "out.mkv", "-p", "none", "--report", "disk/r.json", cwd=tmp_path)
        left = sorted(p.name for p in disk.iterdir())
    assert r.returncode == 1 and "cannot write the report disk/r.json: No space left" in r.stderr
    assert "Traceback" not in r.stderr and left == ["filler"]
    assert len(read_clip(tmp_path / "out.mkv")) == 2  # the restored video is kept


# ----------------------------------------------------------------- 13: Ctrl-C in a slow stage
SLOW_RUN = textwrap.dedent("""
    import sys, time
    from edgerestore.runtime import Stage, register_stage

    @register_stage("slow_after")
    class SlowAfter(Stage):
        '''Passes N frames through, then takes a minute per frame.'''
        def __init__(self, n: int = 3):
            self.n, self.seen, self.name = n, 0, f"slow_after(n={n})"
        def __call__(self, img):
            self.seen += 1
            if self.seen > self.n:
                time.sleep(60)
            return img

    from edgerestore.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_inside_a_slow_stage_ends_the_run_within_seconds(tmp_path, sig, status):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, "run", "synthetic:64x48:100", "-o", "out.mkv", "-p", "slow_after(n=3)",
         "--report", "r.json"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_default)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.partial-*.mkv")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # the first 3 frames are out; the stage is now asleep in frame 4
    t0 = time.perf_counter()
    proc.send_signal(sig)
    out, err = _communicate(proc, 10)
    assert time.perf_counter() - t0 < 5.0, err  # interpreter exit included
    assert proc.returncode == status, err
    assert len(read_clip(tmp_path / "out.mkv")) == 3 and "wrote 3 frames" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "interrupted" and rep["frames_out"] == 3


@pytest.mark.slow  # keeps two cores busy with BM3D at 1920x1080 for about 15 s
def test_ctrl_c_inside_a_real_slow_kernel_ends_the_run_within_seconds(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgerestore", "run", "synthetic:1920x1080:3", "-o", "out.mkv",
         "-p", "bm3d(sigma=25)", "--report", "r.json"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_default)
    time.sleep(12)  # start-up, then inside BM3D on the first 1920x1080 frame (tens of seconds)
    assert proc.poll() is None
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = _communicate(proc, 10)
    assert time.perf_counter() - t0 < 5.0, err
    assert proc.returncode == 130, err
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "interrupted"
