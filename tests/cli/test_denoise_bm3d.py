"""``edgerestore denoise --method bm3d``: gray and colour, 8 and 16 bit, sigma estimated."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.cli import main
from edgerestore.metrics import psnr


def _clean(shape):
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    img = 0.25 + 0.5 * ((xx // 8 + yy // 8) % 2)
    if len(shape) == 3:
        img = np.stack([img, 1 - img, np.full_like(img, 0.5)], axis=-1)
    return img


def _psnr(img, clean, scale):
    return psnr(clean, img.astype(np.float64) / scale)


@pytest.mark.parametrize("name, shape, dtype, sigma_args", [
    ("gray8.png", (40, 48), np.uint8, ["--sigma", "25"]),
    ("bgr8.png", (40, 40, 3), np.uint8, ["--sigma", "25"]),
    ("gray16.png", (40, 40), np.uint16, []),  # sigma estimated from the image
])
def test_bm3d_method_denoises_and_keeps_format(tmp_path, name, shape, dtype, sigma_args):
    rng = np.random.default_rng(0)
    clean = _clean(shape)
    scale = 255 if dtype == np.uint8 else 65535
    noisy = np.rint(np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1) * scale).astype(dtype)
    src, out = tmp_path / name, tmp_path / ("out_" + name)
    assert cv2.imwrite(str(src), noisy)
    assert main(["denoise", str(src), "-o", str(out), "--method", "bm3d", *sigma_args]) == 0
    res = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert res.dtype == noisy.dtype and res.shape == noisy.shape
    assert _psnr(res, clean, scale) > _psnr(noisy, clean, scale) + 6


def test_bm3d_method_rejects_an_image_smaller_than_a_block(tmp_path, capsys):
    src = tmp_path / "tiny.png"
    assert cv2.imwrite(str(src), np.full((5, 5), 128, np.uint8))
    assert main(["denoise", str(src), "-o", str(tmp_path / "o.png"), "--method", "bm3d",
                 "--sigma", "10"]) == 1
    assert "8x8" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
