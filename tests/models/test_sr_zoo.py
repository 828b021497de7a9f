"""The shipped super-resolution models: metadata, and they beat bicubic on Set5 crops
run by ONNX Runtime alone (no torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgerestore.metrics import psnr
from edgerestore.resize import imresize

ZOO = Path(__file__).resolve().parents[2] / "edgerestore" / "zoo"
# Minimum luma PSNR gain over MATLAB-style bicubic on the crops below (dB). The shipped
# models measure about twice this (see each model card); a model that only
# interpolates (gain ~0) or a broken export fails.
MARGIN = {2: 0.5, 3: 0.3, 4: 0.2}


def _luma_crop(shared_data, name: str, scale: int) -> np.ndarray:
    import cv2

    img = cv2.imread(str(shared_data / "testsets" / "Set5" / name))
    y = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[..., 0].astype(np.float64) / 255.0
    return y[:144, :144]  # a multiple of 2, 3 and 4


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_model_metadata(scale):
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import DEFAULTS, default_model

    path = ZOO / f"sr-x{scale}.onnx"
    assert path.is_file(), f"shipped model {path} missing"
    assert (ZOO / f"sr-x{scale}.md").is_file(), "model card missing"
    spec = read_spec(path)
    assert (spec.task, spec.scale, spec.color, spec.name) == ("super_resolution", scale, "luma", f"sr-x{scale}")
    assert DEFAULTS[("super_resolution", scale)] == spec.name and default_model("super_resolution", scale) == path
    assert spec.provenance["parity"]["atol"] <= 1e-4 and spec.provenance["opset"] == 17
    assert spec.tile_overlap >= spec.provenance["config"]["depth"] + 3  # receptive radius in LR pixels


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_model_beats_bicubic_on_set5_crops_with_onnxruntime_only(shared_data, scale):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(ZOO / f"sr-x{scale}.onnx"), providers=["CPUExecutionProvider"])
    gains = []
    for name in ("butterfly_GT.bmp", "bird_GT.bmp", "woman_GT.bmp"):
        hr = _luma_crop(shared_data, name, scale)
        lr = np.round(np.clip(imresize(hr, 1 / scale), 0, 1) * 255) / 255
        out = sess.run(None, {"image": lr.astype(np.float32)[None, None]})[0][0, 0]
        assert out.shape == hr.shape and out.min() >= 0 and out.max() <= 1

        def shaved_psnr(x):
            return psnr(hr[scale:-scale, scale:-scale], x[scale:-scale, scale:-scale])

        gains.append(shaved_psnr(out) - shaved_psnr(imresize(lr, scale)))
    assert np.mean(gains) > MARGIN[scale], gains
    assert min(gains) > 0, gains  # better than bicubic on every image


def test_upscale_command_runs_without_torch(tmp_path, shared_data):
    # a fresh interpreter in which importing torch fails
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked for this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from edgerestore.cli import main\n"
        f"rc = main(['upscale', {str(shared_data / 'testsets' / 'Set5' / 'bird_GT.bmp')!r}, '-o', "
        f"{str(tmp_path / 'big.png')!r}, '--scale', '2'])\n"
        "assert 'torch' not in sys.modules\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import cv2

    assert cv2.imread(str(tmp_path / "big.png")).shape == (576, 576, 3)  # bird is 288 x 288


@pytest.mark.parametrize("name", ["sr-x2", "dn-gray"])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_file_or_folder_named_like_a_zoo_model_does_not_shadow_it(tmp_path, monkeypatch, name, kind):
    from edgerestore.zoo import resolve

    monkeypatch.chdir(tmp_path)
    if kind == "file":
        (tmp_path / name).write_bytes(b"not a model")
    else:
        (tmp_path / name).mkdir()
    assert resolve(name) == ZOO / f"{name}.onnx"
    assert resolve(f"./{name}") == Path(f"./{name}")  # a path when it looks like one


def test_a_bare_name_that_only_exists_as_a_file_says_how_to_load_it(tmp_path, monkeypatch):
    from edgerestore.errors import ModelError
    from edgerestore.zoo import resolve

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"\./mymodel"):
        resolve("mymodel")
    with pytest.raises(ModelError, match="not found"):
        resolve("missing.onnx")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shipped_int8_model_stays_within_a_tenth_of_a_db_of_fp32_on_set5_crops(shared_data, scale):
    import onnxruntime as ort

    from edgerestore.model_spec import read_spec

    path = ZOO / f"sr-x{scale}-int8.onnx"
    assert (ZOO / f"sr-x{scale}-int8.md").is_file(), "model card missing"
    spec = read_spec(path)
    assert (spec.precision, spec.scale, spec.name) == ("int8", scale, f"sr-x{scale}-int8")
    assert spec.provenance["calibration"]["settings"]["image_path"] == "float"
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                for p in (ZOO / f"sr-x{scale}.onnx", path)]
    drops = []
    for name in ("butterfly_GT.bmp", "bird_GT.bmp", "woman_GT.bmp"):
        hr = _luma_crop(shared_data, name, scale)
        lr = (np.round(np.clip(imresize(hr, 1 / scale), 0, 1) * 255) / 255).astype(np.float32)[None, None]
        fp32, int8 = (s.run(None, {"image": lr})[0][0, 0] for s in sessions)
        drops.append(psnr(hr[scale:-scale, scale:-scale], fp32[scale:-scale, scale:-scale])
                     - psnr(hr[scale:-scale, scale:-scale], int8[scale:-scale, scale:-scale]))
    assert max(drops) < 0.1, drops       # the card's Set5 worst is 0.084 (bird, x2, whole image)
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops   # really quantized, not a copy of FP32
