"""edgerestore.imageio: the one sample rule, atomic writes with the right mode, any path."""

import os
import stat

import numpy as np
import pytest

from edgerestore.errors import InputError
from edgerestore.imageio import (from_float, list_images, natural_key, read_image, to_float, to_uint8,
                                 write_bytes_atomic, write_image_atomic)


def test_round_trip_is_exact_for_every_integer_level():
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        levels = np.arange(top + 1, dtype=dtype)
        assert np.array_equal(from_float(to_float(levels), dtype), levels)


def test_rounding_is_to_nearest_and_clipped():
    rng = np.random.default_rng(7)
    x = rng.uniform(-0.3, 1.3, size=10_000).astype(np.float32)
    ref = np.clip(np.rint(x.astype(np.float64) * 255.0), 0, 255)
    got = to_uint8(x).astype(np.float64)
    # float32 vs float64 products may differ only where x*255 sits on a .5 boundary
    assert np.count_nonzero(got != ref) <= 2
    assert np.all(np.abs(got - np.clip(x * 255.0, 0, 255)) <= 0.5 + 1e-4)
    assert to_uint8(np.array([-1.0, 2.0], np.float32)).tolist() == [0, 255]


def test_natural_order():
    names = ["f10.png", "F2.png", "f1.png"]
    assert sorted(names, key=natural_key) == ["f1.png", "F2.png", "f10.png"]


def test_new_file_follows_umask_and_replaced_file_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.bin"
        write_bytes_atomic(new, b"abc")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"old")
        os.chmod(kept, 0o640)
        write_bytes_atomic(kept, b"new")
        assert kept.read_bytes() == b"new"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"good")

    with pytest.raises(TypeError):
        write_bytes_atomic(target, object())  # not bytes: fails inside the write
    assert target.read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_image_round_trip_through_a_non_utf8_path(tmp_path):
    folder = os.fsencode(str(tmp_path))
    path = os.fsdecode(folder + b"/bad\xff name.png")
    img = np.random.default_rng(0).integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    write_image_atomic(path, img)
    assert np.array_equal(read_image(path), img)
    assert [p.name for p in list_images(tmp_path)] == [os.path.basename(path)]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "text.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="text.png: not an image"):
        read_image(bad)


def test_round_to_uint8_is_from_floats_rule_on_the_0_255_scale():
    from edgerestore.imageio import round_to_uint8

    x = np.array([-3.0, -0.5, 0.49, 0.5, 1.5, 2.5, 127.5, 254.5, 254.51, 300.0], np.float32)
    out = round_to_uint8(x)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 0, 0, 2, 2, 128, 254, 255, 255]  # half to even, clipped
    levels = np.linspace(-2, 258, 4001, dtype=np.float32)
    assert np.array_equal(round_to_uint8(levels), from_float(levels / np.float32(255.0)))


def test_integer_samples_of_another_depth_convert_through_the_same_rule():
    levels = np.arange(0, 65536, 7, dtype=np.uint16)
    assert np.array_equal(to_uint8(levels), np.clip(np.rint(levels / 257.0), 0, 255).astype(np.uint8))
    assert np.array_equal(from_float(np.arange(256, dtype=np.uint8), np.uint16),
                          np.arange(256, dtype=np.uint16) * 257)
