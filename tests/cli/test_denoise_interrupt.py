"""Ctrl-C ends `denoise` / `upscale` within a second or two, inside a BM3D kernel on a
12 MP image and inside a slow ONNX model: real subprocesses sent a real SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests import tiny_models as tm

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a subprocess")

EXIT_WITHIN_S = 2.0


def slow_model(layers: int = 200, features: int = 8):
    """A chain of 3x3 convolutions: seconds per megapixel on one thread, little memory."""
    rng = np.random.default_rng(0)
    inits, nodes, prev = [], [], "image"
    for i in range(layers):
        cin = 1 if i == 0 else features
        cout = 1 if i == layers - 1 else features
        w = (rng.normal(0, 1, (cout, cin, 3, 3)) / (3 * np.sqrt(cin))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "output" if i == layers - 1 else f"a{i}"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [out], pads=[1, 1, 1, 1]))
        prev = out
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])
    return tm._model(nodes, [tm._io("image", 1)], [out], inits)


def interrupt(argv: list[str], started: str, tmp_path) -> tuple[int, float, str]:
    """Run ``edgerestore -v ARGV``, wait for the log line ``started`` and 2 s more (well
    inside the work), send SIGINT; the exit status, the seconds it took to exit, stderr."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "edgerestore", "-v", *argv], stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    try:
        for line in proc.stderr:
            if started in line:
                break
        else:
            pytest.fail(f"never started: exit {proc.wait()}")
        time.sleep(2.0)
        assert proc.poll() is None, "finished before the interrupt: make the work larger"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("Ctrl-C was ignored for 30 s")
        return code, time.monotonic() - t0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_ends_bm3d_on_a_12_mp_image(tmp_path):
    noisy = np.clip(128 + np.random.default_rng(0).normal(0, 25, (3000, 4000)), 0, 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), noisy)
    code, seconds, err = interrupt(["denoise", "in.png", "-o", "out.png", "--method", "bm3d", "--sigma", "25"],
                                   "denoising", tmp_path)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert seconds < EXIT_WITHIN_S, f"took {seconds:.1f} s to exit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]  # nothing written


def test_ctrl_c_ends_a_slow_onnx_model(tmp_path):
    tm.save(slow_model(), tmp_path / "slow.onnx", tm.spec_for(slow_model(), name="slow"))
    cv2.imwrite(str(tmp_path / "in.png"), np.full((1000, 1000), 128, np.uint8))
    code, seconds, err = interrupt(["denoise", "in.png", "-o", "out.png", "--model", "./slow.onnx",
                                    "--backend", "ort-cpu", "--threads", "1"], "denoising", tmp_path)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert seconds < EXIT_WITHIN_S, f"took {seconds:.1f} s to exit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "slow.onnx"]


def test_ctrl_c_ends_upscale_inside_a_slow_model(tmp_path):
    model = slow_model(layers=150)
    node = helper.make_node("Resize", ["output", "", "scales"], ["up"], mode="nearest")
    model.graph.node.append(node)
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("up", TensorProto.FLOAT, ["N", 1, "H2", "W2"]))
    tm.save(model, tmp_path / "slow_sr.onnx", tm.spec_for(model, name="slow-sr", task="super_resolution",
                                                           scale=2, color="luma"))
    cv2.imwrite(str(tmp_path / "in.png"), np.full((1000, 1000), 128, np.uint8))
    code, seconds, err = interrupt(["upscale", "in.png", "-o", "out.png", "--model", "./slow_sr.onnx",
                                    "--backend", "ort-cpu", "--threads", "1"], "upscaling", tmp_path)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert seconds < EXIT_WITHIN_S, f"took {seconds:.1f} s to exit"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "slow_sr.onnx"]
