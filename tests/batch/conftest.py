"""Real clips for the batch tests (PyAV, FFV1 so that outputs compare exactly)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.runtime.clips import make_frames, write_av_clip


def decode(path: Path) -> list[tuple[np.ndarray, int]]:
    """(BGR image, pts) of every frame of ``path``."""
    with av.open(str(path)) as c:
        return [(f.to_ndarray(format="bgr24"), f.pts) for f in c.decode(video=0)]


def make_archive(root: Path, n: int = 3, frames: int = 6, size=(64, 48)) -> list[Path]:
    """``n`` clips in ``root``, the last in a subfolder."""
    paths = []
    for i in range(n):
        folder = root / "sub" if i == n - 1 else root
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(write_av_clip(folder / f"clip{i}.mkv", make_frames(frames, *size, seed=i)))
    return paths


def add_corrupt(root: Path) -> Path:
    """A file named like a video that is not one."""
    bad = root / "broken.mp4"
    bad.write_bytes(b"\x00 not a video " * 200)
    return bad


@pytest.fixture
def archive(tmp_path) -> Path:
    root = tmp_path / "archive"
    make_archive(root)
    return root


def run_killing_a_worker(root: Path, out: Path, options, *, wait_s: float, join_s: float):
    """Run ``run_batch(root, out, options)`` in a thread and SIGKILL the worker process of
    the first unit it claims (its ``host:pid`` in the manifest's ``running`` folder) as
    soon as the claim appears. Returns ``(report, killed pid or None)``."""
    import os
    import signal
    import threading
    import time

    from edgerestore.batch import run_batch
    from edgerestore.batch.manifest import manifest_dir

    running = manifest_dir(out) / "running"
    result = {}
    job = threading.Thread(target=lambda: result.setdefault("r", run_batch(str(root), out, options)))
    job.start()
    killed = None
    deadline = time.monotonic() + wait_s
    while killed is None and time.monotonic() < deadline:
        claims = list(running.glob("[!.]*")) if running.is_dir() else []
        if claims:
            killed = int(claims[0].read_text().split(":")[1])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.005)
    job.join(join_s)
    return result["r"], killed
