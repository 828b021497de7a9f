"""`edgerestore batch` on the local process pool: outputs, report, manifest, faults."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgerestore.batch import BatchOptions, run_batch
from edgerestore.batch.manifest import manifest_dir
from edgerestore.cli import main
from edgerestore.runtime import Pipeline, sinks, sources
from tests.batch.conftest import add_corrupt, decode, make_archive, run_killing_a_worker
from tests.runtime.clips import make_frames, write_av_clip


def expected_output(video: Path, pipeline: str, out: Path) -> list:
    """The same video through one ordinary run (FFV1)."""
    Pipeline(pipeline).run(sources.VideoFileSource(video), sinks.VideoFileSink(out, lossless=True), progress=False)
    return decode(out)


def test_archive_restored_mirrored_with_report_and_rerun_skips(archive, tmp_path, capsys):
    out = tmp_path / "out"
    report_path = tmp_path / "job.json"
    rc = main(["batch", str(archive), "-o", str(out), "--pipeline", "gray", "--lossless", "--workers", "2",
               "--report", str(report_path)])
    assert rc == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mkv")
                  if ".edgerestore-batch" not in p.parts) == ["clip0.mkv", "clip1.mkv", "sub/clip2.mkv"]
    want = expected_output(archive / "clip1.mkv", "gray", tmp_path / "ref.mkv")
    got = decode(out / "clip1.mkv")
    assert len(got) == len(want) == 6
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(got, want))
    report = json.loads(report_path.read_text())
    assert report["ok"] and [f["status"] for f in report["files"]] == ["done"] * 3
    assert all(f["frames"] == 6 and f["seconds"] > 0 and f["workers"][0].split(":")[1].isdigit()
               for f in report["files"])
    err = capsys.readouterr().err
    assert "3/3 units, 18 frames" in err and "ETA" in err

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mkv")}
    again = run_batch(str(archive), out, BatchOptions(pipeline="gray", lossless=True, workers=2, progress=False))
    assert again.units_run == 0 and again.units_skipped == 3 and again.ok
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mkv")} == mtimes

    # A new file: only it runs. A changed pipeline: the units are redone.
    write_av_clip(archive / "new.mkv", make_frames(4, 64, 48, seed=9))
    added = run_batch(str(archive), out, BatchOptions(pipeline="gray", lossless=True, progress=False))
    assert (added.units_run, added.units_skipped) == (1, 3)
    changed = run_batch(str(archive), out, BatchOptions(pipeline="color", lossless=True, progress=False))
    assert (changed.units_run, changed.units_skipped) == (4, 0)
    assert decode(out / "clip1.mkv")[0][0].shape == (48, 64, 3)


def test_corrupt_file_reported_after_bounded_tries_others_done(archive, tmp_path, capsys):
    bad = add_corrupt(archive)
    out = tmp_path / "out"
    rc = main(["batch", str(archive), "-o", str(out), "-p", "gray", "--tries", "2", "--report",
               str(tmp_path / "r.json")])
    assert rc == 1
    files = {Path(f["input"]).name: f for f in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert files["broken.mp4"]["status"] == "failed" and files["broken.mp4"]["tries"] == 2
    assert "cannot open" in files["broken.mp4"]["error"]
    assert [files[f"clip{i}.mkv"]["status"] for i in range(3)] == ["done"] * 3
    assert not (out / "broken.mkv").exists()
    assert f"failed: {bad}" in capsys.readouterr().err


def test_worker_killed_mid_unit_is_retried(tmp_path):
    root = tmp_path / "archive"
    make_archive(root, n=2, frames=12, size=(160, 120))
    out = tmp_path / "out"
    report, killed = run_killing_a_worker(root, out, BatchOptions(pipeline="nlm(sigma=15)", workers=1, progress=False),
                                          wait_s=60, join_s=120)
    assert killed is not None and report.ok, report.files
    first = report.files[0]
    assert first["tries"] == 2 and str(killed) not in ",".join(first["workers"])
    assert len(decode(Path(first["output"]))) == 12
    assert not [p for p in out.rglob("*") if "partial" in p.name]  # the killed worker's temporaries


def test_killed_job_resumes(tmp_path):
    root = tmp_path / "archive"
    make_archive(root, n=4, frames=8, size=(160, 120))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "edgerestore", "-q", "batch", str(root), "-o", str(out), "-p", "nlm(sigma=15)",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env)
    db = manifest_dir(out) / "manifest.sqlite"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    done = con.execute("SELECT count(*) FROM units WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:  # created, the tables not yet
                pass
            if done:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= done < 4
    report = run_batch(str(root), out, BatchOptions(pipeline="nlm(sigma=15)", workers=1, progress=False))
    assert report.ok and report.units_skipped >= done and report.units_run == 4 - report.units_skipped
    assert not list(out.rglob(".*.partial.mkv"))


def test_no_input_is_an_explained_error(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "empty*"), "-o", str(tmp_path / "o")]) == 1
    assert "no video found" in capsys.readouterr().err


def test_ray_imported_only_for_on_ray(archive, tmp_path, monkeypatch):
    code = ("import sys; from edgerestore.cli import main; "
            f"rc = main(['-q', 'batch', {str(archive)!r}, '-o', {str(tmp_path / 'o')!r}, '-p', 'gray']); "
            "assert rc == 0, rc; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["batch", str(archive), "-o", str(tmp_path / "r"), "-p", "gray", "--on", "ray"]) == 1
