"""Sinks on real files: codecs from the extension, temporary names, pre-flight checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.runtime import sinks
from edgerestore.runtime.errors import SinkError
from edgerestore.runtime.sources import Frame

from .clips import make_frames, read_clip


def _frames(n=5, w=96, h=64):
    return [Frame(img, i, i / 25) for i, img in enumerate(make_frames(n, w, h))]


def test_lossless_mkv_is_ffv1_and_appears_only_when_closed(tmp_path):
    out = tmp_path / "out.mkv"
    sink = sinks.VideoFileSink(out, fps=25, lossless=True)
    assert sink.codec == "ffv1"
    sink.check()
    frames = _frames()
    for f in frames:
        sink.write(f)
    assert not out.exists()                     # still under its temporary name
    partial = list(tmp_path.glob(".out.partial-*.mkv"))
    assert len(partial) == 1
    sink.close()
    assert out.exists() and not list(tmp_path.glob(".out.partial-*"))
    back = read_clip(out)
    assert len(back) == 5 and all(np.array_equal(a, f.image) for a, f in zip(back, frames))


def test_abort_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    sink = sinks.VideoFileSink(out)
    sink.check()
    sink.write(_frames(1)[0])
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_codecs_from_extension_and_choices(tmp_path):
    for ext in (".mp4", ".mkv", ".mov"):
        assert sinks.VideoFileSink(tmp_path / f"a{ext}").codec == "h264"
    assert sinks.VideoFileSink(tmp_path / "a.avi").codec == "mjpeg"
    assert sinks.VideoFileSink(tmp_path / "a.mp4", codec="h265").codec == "h265"
    assert sinks.VideoFileSink(tmp_path / "a.mkv", codec="FFV1").codec == "ffv1"
    with pytest.raises(SinkError, match="unknown video extension"):
        sinks.VideoFileSink(tmp_path / "a.xyz")
    with pytest.raises(SinkError, match="use .mkv"):
        sinks.VideoFileSink(tmp_path / "a.mp4", lossless=True)
    with pytest.raises(SinkError, match="0..51"):
        sinks.VideoFileSink(tmp_path / "a.mp4", crf=52)
    with pytest.raises(SinkError, match="no longer written"):
        sinks.VideoFileSink(tmp_path / "a.mp4", codec="mp4v")


def test_unwritable_outputs_fail_at_check(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SinkError, match="not a folder"):
        sinks.VideoFileSink(afile / "out.mkv").check()
    with pytest.raises(SinkError, match="does not exist"):
        sinks.VideoFileSink(tmp_path / "nope" / "out.mkv").check()
    with pytest.raises(SinkError, match="it is a file"):
        sinks.ImageFolderSink(afile).check()
    (tmp_path / "isdir.mkv").mkdir()
    with pytest.raises(SinkError, match="folder of that name"):
        sinks.VideoFileSink(tmp_path / "isdir.mkv").check()


def test_check_chooses_an_encoder_and_writes_nothing(tmp_path):
    sink = sinks.VideoFileSink(tmp_path / "out.mp4", codec="avc1")
    sink.check()
    assert sink.encoder.codec == "h264" and sink.encoder.name in ("libx264", "h264_nvenc")
    assert not list(tmp_path.iterdir())


def test_mixed_sizes_and_gray_are_adapted(tmp_path, caplog):
    out = tmp_path / "out.mkv"
    sink = sinks.VideoFileSink(out, lossless=True)
    sink.check()
    sink.write(Frame(make_frames(1, 64, 48)[0], 0, 0.0))
    sink.write(Frame(np.full((30, 20), 77, np.uint8), 1, 0.04))
    sink.write(Frame(make_frames(1, 64, 48)[0], 2, 0.08))
    sink.close()
    back = read_clip(out)
    assert [b.shape for b in back] == [(48, 64, 3)] * 3
    assert sink.resized == 1 and "resizing" in caplog.text
    assert np.all(back[1] == 77)


def test_image_folder_sink_names_by_index(tmp_path):
    folder = tmp_path / "frames"
    sink = sinks.ImageFolderSink(folder)
    sink.check()
    assert folder.is_dir()
    for f in _frames(3):
        sink.write(Frame(f.image, f.index * 2, 0.0))
    sink.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["000000.png", "000002.png", "000004.png"]
    assert np.array_equal(cv2.imread(str(folder / "000002.png")), make_frames(2)[1])


def test_open_sink_dispatch(tmp_path):
    assert isinstance(sinks.open_sink("-"), sinks.NullSink)
    assert isinstance(sinks.open_sink(str(tmp_path / "frames") + "/"), sinks.ImageFolderSink)
    assert isinstance(sinks.open_sink(tmp_path / "noext"), sinks.ImageFolderSink)
    assert isinstance(sinks.open_sink(tmp_path / "a.mkv"), sinks.VideoFileSink)
    got = []
    s = sinks.open_sink(got.append)
    s.write(_frames(1)[0])
    assert isinstance(s, sinks.CallbackSink) and len(got) == 1


def test_window_sink_without_display_fails_at_check(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="no display"):
        sinks.WindowSink().check()
