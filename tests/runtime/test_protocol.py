"""The stage protocol: kinds picked by class, the registry, options at construction, and
the one-way dependencies of the runtime package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgerestore.registry import RegistryError
from edgerestore.runtime import FrameStage, Pipeline, Stage, catalog, sinks, sources
from edgerestore.runtime.stages import WindowStage
from edgerestore.runtime.stages import FunctionStage, as_stage
from edgerestore.runtime.workers import (
    STAGE_WORKERS,
    ArrayStageWorker,
    FrameStageWorker,
    check_stage_result,
    worker_for,
)

RUNTIME = Path(__file__).resolve().parents[2] / "edgerestore" / "runtime"


class Halve(Stage):
    name = "halve"

    def __call__(self, img):
        return img * 0.5


class Delay(FrameStage):
    """Returns each frame one frame late, and one extra copy of the last at the end."""

    name = "delay"

    def __init__(self):
        self.held = None

    def push_frame(self, frame):
        out, self.held = ([] if self.held is None else [self.held]), frame
        return out

    def flush_frames(self):
        last = self.held
        self.held = None
        if last is None:
            return []
        extra = sources.Frame(last.image.copy(), last.index + 1, last.timestamp, last.t_capture)
        return [last, extra]


class ArrayWithPushFrame(Stage):
    """An array stage that happens to have a push_frame method: its class decides, not the method."""

    name = "not_a_frame_stage"

    def push_frame(self, frame):  # pragma: no cover - must not be called
        raise AssertionError("push_frame called on an array stage")

    def __call__(self, img):
        return img


def test_the_worker_is_picked_by_the_stage_class():
    assert worker_for(Halve()) is ArrayStageWorker
    assert worker_for(as_stage(lambda img: img)) is ArrayStageWorker
    assert isinstance(as_stage(lambda img: img), FunctionStage)
    assert worker_for(Delay()) is FrameStageWorker
    assert worker_for(ArrayWithPushFrame()) is ArrayStageWorker
    assert set(STAGE_WORKERS) == {Stage, FrameStage, WindowStage}
    with pytest.raises(TypeError, match="not a Stage"):
        worker_for(object())


def test_frame_stage_decides_when_frames_come_out():
    frames = [np.full((8, 10, 3), 40 * i, np.uint8) for i in range(4)]
    out = sinks.ListSink()
    report = Pipeline([Delay(), Halve()]).run(sources.ArraySource(frames), out)
    assert report.status == "ok" and report.frames_in == 4 and report.frames_out == 5
    assert [f.index for f in out.frames] == [0, 1, 2, 3, 4]
    assert [int(f.image[0, 0, 0]) for f in out.frames] == [0, 20, 40, 60, 60]
    assert [s["frames"] for s in report.stages] == [4, 5]  # push_frame calls; array calls


def test_array_stage_with_a_push_frame_method_runs_as_an_array_stage():
    frames = [np.full((8, 10), 7, np.uint8)] * 3
    out = sinks.ListSink()
    Pipeline([ArrayWithPushFrame()]).run(sources.ArraySource(frames), out)
    assert len(out.frames) == 3


def test_frame_stage_on_one_image_pushes_and_flushes():
    img = np.full((6, 6), 0.25, np.float32)
    assert np.array_equal(Delay()(img), img)  # the flushed copy of the one frame


def test_check_stage_result_names_the_stage_and_frame():
    frame = sources.Frame(np.zeros((4, 4), np.uint8), 7, 0.0)
    assert check_stage_result(Halve(), frame, np.zeros((4, 4), np.float64)).dtype == np.float32
    with pytest.raises(Exception, match="stage 'halve' at frame 7 returned dtype uint8"):
        check_stage_result(Halve(), frame, np.zeros((4, 4), np.uint8))


def test_the_registry_refuses_a_second_stage_of_a_name():
    with pytest.raises(RegistryError, match="'nlm' is already registered"):
        catalog.register_stage("nlm", Halve)
    catalog.register_stage("halve_test", Halve)
    try:
        with pytest.raises(RegistryError, match="already registered"):
            catalog.register_stage("halve_test", Halve)
        assert isinstance(Pipeline("halve_test").stages[0], Halve)
    finally:
        catalog.STAGES.remove("halve_test")
    with pytest.raises(Exception, match="identifier"):
        catalog.register_stage("not-an-identifier", Halve)
    with pytest.raises(RegistryError, match="already registered"):
        catalog.NAMED_PIPELINES.add("default", "gray")


def test_a_user_stage_appears_in_run_list_with_every_parameter_and_whole_description(capsys):
    from edgerestore.cli import main

    @catalog.register_stage("sharpen_test")
    class SharpenTest(Stage):
        """Sharpens: adds amount times the detail that a Gaussian blur of the given
        radius removes, so edges stand out more.

        Second paragraph, not listed."""

        def __init__(self, amount: float = 0.5, radius: float = 1.0):
            self.amount, self.radius = amount, radius

    try:
        assert main(["run", "--list"]) == 0
    finally:
        catalog.STAGES.remove("sharpen_test")
    out = " ".join(capsys.readouterr().out.split())
    assert "sharpen_test(amount, radius)" in out
    assert ("Sharpens: adds amount times the detail that a Gaussian blur of the given radius "
            "removes, so edges stand out more.") in out
    assert "Second paragraph" not in out
    assert "search_size" in out.split(" nlm(sigma", 1)[1].split(")", 1)[0]  # nlm's kernel parameters
    assert "repair(lookahead, mask, fill_dropped" in out


def test_stage_options_are_passed_at_construction_unless_the_string_sets_them():
    pipe = Pipeline("model('dn-gray')|model('dn-gray', backend='ort-cuda')|nlm()|upscale(scale=1.5)",
                    stage_options={"backend": "ort-cpu"})
    model_a, model_b, nlm, up = pipe.stages
    assert (model_a.backend, model_b.backend, up.backend) == ("ort-cpu", "ort-cuda", "ort-cpu")
    assert "backend" not in nlm.kernel_args
    assert Pipeline("x.onnx", stage_options={"backend": "ort-cpu"}).stages[0].backend == "ort-cpu"


def test_is_live():
    assert sources.is_live("0") and sources.is_live("rtsp://example.invalid/s")
    assert not sources.is_live("synthetic") and not sources.is_live("in.mp4")
    assert sources.is_live(sources.SyntheticSource(8, 8, 1, realtime=True))


def test_runtime_does_not_import_repair():
    code = ("import sys, edgerestore.runtime as rt\n"
            "from edgerestore.runtime.spec import parse_pipeline\n"
            "parse_pipeline('nlm(sigma=10)|upscale(scale=2, method=\"cubic\")|gray|color')\n"
            "rt.Pipeline('denoise'); sorted(rt.STAGES); rt.NAMED_PIPELINES.describe()\n"
            "assert not any(m.startswith('edgerestore.repair') for m in sys.modules), "
            "[m for m in sys.modules if m.startswith('edgerestore.repair')]\n"
            "parse_pipeline('repair')\n"
            "assert 'edgerestore.repair.stage' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


@pytest.mark.parametrize("path", sorted(RUNTIME.rglob("*.py")), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_runtime_modules_import_no_private_name_and_nothing_above_them(path):
    for module, names in _imports(path):
        assert not module.startswith(("edgerestore.repair", "edgerestore.cli")), f"{path.name} imports {module}"
        private = [n for n in names if n.startswith("_") and n != "__future__"]
        assert not private or module == "__future__", f"{path.name} imports {private} from {module}"
    assert len(path.read_text().splitlines()) <= 400 or "why" in path.read_text()[:2000]
