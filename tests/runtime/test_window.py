"""Window stages in real Pipeline runs: windows in order, cut at clip edges, index gaps
and size changes; causal stages see only the past and their own outputs; one- and
two-frame clips; errors name the stage and frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.runtime import FrameStage, Pipeline, StageError, sinks, sources
from edgerestore.runtime.stages import WindowStage
from edgerestore.runtime.stages.window import Window
from edgerestore.runtime.window_worker import WindowStageWorker
from edgerestore.runtime.workers import worker_for
from tests.runtime.clips import make_frames


class Recorder(WindowStage):
    """Returns the mean of its window and records each window's indices and centre."""

    name = "recorder"

    def __init__(self, radius=2, lookahead=None):
        self.radius, self.lookahead = radius, lookahead
        self.windows: list[tuple[list[int], int]] = []
        self.past_outputs: list[list] = []
        self.resets = 0

    def reset(self):
        self.resets += 1

    def process_window(self, window: Window):
        self.windows.append((list(window.indices), window.indices[window.center]))
        self.past_outputs.append([o is not None for o in window.outputs])
        return np.mean(window.images, axis=0)


class DropFrame(FrameStage):
    """Passes every frame but those in ``drop`` (an index gap, as live mode leaves)."""

    name = "drop"

    def __init__(self, drop):
        self.drop = set(drop)

    def push_frame(self, frame):
        return [] if frame.index in self.drop else [frame]


def _run(stages, frames):
    out = sinks.ListSink()
    with Pipeline(stages) as pipe:
        report = pipe.run(sources.ArraySource(frames), [out])
    return out.frames, report


def test_window_stage_runs_on_its_worker():
    assert worker_for(Recorder()) is WindowStageWorker


def test_windows_are_centred_cut_at_the_clip_edges_and_frames_stay_in_order():
    frames = make_frames(7)
    rec = Recorder(radius=2)
    out, report = _run([rec], frames)
    assert [f.index for f in out] == list(range(7)) and report.frames_out == 7
    assert rec.windows == [([0, 1, 2], 0), ([0, 1, 2, 3], 1), ([0, 1, 2, 3, 4], 2), ([1, 2, 3, 4, 5], 3),
                           ([2, 3, 4, 5, 6], 4), ([3, 4, 5, 6], 5), ([4, 5, 6], 6)]
    expected = np.rint(np.mean([f.astype(np.float32) for f in frames[1:6]], axis=0)).astype(np.uint8)
    assert np.abs(out[3].image.astype(int) - expected).max() <= 1
    # Earlier outputs of the stage are handed back for the frames before the centre.
    assert rec.past_outputs[3] == [True, True, False, False, False]


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frame_clips(n):
    rec = Recorder(radius=2)
    out, _ = _run([rec], make_frames(n))
    assert [f.index for f in out] == list(range(n))
    assert rec.windows == ([([0], 0)] if n == 1 else [([0, 1], 0), ([0, 1], 1)])


def test_a_gap_in_the_indices_cuts_the_window_and_resets():
    rec = Recorder(radius=1)
    out, _ = _run([DropFrame({3}), rec], make_frames(6))
    assert [f.index for f in out] == [0, 1, 2, 4, 5]
    assert rec.windows == [([0, 1], 0), ([0, 1, 2], 1), ([1, 2], 2), ([4, 5], 4), ([4, 5], 5)]
    assert rec.resets == 1


def test_a_causal_stage_sees_only_past_frames_and_its_outputs():
    rec = Recorder(radius=2, lookahead=0)
    out, _ = _run([rec], make_frames(4))
    assert [f.index for f in out] == [0, 1, 2, 3]
    assert rec.windows == [([0], 0), ([0, 1], 1), ([0, 1, 2], 2), ([1, 2, 3], 3)]
    assert rec.past_outputs[3] == [True, True, False]


def test_mixed_sizes_from_a_folder_fall_back_to_single_frames(tmp_path):
    frames = make_frames(4)
    frames[2] = cv2.resize(frames[2], (48, 40))
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    rec = Recorder(radius=1)
    out = sinks.ListSink()
    with Pipeline([rec]) as pipe:
        pipe.run(sources.ImageFolderSource(tmp_path), [out])
    assert [f.index for f in out.frames] == [0, 1, 2, 3]
    assert [f.image.shape for f in out.frames][2] == (40, 48, 3)
    assert rec.windows == [([0, 1], 0), ([0, 1], 1), ([2], 2), ([3], 3)]


def test_one_image_is_a_window_of_one():
    rec = Recorder(radius=2)
    img = make_frames(1)[0]
    out = Pipeline([rec]).process(img)
    assert out.shape == img.shape and rec.windows == [([0], 0)]


class Failing(Recorder):
    def process_window(self, window):
        if window.indices[window.center] == 2:
            raise ValueError("boom")
        return window.image


def test_a_failure_names_the_stage_and_the_frame():
    with pytest.raises(StageError, match=r"recorder.*frame 2.*boom"):
        _run([Failing(radius=1)], make_frames(5))


def test_window_stage_example_in_the_docs_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from tests.runtime.clips import read_clip, write_clip

    doc = (Path(__file__).resolve().parents[2] / "docs" / "runtime.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, flags=re.S) if "(WindowStage)" in b]
    assert len(blocks) == 1
    write_clip(tmp_path / "in.mp4", make_frames(4, 48, 32))
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(blocks[0], "docs/runtime.md", "exec"), ns)
    assert ns["report"].frames_out == 4 and len(read_clip(tmp_path / "out.mkv")) == 4


class Bridging(Recorder):
    bridge = 2


def test_a_causal_stage_may_bridge_short_gaps():
    rec = Bridging(radius=1, lookahead=0)
    out, _ = _run([DropFrame({1, 2, 5, 6, 7}), rec], make_frames(10))
    assert [f.index for f in out] == [0, 3, 4, 8, 9]
    # 0 -> 3 skips two frames (bridged); 4 -> 8 skips three (a cut).
    assert rec.windows == [([0], 0), ([0, 3], 3), ([3, 4], 4), ([8], 8), ([8, 9], 9)]
    assert rec.resets == 1
