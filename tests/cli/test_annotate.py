"""`edgerestore annotate`: a plain ONNX model from the command line to a model every
command runs; `inspect` and `denoise --model` point a plain file to it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests import tiny_models as tm
from tests.export.test_annotate import fixed_blur, plain
from tests.cli.conftest import run_cli


def test_annotate_then_denoise_with_the_model(capsys, tmp_path):
    src = plain(tm.affine_denoiser(), tmp_path / "plain.onnx")
    code, out, err = run_cli(capsys, "annotate", src, "-o", tmp_path / "mine.onnx", "--task", "denoise",
                             "--color", "gray", "--input", "image", "--noise-map", "sigma_map")
    assert code == 0, err
    assert "denoise model 'mine', color gray, scale 1" in out and "image (image), sigma_map (noise_level)" in out
    assert "dynamic height and width" in out and "size_multiple 1 (found by the probe)" in out
    assert "noise-level range 0-75 assumed" in out  # said, not silently assumed
    img = np.full((20, 24), 100, np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    code, _, err = run_cli(capsys, "denoise", tmp_path / "in.png", "-o", tmp_path / "o.png",
                           "--model", tmp_path / "mine.onnx", "--sigma", "51", "--backend", "ort-cpu")
    assert code == 0, err
    got = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert np.all(got == 101)  # 0.5 * 100/255 + 51/255 = 101/255


def test_annotate_json_report_and_a_fixed_size_model(capsys, tmp_path):
    src = plain(fixed_blur(32, 48), tmp_path / "fixed.onnx")
    code, out, err = run_cli(capsys, "annotate", src, "-o", tmp_path / "f.onnx", "--task", "denoise",
                             "--color", "gray", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["fixed_size"] == [32, 48] and report["spec"]["tile_overlap"] == 7
    code, out, err = run_cli(capsys, "inspect", tmp_path / "f.onnx")
    assert code == 0 and "fixed_size" in out and "(32, 48)" in out


def test_a_plain_model_is_pointed_to_annotate_by_inspect_and_denoise(capsys, tmp_path):
    src = plain(tm.box_blur(), tmp_path / "plain.onnx")
    code, out, err = run_cli(capsys, "inspect", src)
    assert code == 1 and "edgerestore annotate" in err and out == ""
    cv2.imwrite(str(tmp_path / "in.png"), np.full((8, 8), 9, np.uint8))
    code, _, err = run_cli(capsys, "denoise", tmp_path / "in.png", "-o", tmp_path / "o.png", "--model", src)
    assert code == 1 and "edgerestore annotate" in err


def test_annotate_errors_are_messages_and_usage_errors_exit_2(capsys, tmp_path):
    src = plain(tm.affine_denoiser(), tmp_path / "plain.onnx")
    code, _, err = run_cli(capsys, "annotate", src, "-o", tmp_path / "o.onnx", "--task", "denoise",
                           "--color", "gray", "--input", "image")
    assert code == 1 and "have no role" in err and "--noise-map" in err and "Traceback" not in err
    assert not (tmp_path / "o.onnx").exists()
    with pytest.raises(SystemExit) as usage:
        run_cli(capsys, "annotate", src, "-o", tmp_path / "o.onnx", "--task", "denoise", "--color", "gray",
                "--noise-level-range", "0,50")
    assert usage.value.code == 2 and "give --noise-map" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        run_cli(capsys, "annotate", src, "-o", tmp_path / "o.onnx", "--task", "denoise", "--color", "yuv")
    assert usage.value.code == 2
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    code, _, err = run_cli(capsys, "annotate", tmp_path / "junk.onnx", "-o", tmp_path / "o.onnx",
                           "--task", "denoise", "--color", "gray")
    assert code == 1 and "not an ONNX model" in err
