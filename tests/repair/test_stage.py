"""The repair stage inside the streaming runtime: Python API and `edgerestore run`."""

import json

import cv2
import numpy as np
import pytest

from edgerestore.cli import main
from edgerestore.repair import DamageSpec, damage_clip
from edgerestore.runtime import Pipeline, sinks, sources
from edgerestore.runtime.errors import StageError
from tests.repair.conftest import moving_scene


class GapSource(sources.Source):
    """Frames with given timestamps (to make gaps)."""

    def __init__(self, frames, stamps):
        super().__init__()
        self.frames, self.stamps, self.fps, self.name = frames, stamps, 25.0, "gaps"
        self.frame_count = len(frames)

    def _open(self):
        self._i = 0

    def _read(self):
        if self._i >= len(self.frames):
            return None
        f = sources.Frame(self.frames[self._i], self._i, self.stamps[self._i])
        self._i += 1
        return f


def _collect():
    got = []
    return got, sinks.CallbackSink(lambda fr: got.append((fr.index, fr.image.copy())))


def test_pipeline_repairs_every_frame_in_order_and_reports(scene):
    clip = damage_clip(scene, DamageSpec(slices_per_frame=1.5, slice_width=(2, 4)), seed=5)
    got, sink = _collect()
    with Pipeline("repair") as pipe:
        report = pipe.run(sources.ArraySource(clip.frames), sink)
    assert [i for i, _ in got] == list(range(len(scene)))
    assert report.frames_out == len(scene)
    rep = report.stages[0]["repair"]
    assert rep["frames"] == len(scene) and rep["packet_loss"]["blocks"] > 0
    for (i, img), clean, f in zip(got, clip.clean, clip.frames):
        m = clip.damage_mask(i)
        # undamaged pixels survive the float32 round trip through the pipeline exactly
        assert np.array_equal(img[~m], f[~m])
        if not m.any():
            continue
        assert np.abs(img[m].astype(int) - clean[m]).mean() < np.abs(f[m].astype(int) - clean[m]).mean()


def test_a_second_run_starts_a_new_clip(scene):
    other = moving_scene(4, seed=8)
    with Pipeline("repair") as pipe:
        pipe.run(sources.ArraySource(scene), sinks.NullSink())
        first = pipe.report.stages[0]["repair"]
        got, sink = _collect()
        report = pipe.run(sources.ArraySource(other), sink)
    assert first["frames"] == len(scene)
    assert report.stages[0]["repair"]["frames"] == len(other)       # counts are per run
    assert report.stages[0]["repair"]["frozen_frames"]["count"] == 0
    assert all(np.array_equal(img, o) for (_, img), o in zip(got, other))


def test_fill_dropped_through_the_pipeline():
    frames = moving_scene(8)
    keep = [0, 1, 2, 4, 5, 6, 7]
    got, sink = _collect()
    with Pipeline("repair(fill_dropped=True)") as pipe:
        report = pipe.run(GapSource([frames[i] for i in keep], [i / 25 for i in keep]), sink)
    assert report.frames_in == 7 and report.frames_out == 8
    assert [i for i, _ in got] == list(range(8))           # renumbered in output order
    assert report.stages[0]["repair"]["dropped_frames"]["filled"] == 1


def test_cli_run_repair_with_report_and_mask(tmp_path, scene):
    clip = damage_clip(scene, DamageSpec(slices_per_frame=1.0, dead_pixels=5), seed=9)
    src = tmp_path / "damaged.mkv"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"FFV1"), 25, (128, 96))
    for f in clip.frames:
        w.write(f)
    w.release()
    out, rj = tmp_path / "fixed.mkv", tmp_path / "r.json"
    assert main(["run", str(src), "-o", str(out), "--pipeline", "repair", "--report", str(rj), "-q"]) == 0
    r = json.loads(rj.read_text())
    assert r["frames_out"] == len(clip.frames)
    # 5 stuck positions; in a clip this short (6 frames) a position needs half the clip
    # stuck (at least 4 frames) while its neighbourhood moves, and the run survives the
    # lost slices that cover it for a frame or two: all 5 are found, nothing else.
    assert r["stages"][0]["repair"]["dead_pixels"]["positions"] == 5
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == len(clip.frames)
    mask = np.zeros((96, 128), np.uint8)
    mask[40:60, 50:80] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    assert main(["run", str(src), "-o", str(out), "--pipeline", "repair", "--mask", str(tmp_path / "mask.png"),
                 "--report", str(rj), "-q"]) == 0
    assert json.loads(rj.read_text())["stages"][0]["repair"]["masked"]["pixels"] == 600 * len(clip.frames)
    # --repair-threshold reaches the stage: a score no detection reaches repairs nothing
    assert main(["run", str(src), "-o", str(out), "--pipeline", "repair", "--repair-threshold", "1e9",
                 "--report", str(rj), "-q"]) == 0
    counts = json.loads(rj.read_text())["stages"][0]["repair"]
    assert counts["dead_pixels"]["positions"] == 0 and counts["frames_repaired"] == 0


def test_cli_refuses_bad_repair_options(tmp_path, capsys, scene):
    src = tmp_path / "in.mkv"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"FFV1"), 25, (128, 96))
    for f in scene[:2]:
        w.write(f)
    w.release()
    out = str(tmp_path / "o.mkv")
    assert main(["run", str(src), "-o", out, "--pipeline", "denoise", "--mask", str(src)]) == 1
    assert "need a repair stage" in capsys.readouterr().err
    assert main(["run", str(src), "-o", out, "--pipeline", "denoise", "--repair-threshold", "2"]) == 1
    assert "--repair-threshold need a repair stage" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(src), "-o", out, "--pipeline", "repair", "--repair-threshold", "0"])
    assert exc.value.code == 2
    bad = tmp_path / "small.png"
    cv2.imwrite(str(bad), np.zeros((10, 10), np.uint8))
    assert main(["run", str(src), "-o", out, "--pipeline", "repair", "--mask", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "10x10 but the frames are 128x96" in err
    assert main(["run", str(src), "-o", out, "--pipeline", "repair", "--mask", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", str(src), "-o", out, "--pipeline", "repair", "--fill-dropped", "--mode", "live"]) == 1
    assert "offline mode only" in capsys.readouterr().err
    assert not (tmp_path / "o.mkv").exists()   # refused before any work


def test_stage_errors_name_the_stage(scene):
    with pytest.raises(StageError, match="repair"):
        with Pipeline("repair") as pipe:
            pipe.run(sources.ArraySource([scene[0], scene[1][:50]]), sinks.NullSink())
