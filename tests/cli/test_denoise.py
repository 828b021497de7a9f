"""``edgerestore denoise``: formats, bit depths, channels, atomic writes, clear errors."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgerestore import denoise
from edgerestore.cli import main
from edgerestore.errors import InputError
from edgerestore.metrics import psnr


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
    return psnr(clean, img.astype(np.float64) / scale)


@pytest.fixture
def method():
    """``method(name, fn)``: a denoise method registered for the test, removed after it."""
    added = []

    def add(name, fn):
        denoise.METHODS.add(name, fn)
        added.append(name)

    yield add
    for name in added:
        denoise.METHODS.remove(name)


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


@pytest.mark.parametrize("command", ["denoise", "upscale"])
def test_outputs_get_the_umask_mode_and_a_replaced_file_keeps_its_own(tmp_path, command):
    """#21 item 8: outputs were always 0600 (the temporary file ignored the umask) and an
    overwritten file lost its mode."""
    import stat

    src = tmp_path / "in.png"
    _write_noisy(src, (32, 32), 25, np.uint8)
    extra = ["--sigma", "25"] if command == "denoise" else ["--scale", "2"]
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.png"
        assert main([command, str(src), "-o", str(new), *extra]) == 0
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.png"
        kept.write_bytes(src.read_bytes())
        os.chmod(kept, 0o664)
        assert main([command, str(src), "-o", str(kept), *extra]) == 0
        assert stat.S_IMODE(kept.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_output_may_replace_the_input(tmp_path):
    src = tmp_path / "frame.png"
    _, noisy = _write_noisy(src, (32, 32), 25, np.uint8)
    assert main(["denoise", str(src), "-o", str(src), "--sigma", "25"]) == 0
    assert not np.array_equal(cv2.imread(str(src), 0), noisy)
    assert _leftovers(tmp_path) == []


def test_a_failing_method_leaves_the_old_output_intact(tmp_path, method):

    def broken(img, sigma):
        raise InputError("this method failed on purpose")

    method("broken", broken)
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

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        main(["denoise", str(src), "-o", str(out), "--sigma", "10"])
    assert out.read_bytes() == b"previous result"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("sigma", ["0", "-5", "nan", "inf", "1000", "1e-20", "5e-5"])
@pytest.mark.parametrize("method", ["nlm", "bm3d"])
def test_bad_sigma_is_refused_before_any_work(tmp_path, capsys, sigma, method):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    assert main(["denoise", str(src), "-o", str(out), f"--sigma={sigma}", "--method", method]) == 1
    err = capsys.readouterr().err
    assert "--sigma" in err and ("> 0" in err or "absurd" in err or "below 0.0001" in err)
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


def _recording_method(method):
    calls = []

    def record(img, sigma):
        calls.append(img.shape)
        return img

    method("record", record)
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
def test_unwritable_output_is_refused_before_any_work(tmp_path, capsys, method, out_name, match):
    calls = _recording_method(method)
    (tmp_path / "subdir").mkdir()
    src = tmp_path / "in.png"
    _write_noisy(src, (16, 16), 10, np.uint8)
    assert main(["denoise", str(src), "-o", str(tmp_path / out_name), "--method", "record"]) == 1
    assert match in capsys.readouterr().err
    assert calls == []  # nothing was computed


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root ignores folder permissions")
def test_read_only_folder_is_refused_before_any_work(tmp_path, capsys, method):
    calls = _recording_method(method)
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


def test_sixteen_bit_into_an_eight_bit_format_is_refused(tmp_path, capsys, method):
    calls = _recording_method(method)
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


# --- the library behind the command (edgerestore.denoise) -------------------------------

def test_the_method_registry_refuses_a_second_method_of_the_same_name(method):
    from edgerestore.registry import RegistryError

    with pytest.raises(RegistryError, match="'nlm' is already registered"):
        denoise.METHODS.add("nlm", lambda img, sigma: img)
    method("mine", lambda img, sigma: img)
    with pytest.raises(RegistryError, match="'mine' is already registered"):
        denoise.METHODS.add("mine", lambda img, sigma: img)
    assert denoise.METHODS.get("nlm") is denoise.denoise_nlm  # the first one stays


def test_help_lists_the_registered_methods(capsys, method):
    assert {"nlm", "nlm-cuda", "bm3d", "bm3d-cuda", "model"} <= set(denoise.METHODS.names())
    method("my-filter", lambda img, sigma: img)
    with pytest.raises(SystemExit):
        main(["denoise", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{bm3d,bm3d-cuda,model,my-filter,nlm,nlm-cuda}" in help_text


def test_an_unknown_method_lists_the_registered_ones():
    from edgerestore.registry import RegistryError

    with pytest.raises(RegistryError, match="unknown denoise method 'wiener'; available: nlm, nlm-cuda"):
        denoise.denoise_array(np.zeros((8, 8), np.uint8), "wiener", 10.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 2, 3, 4])
def test_denoise_array_keeps_dtype_channels_and_alpha(dtype, channels):
    rng = np.random.default_rng(1)
    shape = (12, 10) if channels is None else (12, 10, channels)
    top = np.iinfo(dtype).max
    img = rng.integers(0, top, shape, endpoint=True).astype(dtype)
    seen = []

    def invert(x, sigma):
        seen.append((x.shape, x.dtype, sigma))
        return 1 - x

    out = denoise.denoise_array(img, invert, 7.0)
    assert out.dtype == img.dtype and out.shape == img.shape
    color_shape = {None: (12, 10), 2: (12, 10), 3: (12, 10, 3), 4: (12, 10, 3)}[channels]
    assert seen == [(color_shape, np.float32, 7.0)]
    color = img if channels in (None, 3) else img[..., :-1].reshape(color_shape)
    expected = top - color
    np.testing.assert_array_equal(out if channels in (None, 3) else out[..., :-1].reshape(color_shape),
                                  expected)
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., -1], img[..., -1])  # alpha untouched


def test_five_channels_are_refused_by_the_library_and_the_command(tmp_path, capsys, monkeypatch):
    import edgerestore.imageio

    with pytest.raises(InputError, match="has 5 channels; denoise handles 1 to 4"):
        denoise.denoise_array(np.zeros((8, 8, 5), np.uint8), "nlm", 10.0)
    # OpenCV writes at most 4 channels; a multi-page TIFF reader could give more
    src = tmp_path / "five.tif"
    src.write_bytes(b"")
    monkeypatch.setattr(edgerestore.imageio, "read_image", lambda path: np.zeros((8, 8, 5), np.uint8))
    assert main(["denoise", str(src), "-o", str(tmp_path / "o.tif")]) == 1
    assert "five.tif has 5 channels; denoise handles 1 to 4" in capsys.readouterr().err


def _huge_png(path, width, height):
    """A valid 8-bit gray PNG of width x height black pixels, written row by row through
    zlib (a few hundred KB on disk; never held in memory whole)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(1)
    row = bytes(width + 1)  # filter byte 0 + the row
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak RSS from /proc")
@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="the header is read with Pillow")
def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path):
    src = _huge_png(tmp_path / "huge.png", 20000, 20000)
    assert src.stat().st_size < 2_000_000
    # peak RSS from /proc (VmHWM: of this program only; ru_maxrss would include the
    # pytest process it was forked from)
    code = ("import sys; from edgerestore.cli import main; rc = main(sys.argv[1:]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "denoise", str(src), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "20000x20000 = 400 megapixels, above the limit of 100 MP" in proc.stderr
    assert "--max-input-mp" in proc.stderr and not (tmp_path / "o.png").exists()
    assert int(proc.stdout.split()[-1]) < 400_000  # peak RSS in KB: the 400 MB image never decoded


def test_the_input_limit_is_an_option(tmp_path, capsys):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    _write_noisy(src, (40, 50), 10, np.uint8)
    assert main(["denoise", str(src), "-o", str(out), "--max-input-mp", "0.001"]) == 1
    assert "50x40 = 0.002 megapixels, above the limit of 0.001 MP" in capsys.readouterr().err
    assert main(["denoise", str(src), "-o", str(out), "--max-input-mp", "0"]) == 0 and out.exists()
