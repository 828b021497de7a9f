"""``edgerestore run`` with several streams: inputs + ``-o OUTDIR``, ``--streams FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgerestore.cli import main
from tests.runtime.clips import make_frames, read_clip, truncate, write_av_clip

PIPE = "model(name='dn-gray', sigma=15, backend='ort-cpu')"


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    """4 tiny clips written with PyAV (FFV1): 8, 8, 3 (ends early) and 8 frames."""
    return [write_av_clip(tmp_path / f"cam{k}.mkv", make_frames(n, seed=k)) for k, n in enumerate([8, 8, 3, 8])]


def test_several_inputs_write_one_output_each_and_a_report_per_stream(clips, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", *map(str, clips), "-o", str(out) + "/", "--pipeline", PIPE, "--report",
               str(tmp_path / "r.json")])
    assert rc == 0
    for k, n in enumerate([8, 8, 3, 8]):
        assert len(read_clip(out / f"cam{k}_restored.mkv")) == n
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "ok" and len(rep["streams"]) == 4
    assert [s["frames_out"] for s in rep["streams"]] == [8, 8, 3, 8]
    assert rep["totals"]["frames_out"] == 27 and rep["totals"]["fps"] > 0
    assert all(s["latency_ms"]["p95"] is not None for s in rep["streams"])
    err = capsys.readouterr().err
    assert err.count("stream ") >= 4 and "fps in all" in err


def test_a_failing_stream_exits_1_and_the_others_are_written(clips, tmp_path, capsys):
    long = write_av_clip(tmp_path / "long.mkv", make_frames(30))
    cut = truncate(long, tmp_path / "cut.mkv", 0.5)
    out = tmp_path / "out"
    rc = main(["run", str(clips[0]), str(cut), str(clips[1]), "-o", str(out), "--pipeline", PIPE])
    assert rc == 1
    assert "1 of 3 streams failed" in capsys.readouterr().err
    assert len(read_clip(out / "cam0_restored.mkv")) == 8 and len(read_clip(out / "cam1_restored.mkv")) == 8
    assert 0 < len(read_clip(out / "cut_restored.mkv")) < 30


def test_streams_file_gives_per_stream_outputs_and_options(clips, tmp_path):
    toml = tmp_path / "streams.toml"
    toml.write_text(f"""
pipeline = "{PIPE.replace('"', "'")}"
output_dir = "restored/"
batch_wait_ms = 10

[[stream]]
source = "cam0.mkv"
output = "front.mkv"

[[stream]]
source = "cam1.mkv"
max_frames = 5

[[stream]]
source = "{clips[3]}"
""")
    rc = main(["run", "--streams", str(toml), "--report", str(tmp_path / "r.json")])
    assert rc == 0
    assert len(read_clip(tmp_path / "front.mkv")) == 8
    assert len(read_clip(tmp_path / "restored" / "cam1_restored.mkv")) == 5
    assert len(read_clip(tmp_path / "restored" / "cam3_restored.mkv")) == 8
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [s["frames_in"] for s in rep["streams"]] == [8, 5, 8]


@pytest.mark.parametrize("text, message", [
    ("[[stream]]\nsource = 'a.mp4'\nouput = 'x.mkv'\n", "unknown key(s) ouput"),
    ("pipeline = 'default'\n", "lists no stream"),
    ("[[stream]]\nsource = 'a.mp4'\n[[stream]\n", "not valid TOML"),
    ("mode = 'fast'\n[[stream]]\nsource = 'a.mp4'\n", "mode must be"),
])
def test_a_bad_streams_file_is_explained(tmp_path, capsys, text, message):
    toml = tmp_path / "s.toml"
    toml.write_text(text)
    assert main(["run", "--streams", str(toml), "-o", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    ([], "need an output folder"),
    (["-o", "OUT", "--show"], "--show shows one stream"),
    (["-o", "OUT", "--batch-wait-ms", "-1"], "must be a finite number >= 0"),
])
def test_usage_errors_exit_2_before_any_work(clips, tmp_path, capsys, extra, message):
    extra = [str(tmp_path / "o") if e == "OUT" else e for e in extra]
    with pytest.raises(SystemExit) as e:  # argparse's own errors
        rc = main(["run", str(clips[0]), str(clips[1]), *extra])
        raise SystemExit(rc)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_batch_wait_with_one_stream_is_a_usage_error(clips, capsys):
    assert main(["run", str(clips[0]), "-o", "-", "--batch-wait-ms", "5"]) == 2
    assert "several streams" in capsys.readouterr().err


def test_one_input_still_runs_as_before(clips, tmp_path):
    out = tmp_path / "one.mkv"
    assert main(["run", str(clips[0]), "-o", str(out), "--pipeline", "none", "--lossless"]) == 0
    got = read_clip(out)
    assert len(got) == 8 and np.array_equal(got[0], make_frames(8, seed=0)[0])


def test_ctrl_c_stops_every_stream_with_playable_outputs_and_a_report(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.cli.test_run import _env, _sigint_default

    proc = subprocess.Popen(
        [sys.executable, "-m", "edgerestore", "run", "synthetic:64x48:2000", "synthetic:48x32:2000", "-o", "out/",
         "-p", "none", "--source-fps", "50", "--report", "r.json"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_default)
    deadline = time.time() + 30
    while len(list((tmp_path / "out").glob(".*.partial-*.mkv"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["status"] == "interrupted"
    for k, r in enumerate(rep["streams"]):
        frames = read_clip(tmp_path / "out" / f"stream{k}_restored.mkv")
        assert 10 < len(frames) < 2000 and r["frames_out"] == len(frames) and r["status"] == "interrupted"
    assert not list((tmp_path / "out").glob(".*partial-*"))
