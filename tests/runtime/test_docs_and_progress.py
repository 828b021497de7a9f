"""The copyable examples in docs/runtime.md run as written; the progress bar draws."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from edgerestore.runtime import Pipeline, sinks, sources
from edgerestore.runtime.report import Progress

from .clips import make_frames, read_clip, write_clip

DOC = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_api_example_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = [b for b in _python_blocks() if "pipe.run(" in b]
    assert len(blocks) == 1
    write_clip(tmp_path / "in.mp4", make_frames(3, 48, 32))
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/runtime.md", "exec"), {})
    frames = read_clip(tmp_path / "out.mkv")
    assert len(frames) == 3 and frames[0].shape == (64, 96, 3)
    assert json.loads((tmp_path / "report.json").read_text())["frames_out"] == 3
    assert "ok: 3 frames" in capsys.readouterr().out


def test_stage_example_runs_as_written():
    from edgerestore.runtime import STAGES

    blocks = [b for b in _python_blocks() if "register_stage" in b]
    assert len(blocks) == 1
    ns: dict = {}
    exec(compile(blocks[0], "docs/runtime.md", "exec"), ns)
    try:
        src = sources.SyntheticSource(40, 30, 2)
        img = next(iter(src)).image
        out = Pipeline("sharpen(amount=1.0)").process(img)
        # sharpening raises local contrast
        assert np.abs(np.diff(out.astype(float), axis=1)).mean() > np.abs(np.diff(img.astype(float), axis=1)).mean()
    finally:
        STAGES.remove("sharpen")


def test_frame_stage_example_runs_as_written():
    blocks = [b for b in _python_blocks() if "(FrameStage)" in b]
    assert len(blocks) == 1
    ns: dict = {}
    exec(compile(blocks[0], "docs/runtime.md", "exec"), ns)
    frames = [np.full((6, 8, 3), 10 * i, np.uint8) for i in range(3)]
    out = sinks.ListSink()
    report = Pipeline([ns["Delay"]()]).run(sources.ArraySource(frames), out)
    assert report.frames_out == 3 and [f.index for f in out.frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in out.frames] == [0, 10, 20]


def test_progress_bar_shows_done_total_fps_eta():
    buf = io.StringIO()
    bar = Progress(10, stream=buf, enabled=True)
    bar.update(4, force=True)
    text = buf.getvalue()
    assert "4/10 frames" in text and "fps" in text and "ETA" in text
    bar.close()
    assert buf.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()
    Progress(10, stream=quiet).update(3, force=True)  # not a terminal: nothing drawn
    assert quiet.getvalue() == ""


def test_the_default_run_output_is_named_in_the_readme_and_kept_out_of_git(tmp_path):
    import shutil
    import subprocess

    import pytest

    from edgerestore.cli.run import SAMPLE_CLIP

    repo = DOC.parents[1]
    name = f"{SAMPLE_CLIP.stem}_restored.mkv"  # what `edgerestore run` writes without -o
    readme = (repo / "README.md").read_text()
    assert name in readme and "current folder" in readme
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    for candidate in (name, "clip_restored.mkv"):
        r = subprocess.run(["git", "check-ignore", "-q", candidate], cwd=repo)
        assert r.returncode == 0, f"{candidate} is not ignored by .gitignore"
    r = subprocess.run(["git", "check-ignore", "-q", "tests/data/x_restored.mkv"], cwd=repo)
    assert r.returncode == 1  # only the checkout's top folder, where a default run writes
