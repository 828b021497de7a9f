"""``edgerestore denoise``: formats, bit depths, channels, atomic writes, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgerestore.cli import denoise as denoise_cli
from edgerestore.cli import main


def _clean(shape):
    H, W = shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    img = 0.25 + 0.5 * ((xx // 8 + yy // 8) % 2)  # a checkerboard of 8x8 squares
    if len(shape) == 3:
        img = np.stack([img, 1 - img, np.full_like(img, 0.5)], axis=-1)
    return img


def _write_noisy(path, shape, sigma, dtype, seed=0, extra_channel=False):
    rng = np.random.default_rng(seed)
    clean = _clean(shape)
    scale = 255 if dtype == np.uint8 else 65535
    noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1)
    img = np.rint(noisy * scale).astype(dtype)
    if extra_channel:
        alpha = (np.arange(shape[0] * shape[1]).reshape(shape[:2]) % 251).astype(dtype)
        img = np.dstack([img, alpha])
    assert cv2.imwrite(str(path), img)
    return clean, img


def _psnr(img, clean, scale):
    return 10 * np.log10(1 / np.mean((img.astype(np.float64) / scale - clean) ** 2))


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "name, shape, dtype",
    [("gray8.png", (48, 40), np.uint8), ("bgr8.bmp", (40, 48, 3), np.uint8),
     ("gray16.png", (40, 40), np.uint16), ("bgr16.tif", (40, 40, 3), np.uint16)],
)
def test_denoises_and_keeps_depth_and_channels(tmp_path, capsys, name, shape, dtype):
    src = tmp_path / name
    clean, noisy = _write_noisy(src, shape, 25, dtype)
    out = tmp_path / ("out_" + name)
    assert main(["denoise", str(src), "-o", str(out), "--method", "nlm", "--sigma", "25"]) == 0
    res = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert res.dtype == noisy.dtype and res.shape == noisy.shape
    scale = 255 if dtype == np.uint8 else 65535
    assert _psnr(res, clean, scale) > _psnr(noisy, clean, scale) + 5
    assert str(out) in capsys.readouterr().out
    assert _leftovers(tmp_path) == []


def test_sigma_is_estimated_when_not_given(tmp_path, capsys):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    clean, noisy = _write_noisy(src, (48, 48), 20, np.uint8)
    assert main(["denoise", str(src), "-o", str(out)]) == 0
    assert "sigma auto" in capsys.readouterr().out
    assert _psnr(cv2.imread(str(out), 0), clean, 255) > _psnr(noisy, clean, 255) + 5


def test_alpha_channel_passes_through(tmp_path):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _, noisy = _write_noisy(src, (32, 32, 3), 20, np.uint8, extra_channel=True)
    assert noisy.shape == (32, 32, 4)
    assert main(["denoise", str(src), "-o", str(out), "--sigma", "20"]) == 0
    res = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert res.shape == (32, 32, 4)
    np.testing.assert_array_equal(res[..., 3], noisy[..., 3])
    assert np.abs(res[..., :3].astype(int) - noisy[..., :3]).max() > 10  # colour was denoised


def test_output_may_replace_the_input(tmp_path):
    src = tmp_path / "frame.png"
    _, noisy = _write_noisy(src, (32, 32), 25, np.uint8)
    assert main(["denoise", str(src), "-o", str(src), "--sigma", "25"]) == 0
    assert not np.array_equal(cv2.imread(str(src), 0), noisy)
    assert _leftovers(tmp_path) == []


def test_a_failing_method_leaves_the_old_output_intact(tmp_path, monkeypatch):
    from edgerestore.errors import InputError

    def broken(img, sigma):
        raise InputError("this method failed on purpose")

    monkeypatch.setitem(denoise_cli.METHODS, "broken", broken)
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    out.write_bytes(b"previous result")
    assert main(["denoise", str(src), "-o", str(out), "--method", "broken"]) == 1
    assert out.read_bytes() == b"previous result"
    assert _leftovers(tmp_path) == []


def test_a_crash_while_writing_leaves_no_half_file(tmp_path, monkeypatch):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    out.write_bytes(b"previous result")

    def failing_replace(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(denoise_cli.os, "replace", failing_replace)
    with pytest.raises(OSError):
        main(["denoise", str(src), "-o", str(out), "--sigma", "10"])
    assert out.read_bytes() == b"previous result"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("sigma", ["0", "-5", "nan", "1000"])
def test_bad_sigma_is_refused_before_any_work(tmp_path, capsys, sigma):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    assert main(["denoise", str(src), "-o", str(out), f"--sigma={sigma}"]) == 1
    err = capsys.readouterr().err
    assert "--sigma" in err and ("> 0" in err or "absurd" in err)
    assert not out.exists()


def test_sigma_that_is_not_a_number_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--sigma", "lots"])
    assert exc.value.code == 2
    assert "--sigma" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make_input, match",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("not an image"), "not an image OpenCV can decode"),
        (lambda p: p.write_bytes(b""), "not an image OpenCV can decode"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: cv2.imwrite(str(p), np.zeros((8, 8), np.float32)), "8- or 16-bit"),
    ],
)
def test_unreadable_input_is_a_clear_error(tmp_path, capsys, make_input, match):
    src = tmp_path / "in.tiff"
    make_input(src)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out.png")]) == 1
    assert match in capsys.readouterr().err


def _recording_method(monkeypatch):
    calls = []

    def record(img, sigma):
        calls.append(img.shape)
        return img

    monkeypatch.setitem(denoise_cli.METHODS, "record", record)
    return calls


@pytest.mark.parametrize(
    "out_name, match",
    [
        ("missing/out.png", "does not exist"),
        ("in.png/out.png", "does not exist"),  # a file where a folder should be
        ("subdir", "is a folder"),
        ("out.xyz", "no writer"),
        ("out", "no writer"),
    ],
)
def test_unwritable_output_is_refused_before_any_work(tmp_path, capsys, monkeypatch, out_name, match):
    calls = _recording_method(monkeypatch)
    (tmp_path / "subdir").mkdir()
    src = tmp_path / "in.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    assert main(["denoise", str(src), "-o", str(tmp_path / out_name), "--method", "record"]) == 1
    assert match in capsys.readouterr().err
    assert calls == []  # nothing was computed


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root ignores folder permissions")
def test_read_only_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    calls = _recording_method(monkeypatch)
    src = tmp_path / "in.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["denoise", str(src), "-o", str(ro / "out.png"), "--method", "record"]) == 1
    finally:
        ro.chmod(0o755)
    assert "cannot write" in capsys.readouterr().err
    assert calls == []


def test_sixteen_bit_into_an_eight_bit_format_is_refused(tmp_path, capsys, monkeypatch):
    calls = _recording_method(monkeypatch)
    src = tmp_path / "in.png"
    _write_noisy(src, (16, 16), 10, np.uint16)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out.jpg"), "--method", "record"]) == 1
    assert "16-bit" in capsys.readouterr().err
    assert calls == []


def test_the_installed_command_runs(tmp_path):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (24, 24), 15, np.uint8)
    proc = subprocess.run([sys.executable, "-m", "edgerestore", "denoise", str(src), "-o", str(out),
                           "--sigma", "15"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and cv2.imread(str(out), 0).shape == (24, 24)
    help_text = subprocess.run([sys.executable, "-m", "edgerestore", "denoise", "--help"],
                               capture_output=True, text=True, timeout=120).stdout
    assert "--method" in help_text and "nlm" in help_text
