"""`edgerestore batch --on ray` on a real local Ray (2 CPUs, started once for the module)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgerestore.batch import BatchOptions, run_batch
from edgerestore.cli import main
from tests.batch.conftest import add_corrupt, decode, make_archive, run_killing_a_worker

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    yield
    ray.shutdown()


def test_archive_on_ray_corrupt_file_and_rerun(tmp_path):
    root = tmp_path / "archive"
    make_archive(root)
    add_corrupt(root)
    out = tmp_path / "out"
    rc = main(["batch", str(root), "-o", str(out), "-p", "gray", "--on", "ray", "--tries", "2",
               "--report", str(tmp_path / "r.json")])
    assert rc == 1
    report = run_batch(str(root), out, BatchOptions(pipeline="gray", on="ray", tries=1, progress=False))
    by_name = {Path(f["input"]).name: f for f in report.files}
    assert by_name["broken.mp4"]["status"] == "failed" and "cannot open" in by_name["broken.mp4"]["error"]
    assert report.units_run == 1 and report.units_skipped == 3  # only the broken file was tried again
    assert [len(decode(out / p)) for p in ("clip0.mkv", "clip1.mkv", "sub/clip2.mkv")] == [6, 6, 6]
    assert ray.is_initialized()  # batch leaves a Ray it did not start running


def test_ray_worker_killed_mid_unit_is_retried(tmp_path):
    root = tmp_path / "archive"
    make_archive(root, n=2, frames=12, size=(160, 120))
    out = tmp_path / "out"
    report, killed = run_killing_a_worker(root, out, BatchOptions(pipeline="nlm(sigma=15)", on="ray", workers=1, progress=False),
                                          wait_s=90, join_s=180)
    assert killed is not None and report.ok, report.files
    assert all(len(decode(Path(f["output"]))) == 12 for f in report.files)
    assert str(killed) not in ",".join(w for f in report.files for w in f["workers"])
    assert not [p for p in out.rglob("*") if "partial" in p.name]
