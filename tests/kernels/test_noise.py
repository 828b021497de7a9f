"""estimate_sigma: accuracy with known sigma, invariances, bad input; estimate_video_sigma."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.errors import InputError
from edgerestore.kernels import estimate_sigma
from edgerestore.kernels.noise import estimate_video_sigma

from ..runtime.clips import read_clip, write_clip


def _set12(shared_data):
    import cv2

    files = sorted((shared_data / "testsets" / "Set12").glob("*.png"))
    assert len(files) == 12, "Set12 is incomplete in the shared data"
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float64) for p in files]


def _noisy8(clean255, sigma, seed):
    rng = np.random.default_rng(seed)
    return (np.clip(np.rint(clean255 + rng.normal(0, sigma, clean255.shape)), 0, 255) / 255).astype(np.float32)


@pytest.mark.parametrize("sigma, max_bias, max_err",
                         [(5, 1.0, 2.0), (15, 0.7, 1.2), (25, 0.7, 1.3), (50, 0.8, 2.0)])
def test_accuracy_on_set12_with_known_sigma(shared_data, sigma, max_bias, max_err):
    # 8-bit clipped noise, as a camera delivers it. Measured: mean error +0.64 / +0.40 /
    # +0.37 / +0.43, worst image 1.61 / 0.75 / 0.85 / 1.42 at sigma 5 / 15 / 25 / 50.
    est = np.array([estimate_sigma(_noisy8(c, sigma, 1000 + i)) for i, c in enumerate(_set12(shared_data))])
    assert abs(est.mean() - sigma) <= max_bias, est
    assert np.abs(est - sigma).max() <= max_err, est


def test_at_least_as_accurate_as_scikit_image_on_set12(shared_data):
    skr = pytest.importorskip("skimage.restoration")
    pytest.importorskip("pywt")
    errs_ours, errs_sk = [], []
    for sigma in (5, 15, 25, 50):
        for i, c in enumerate(_set12(shared_data)):
            z = _noisy8(c, sigma, 2000 + i)
            errs_ours.append(abs(estimate_sigma(z) - sigma))
            errs_sk.append(abs(255 * skr.estimate_sigma(z.astype(np.float64)) - sigma))
    assert np.mean(errs_ours) <= np.mean(errs_sk), (np.mean(errs_ours), np.mean(errs_sk))


@pytest.mark.parametrize("sigma", [2.0, 10.0, 30.0])
def test_pure_noise_on_flat_gray(sigma):
    rng = np.random.default_rng(int(sigma))
    x = (0.5 + rng.normal(0, sigma / 255, (192, 192))).astype(np.float32)
    assert estimate_sigma(np.clip(x, 0, 1)) == pytest.approx(sigma, rel=0.05)


def test_colour_uses_all_channels():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:128, 0:128] / 128.0
    clean = np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * yy, 0.4 + 0.3 * xx * yy], axis=-1)
    x = np.clip(clean + rng.normal(0, 12 / 255, clean.shape), 0, 1).astype(np.float32)
    assert estimate_sigma(x) == pytest.approx(12.0, rel=0.06)


@pytest.mark.parametrize("img", [
    np.full((20, 20), 0.4, np.float32),
    np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1)),  # a ramp: the mask is blind to it
])
def test_noise_free_images_give_zero(img):
    assert estimate_sigma(img) == pytest.approx(0.0, abs=1e-3)


def test_float64_and_float32_agree():
    rng = np.random.default_rng(4)
    x = np.clip(0.5 + rng.normal(0, 0.05, (64, 64)), 0, 1)
    assert estimate_sigma(x) == pytest.approx(estimate_sigma(x.astype(np.float32)), rel=1e-4)


@pytest.mark.parametrize("img, match", [
    (np.zeros((2, 10), np.float32), "at least 3x3"),
    (np.zeros((0, 0), np.float32), "at least 3x3"),
    (np.full((9, 9), np.nan, np.float32), "NaN or Inf"),
    (np.zeros((9, 9), np.uint16), r"integer dtype uint16.*65535"),
    (np.full((9, 9), 1000.0), r"not the \[0, 1\] scale.*divide 16-bit data by 65535"),
    (np.zeros((9, 9, 4), np.float32), "H x W x 3"),
])
def test_bad_input_is_a_clear_error(img, match):
    with pytest.raises(InputError, match=match):
        estimate_sigma(img)


def test_video_sigma_agrees_on_white_noise_and_sees_codec_noise(tmp_path, rng):
    base = np.kron(rng.uniform(0.2, 0.8, (12, 16, 3)), np.ones((16, 16, 1))).astype(np.float32)
    white = np.clip(base + rng.normal(0, 15 / 255, base.shape), 0, 1).astype(np.float32)
    assert estimate_video_sigma(white) == pytest.approx(15, rel=0.15)
    # the same noise through a real lossy encoder (MJPG): the pixel-scale estimate drops,
    # the video estimate does not drop below it
    frames = [np.clip(np.round(white * 255), 0, 255).astype(np.uint8)] * 3
    coded = read_clip(write_clip(tmp_path / "noisy.avi", frames))[0].astype(np.float32) / 255
    assert estimate_video_sigma(coded) >= estimate_sigma(coded)
    assert estimate_video_sigma(coded) > 5
