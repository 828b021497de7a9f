"""`edgerestore run` video options end to end (issue #27): numbers checked at the door
(exit 2 before any work), codecs, lossless, audio, durations in the report, non-UTF-8
paths, a write error that stops the run and keeps the previous file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import pytest

from tests.cli.test_run import _env
from tests.runtime.clips import make_frames, video_times, write_av_clip


def run_cli(*args, cwd, timeout=120):
    argv = [sys.executable, "-m", "edgerestore", "run",
            *[a if isinstance(a, bytes) else str(a) for a in args]]
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, timeout=timeout)


@pytest.mark.parametrize("bad", [["--fps", "inf"], ["--fps", "nan"], ["--fps", "-5"], ["--fps", "0"],
                                 ["--queue-size", "0"], ["--source-fps", "inf"], ["--max-frames", "0"],
                                 ["--crf", "52"], ["--codec", "av1", "--crf", "64"], ["--crf", "20", "--lossless"],
                                 ["--codec", "h264", "--lossless"], ["--codec", "mp4v"]])
def test_bad_numbers_and_combinations_are_usage_errors_before_any_work(tmp_path, bad):
    r = run_cli("missing.mp4", "-o", "out.mp4", *bad, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert b"error:" in r.stderr and b"Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # the missing input was never looked at


def test_codecs_lossless_audio_and_durations(tmp_path):
    times = [0.0, 0.04, 0.12, 0.16, 0.3]
    write_av_clip(tmp_path / "in.mkv", make_frames(5), times, codec="libx264", pix_fmt="yuv420p", audio_s=0.3)
    r = run_cli("in.mkv", "-o", "out.mp4", "-p", "none", "--codec", "h265", "--crf", "30",
                "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "hevc" and len(c.streams.audio) == 1
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["duration_in_s"] == pytest.approx(rep["duration_out_s"], abs=1e-3)
    assert rep["encoders"][0]["encoder"] == "libx265" and rep["encoders"][0]["encode_ms"] > 0
    assert b"encoder libx265" in r.stderr and b"duration in" in r.stderr
    assert video_times(tmp_path / "out.mp4") == pytest.approx(times, abs=1e-3)
    r = run_cli("in.mkv", "-o", "lossless.mkv", "-p", "none", "--lossless", "--no-audio", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "lossless.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "ffv1" and not c.streams.audio


def test_non_utf8_input_and_output_paths(tmp_path):
    write_av_clip(tmp_path / "plain.mkv", make_frames(3))
    os.rename(tmp_path / "plain.mkv", os.fsencode(tmp_path) + b"/bad\xff in.mkv")
    r = run_cli(b"bad\xff in.mkv", "-o", b"bad\xfe out.mp4", "-p", "none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = os.fsencode(tmp_path) + b"/bad\xfe out.mp4"
    assert os.path.exists(out) and len(video_times(os.fsdecode(out))) == 3


def test_a_write_error_exits_1_naming_the_file_and_keeps_the_old_one(tmp_path):
    write_av_clip(tmp_path / "in.mkv", make_frames(20, 320, 240))
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        (disk / "out.mkv").write_bytes(b"good")
        r = run_cli("in.mkv", "-o", disk / "out.mkv", "-p", "none", "--lossless", cwd=tmp_path)
        assert r.returncode == 1
        assert str(disk / "out.mkv").encode() in r.stderr and b"no space left" in r.stderr
        assert b"Traceback" not in r.stderr
        assert (disk / "out.mkv").read_bytes() == b"good" and sorted(os.listdir(disk)) == ["out.mkv"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_info_lists_the_video_codecs(tmp_path):
    import re

    r = subprocess.run([sys.executable, "-m", "edgerestore", "info"], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[1] if ln.split()[0] == "encode" else "decode": ln
             for ln in r.stdout.splitlines() if re.match(r"  (encode|decode) ", ln)}
    assert set(lines) == {"h264", "h265", "av1", "ffv1", "mjpeg", "decode"}
    assert "libx264 yes" in lines["h264"] and "ffv1 yes" in lines["ffv1"]
    assert "h264 yes" in lines["decode"] and "hevc yes" in lines["decode"]
    assert re.search(r"h264_nvenc (yes|no \(.+\))", lines["h264"])  # a reason when not usable
    assert re.search(r"nvdec \(cuda\) (yes|no \(.+\))", lines["decode"])
    for line in lines.values():  # every entry says yes or no with its reason
        entries = re.split(r", (?![^(]*\))", line.split(None, 2 if line.split()[0] == "encode" else 1)[-1])
        assert all(re.fullmatch(r"\S+( \(cuda\))? (yes|no \(.+\))", e) for e in entries), entries


def test_ten_bit_input_without_stages_is_written_at_8_bits_not_saturated(tmp_path):
    import numpy as np

    img = (np.random.default_rng(1).integers(0, 1024, (32, 48, 3)) * 64).astype(np.uint16)
    write_av_clip(tmp_path / "ten.mkv", [img] * 2, codec="ffv1", pix_fmt="yuv444p10le")
    r = run_cli("ten.mkv", "-o", "out.mkv", "-p", "none", "--lossless", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        out = next(c.decode(video=0)).to_ndarray(format="bgr24").astype(float)
    assert abs(out.mean() - img.mean() / 257) < 2


def test_ten_bit_input_restored_is_written_at_10_bits_in_h265(tmp_path):
    from tests.runtime.test_video_io import first_plane, ten_bit_gradient

    write_av_clip(tmp_path / "ten.mkv", [ten_bit_gradient()] * 3, codec="ffv1", pix_fmt="yuv420p10le")
    r = run_cli("ten.mkv", "-o", "out.mkv", "--codec", "h265", "-p", "resize(width=64)", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fmt, luma = first_plane(tmp_path / "out.mkv")
    assert fmt == "yuv420p10le" and (luma % 4 != 0).mean() > 0.4  # not 8-bit levels scaled up
