"""``edgerestore upscale``: shipped models per scale, --model, bit depths, alpha, refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests import tiny_models as tm
from tests.cli.conftest import run_cli


@pytest.fixture
def small_bgr(tmp_path, rng):
    img = cv2.GaussianBlur((rng.random((20, 28, 3)) * 255).astype(np.uint8), (0, 0), 1.0)
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), img)
    return path, img


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_colour_8bit_is_upscaled_by_exactly_the_scale_with_the_shipped_model(capsys, tmp_path, small_bgr, scale):
    src, img = small_bgr
    out = tmp_path / "big.png"
    code, stdout, err = run_cli(capsys, "upscale", src, "-o", out, "--scale", scale)
    assert code == 0, err
    assert f"sr-x{scale}" in stdout
    big = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert big.dtype == np.uint8 and big.shape == (20 * scale, 28 * scale, 3)
    # it is an upscaling of the input: shrinking it back lands close to the input
    back = cv2.resize(big, (28, 20), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(back - img).mean() < 6.0
    assert not list(tmp_path.glob(".big.png.*"))  # no temp file left behind


def test_16bit_gray_stays_16bit_gray_and_alpha_is_kept(capsys, tmp_path, rng):
    g16 = (cv2.GaussianBlur(rng.random((16, 18)), (0, 0), 1.0) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), g16)
    code, _, err = run_cli(capsys, "upscale", tmp_path / "g.png", "-o", tmp_path / "g2.png", "--scale", 2)
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "g2.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (32, 36)
    assert out.max() > 255  # really 16-bit values, not 8-bit ones in a 16-bit file

    bgra = np.dstack([(rng.random((10, 12, 3)) * 255).astype(np.uint8), np.full((10, 12), 200, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    code, _, err = run_cli(capsys, "upscale", tmp_path / "a.png", "-o", tmp_path / "a3.png", "--scale", 3)
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "a3.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (30, 36, 4) and (out[..., 3] == 200).all()


def test_own_model_is_used_and_its_scale_checked(capsys, tmp_path, small_bgr):
    src, img = small_bgr
    model = tm.nearest_upscaler(scale=2)
    path = tm.save(model, tmp_path / "nn2.onnx",
                   tm.spec_for(model, task="super_resolution", scale=2, color="luma", name="nn2"))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    code, stdout, err = run_cli(capsys, "upscale", tmp_path / "g.png", "-o", tmp_path / "g2.png", "--model", path)
    assert code == 0, err
    assert "model nn2 (x2)" in stdout
    out = cv2.imread(str(tmp_path / "g2.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(out, np.repeat(np.repeat(gray, 2, axis=0), 2, axis=1))  # nearest, exactly
    code, _, err = run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--model", path, "--scale", 3)
    assert code == 1 and "x2 model but x3 was asked for" in err
    assert not (tmp_path / "x.png").exists()


def test_a_scale_without_a_model_says_which_scales_exist(capsys, tmp_path, small_bgr):
    src, _ = small_bgr
    code, _, err = run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--scale", 5)
    assert code == 1
    assert "no super-resolution model for x5" in err
    assert "x2 (sr-x2), x3 (sr-x3), x4 (sr-x4)" in err
    assert not (tmp_path / "x.png").exists()


def test_an_output_above_the_size_limit_is_refused_before_any_work(capsys, tmp_path, small_bgr):
    src, _ = small_bgr  # 28 x 20 -> x4 = 112 x 80 = 0.00896 MP
    code, _, err = run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--scale", 4, "--max-output-mp", 0.005)
    assert code == 1
    assert "112x80" in err and "above the limit of 0.005 MP" in err and "--max-output-mp" in err
    assert not (tmp_path / "x.png").exists()
    code, _, err = run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--scale", 4, "--max-output-mp", 0.01)
    assert code == 0, err


def test_a_denoiser_passed_as_model_is_refused(capsys, tmp_path, small_bgr):
    src, _ = small_bgr
    dn = tm.save(tm.affine_denoiser(), tmp_path / "dn.onnx")
    code, _, err = run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--model", dn)
    assert code == 1
    assert "a denoise model (scale 1), not a super-resolution model" in err
    assert not (tmp_path / "x.png").exists()


def test_no_scale_and_no_model_is_a_usage_error_exit_2(capsys, tmp_path, small_bgr):
    src, _ = small_bgr
    for extra in ([], ["--scale", "1"]):
        with pytest.raises(SystemExit) as usage:
            run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", *extra)
        err = capsys.readouterr().err
        assert usage.value.code == 2 and "usage: edgerestore upscale" in err
    assert "--scale must be an integer >= 2" in err
    with pytest.raises(SystemExit):
        run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png")
    err = capsys.readouterr().err
    assert "give --scale" in err and "x3 (sr-x3)" in err and not (tmp_path / "x.png").exists()


def test_self_ensemble_is_the_mean_of_the_eight_turned_upscalings(capsys, tmp_path, small_bgr):
    from edgerestore.restorer import ModelRestorer

    src, img = small_bgr
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    x = gray.astype(np.float32) / 255
    acc = np.zeros((40, 56), np.float64)
    with ModelRestorer.open("sr-x2", backend="ort-cpu", threads=1) as single:
        for k in range(4):
            for flip in (False, True):
                t = np.rot90(x, k)
                t = t[:, ::-1] if flip else t
                y = single(np.ascontiguousarray(t))
                acc += np.rot90(y[:, ::-1] if flip else y, -k)
    out = tmp_path / "big.png"
    code, stdout, err = run_cli(capsys, "upscale", tmp_path / "g.png", "-o", out, "--scale", 2,
                                "--self-ensemble", "--backend", "ort-cpu")
    assert code == 0, err
    assert "(self-ensemble x8)" in stdout
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float64)
    assert np.abs(got - np.clip(np.rint(acc / 8 * 255), 0, 255)).max() <= 1

    # --self-ensemble 2: the image and its half turn
    with ModelRestorer.open("sr-x2", backend="ort-cpu", threads=1) as single:
        pair = single(x).astype(np.float64) + np.rot90(single(np.ascontiguousarray(np.rot90(x, 2))), -2)
    code, stdout, err = run_cli(capsys, "upscale", tmp_path / "g.png", "-o", out, "--scale", 2,
                                "--self-ensemble", 2, "--backend", "ort-cpu")
    assert code == 0 and "(self-ensemble x2)" in stdout, err
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float64)
    assert np.abs(got - np.clip(np.rint(pair / 2 * 255), 0, 255)).max() <= 1


def test_self_ensemble_size_is_checked_on_the_command_line(capsys, tmp_path, small_bgr):
    src, _ = small_bgr
    with pytest.raises(SystemExit) as e:
        run_cli(capsys, "upscale", src, "-o", tmp_path / "x.png", "--scale", 2, "--self-ensemble", 3)
    assert e.value.code == 2 and "expected 1 (off), 2, 4 or 8 copies, got '3'" in capsys.readouterr().err


def test_upscale_array_keeps_dtype_and_resizes_alpha(tmp_path, rng):
    from edgerestore.errors import InputError
    from edgerestore.upscale import open_upscaler, upscale_array

    model = tm.nearest_upscaler(scale=2)
    path = tm.save(model, tmp_path / "nn2.onnx",
                   tm.spec_for(model, task="super_resolution", scale=2, color="luma", name="nn2"))
    gray = rng.integers(0, 65535, (6, 7), endpoint=True).astype(np.uint16)
    alpha = np.full((6, 7), 40000, np.uint16)
    with open_upscaler(str(path), backend="ort-cpu", threads=1) as r:
        out = upscale_array(r, np.dstack([gray, alpha]))
        assert out.dtype == np.uint16 and out.shape == (12, 14, 2)
        np.testing.assert_array_equal(out[..., 0], np.repeat(np.repeat(gray, 2, axis=0), 2, axis=1))
        assert (out[..., 1] == 40000).all()
        with pytest.raises(InputError, match="above the limit"):
            upscale_array(r, gray, max_output_mp=1e-5)
