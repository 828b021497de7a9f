"""`edgerestore run` end to end, in subprocesses, on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgerestore.cli.run import SAMPLE_CLIP

from tests.runtime.clips import make_frames, read_clip, truncate, write_clip

REPO = Path(__file__).resolve().parents[2]


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def edgerestore(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "edgerestore", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_no_argument_restores_the_sample_clip_into_the_current_folder(tmp_path):
    assert SAMPLE_CLIP.is_file() and SAMPLE_CLIP.stat().st_size < 2.5e6
    r = edgerestore("run", "--max-frames", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "sample_noisy_restored.mkv"
    assert f"wrote 2 frames to {out}" in r.stdout
    assert "sample clip" in r.stderr and "fps" in r.stderr
    frames = read_clip(out)
    assert len(frames) == 2 and frames[0].shape == (270, 480, 3)
    # ... and the default pipeline visibly denoises: pixel-to-pixel roughness drops
    before = read_clip(SAMPLE_CLIP)[0].astype(np.float64)
    rough = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert rough(frames[0].astype(np.float64)) < 0.7 * rough(before)


def test_offline_run_with_chain_and_report(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(8, 48, 32), fps=10)
    r = edgerestore("run", clip, "-o", "out.mkv", "--pipeline", "upscale(scale=2)|gray",
                    "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    frames = read_clip(tmp_path / "out.mkv")
    assert len(frames) == 8 and frames[0].shape == (64, 96, 3)
    cap = cv2.VideoCapture(str(tmp_path / "out.mkv"))
    assert cap.get(cv2.CAP_PROP_FPS) == 10  # the input's frame rate
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["frames_in"] == rep["frames_out"] == 8 and rep["status"] == "ok"
    assert [s["name"] for s in rep["stages"]] == ["upscale(scale=2, model='sr-x2')", "gray"]
    assert "latency ms: p50" in r.stderr


def test_folder_in_video_out_and_video_in_folder_out(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(make_frames(11, 40, 30)):
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    (folder / "img11.png").write_bytes(b"")  # a 0-byte file is skipped
    r = edgerestore("run", "frames/", "-o", "out.mp4", "-p", "none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(read_clip(tmp_path / "out.mp4")) == 11
    assert "1 unreadable/unusable skipped" in r.stderr
    r = edgerestore("run", "out.mp4", "-o", "again/", "-p", "none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "again").iterdir())[:2] == ["000000.png", "000001.png"]
    assert len(list((tmp_path / "again").iterdir())) == 11


def test_truncated_input_exits_1_naming_the_frame_with_a_playable_output(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(30))
    truncate(clip, tmp_path / "cut.mkv", 0.6)
    readable = len(read_clip(tmp_path / "cut.mkv"))
    r = edgerestore("run", "cut.mkv", "-o", "out.mkv", "-p", "none", "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 1
    assert f"decoding failed at frame {readable} of 30" in r.stderr
    assert len(read_clip(tmp_path / "out.mkv")) == readable
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "input_error"


def test_unwritable_output_and_unreadable_input_fail_fast(tmp_path):
    (tmp_path / "afile").write_text("x")
    clip = write_clip(tmp_path / "in.mkv", make_frames(3))
    r = edgerestore("run", clip, "-o", "afile/out.mkv", cwd=tmp_path)
    assert r.returncode == 1 and "not a folder" in r.stderr
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 500)
    r = edgerestore("run", "junk.mp4", "-o", "out.mkv", cwd=tmp_path)
    assert r.returncode == 1 and "cannot open junk.mp4 as a video" in r.stderr
    r = edgerestore("run", clip, "-o", "out.mp4", "--codec", "mp4v", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = edgerestore("run", clip, "-o", "in.mkv", cwd=tmp_path)
    assert r.returncode == 1 and "is the input" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.mkv", "junk.mp4"]


def test_stream_url_that_does_not_resolve_fails_fast_and_writes_nothing(tmp_path):
    t0 = time.perf_counter()
    r = edgerestore("run", "rtsp://no-such-camera.invalid/stream", "-o", "out.mkv", cwd=tmp_path)
    assert r.returncode == 1
    assert "host 'no-such-camera.invalid' does not resolve" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 30  # interpreter start included; the open itself is instant
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_finalises_a_playable_output(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgerestore", "run", "synthetic:64x48:2000", "-o", "out.mkv",
         "-p", "none", "--source-fps", "50"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_default)  # a background job's children ignore SIGINT otherwise
    deadline = time.time() + 30
    while not list(tmp_path.glob(".out.partial-*.mkv")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    frames = read_clip(tmp_path / "out.mkv")
    assert 10 < len(frames) < 2000
    assert not list(tmp_path.glob(".out.partial-*"))
    assert f"wrote {len(frames)} frames" in out


def test_live_mode_on_a_paced_file_drops_and_reports(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(40, 32, 24), fps=100)
    slow = "resize(width=2000)|resize(width=32)"  # a slow pair of stages
    r = edgerestore("run", clip, "--mode", "live", "-o", "-", "-p", slow, "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["mode"] == "live" and rep["frames_in"] == 40
    assert rep["frames_out"] + rep["frames_dropped"] == 40


def test_live_mode_uses_the_live_pipeline_unless_one_is_given(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", make_frames(6, 48, 32), fps=50)
    r = edgerestore("run", clip, "--mode", "live", "-o", "-", "--report", "live.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "live.json").read_text())["pipeline"] == ["nlm(search_size=11, estimate_every=10)"]
    r = edgerestore("run", clip, "--mode", "live", "-o", "-", "-p", "default", "--report", "d.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "d.json").read_text())["pipeline"] == ["nlm()"]
    r = edgerestore("run", clip, "-o", "-", "--report", "off.json", cwd=tmp_path)
    assert json.loads((tmp_path / "off.json").read_text())["pipeline"] == ["nlm()"]


def test_list_shows_stages_and_named_pipelines(tmp_path):
    r = edgerestore("run", "--list", cwd=tmp_path)
    assert r.returncode == 0
    assert "default" in r.stdout and "nlm(sigma, estimate" in r.stdout and "upscale(scale, method, model, backend, threads, max_output_mp)" in r.stdout
