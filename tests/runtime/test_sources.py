"""Sources on real files written with OpenCV (no mocks)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from edgerestore.runtime import Pipeline, sources
from edgerestore.runtime.errors import DecodeError, SourceError, SourceLost

from .clips import make_frames, read_clip, truncate, write_clip


def test_video_file_yields_every_frame_with_index_and_timestamp(tmp_path):
    frames = make_frames(12)
    path = write_clip(tmp_path / "in.mkv", frames, fps=20)
    with sources.VideoFileSource(path) as src:
        got = list(src)
        assert src.fps == pytest.approx(20)
        assert src.frame_count == 12
    assert [f.index for f in got] == list(range(12))
    assert [f.timestamp for f in got] == pytest.approx([i / 20 for i in range(12)], abs=1e-3)
    assert all(f.image.dtype == np.uint8 and f.image.shape == (64, 96, 3) for f in got)
    assert np.array_equal(got[5].image, frames[5])  # FFV1 is lossless


def test_truncated_file_raises_decode_error_naming_the_frame(tmp_path):
    path = write_clip(tmp_path / "in.mkv", make_frames(30))
    cut = truncate(path, tmp_path / "cut.mkv", 0.6)
    readable = len(read_clip(cut))
    assert 0 < readable < 30
    src = sources.VideoFileSource(cut)
    got = []
    with pytest.raises(DecodeError) as info:
        for f in src:
            got.append(f)
    assert info.value.frame_index == readable == len(got)
    assert info.value.expected == 30
    assert f"frame {readable} of 30" in str(info.value)


def test_truncated_mp4_and_garbage_cannot_be_opened(tmp_path):
    mp4 = write_clip(tmp_path / "in.mp4", make_frames(10))
    cut = truncate(mp4, tmp_path / "cut.mp4", 0.5)
    with pytest.raises(SourceError, match="truncated"):
        sources.VideoFileSource(cut).open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        sources.VideoFileSource(junk).open()
    with pytest.raises(SourceError, match="not found"):
        sources.VideoFileSource(tmp_path / "missing.mp4").open()


def test_folder_is_sorted_naturally_and_skips_empty_files(tmp_path, caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    imgs = make_frames(3)
    for name, img in zip(["f10.png", "f2.png", "f1.png"], imgs):
        cv2.imwrite(str(folder / name), img)
    (folder / "f3.png").write_bytes(b"")             # 0 bytes
    (folder / "f4.png").write_bytes(b"garbage")      # not an image
    (folder / "notes.txt").write_text("ignored")
    src = sources.ImageFolderSource(folder)
    got = list(src)
    # f1, f2, f10 in natural order = imgs[2], imgs[1], imgs[0]
    assert [f.index for f in got] == [0, 1, 2]
    assert np.array_equal(got[0].image, imgs[2]) and np.array_equal(got[2].image, imgs[0])
    assert sorted(s.split(":")[0] for s in src.skipped) == ["f3.png", "f4.png"]
    assert "skipping" in caplog.text


def test_folder_mixed_sizes_gray_and_16bit(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), make_frames(1, 40, 30)[0])
    cv2.imwrite(str(folder / "1.png"), np.full((20, 50), 128, np.uint8))           # gray
    cv2.imwrite(str(folder / "2.png"), np.full((10, 12, 3), 40000, np.uint16))     # 16-bit
    cv2.imwrite(str(folder / "3.png"), np.zeros((8, 8, 4), np.uint8))               # BGRA
    got = list(sources.ImageFolderSource(folder))
    assert [f.image.shape for f in got] == [(30, 40, 3), (20, 50), (10, 12, 3), (8, 8, 3)]
    assert all(f.image.dtype == np.uint8 for f in got)
    assert got[2].image[0, 0, 0] == 40000 >> 8


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        sources.ImageFolderSource(tmp_path).open()


def test_synthetic_is_deterministic_and_noisy():
    a = [f.image for f in sources.SyntheticSource(64, 48, 3, noise_sigma=10, seed=1)]
    b = [f.image for f in sources.SyntheticSource(64, 48, 3, noise_sigma=10, seed=1)]
    src = sources.SyntheticSource(64, 48, 3)
    clean = [f.image for f in src]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(clean[0], clean[2])  # it moves
    resid = a[0].astype(float) - clean[0]
    assert 8 < resid.std() < 12


def test_realtime_source_is_paced():
    src = sources.SyntheticSource(32, 24, 6, fps=50, realtime=True)
    t0 = time.perf_counter()
    n = len(list(src))
    assert n == 6 and time.perf_counter() - t0 >= 5 / 50 * 0.9


def test_open_source_dispatch(tmp_path):
    assert isinstance(sources.open_source(0), sources.CameraSource)
    assert isinstance(sources.open_source("2"), sources.CameraSource)
    assert isinstance(sources.open_source("/dev/video3"), sources.CameraSource)
    s = sources.open_source("rtsp://user:secret@cam.local/stream")
    assert isinstance(s, sources.StreamSource) and "secret" not in s.name
    assert isinstance(sources.open_source(tmp_path), sources.ImageFolderSource)
    syn = sources.open_source("synthetic:64x32:7")
    assert isinstance(syn, sources.SyntheticSource) and syn.size == (64, 32) and syn.frame_count == 7
    assert isinstance(sources.open_source(tmp_path / "x.mp4"), sources.VideoFileSource)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(SourceError, match="cannot open camera 97"):
        sources.CameraSource(97).open()


def test_lost_stream_is_reopened_with_backoff(tmp_path):
    # A stream source over a short file: at its end the stream is "lost"; it comes back
    # (the file is still there), so the source reopens it and frames keep coming.
    path = write_clip(tmp_path / "cam.mkv", make_frames(4))
    src = sources.StreamSource(str(path), reconnect=True, reconnect_timeout=5)
    with src:
        got = [src.read() for _ in range(10)]
    assert [f.index for f in got] == list(range(10))
    assert src.reconnects == 2


def test_stream_that_does_not_come_back_raises_source_lost(tmp_path):
    path = write_clip(tmp_path / "cam.mkv", make_frames(3))
    src = sources.StreamSource(str(path), reconnect=True, reconnect_timeout=0.6)
    src.open()
    path.unlink()  # the "camera" is unplugged
    t0 = time.perf_counter()
    with pytest.raises(SourceLost, match="lost at frame 3"):
        for _ in range(10):
            src.read()
    assert 0.5 < time.perf_counter() - t0 < 3
    src.close()


def test_offline_capture_loss_is_a_decode_error(tmp_path):
    path = write_clip(tmp_path / "cam.mkv", make_frames(3))
    src = sources.StreamSource(str(path), reconnect=False)
    with src, pytest.raises(DecodeError, match="lost"):
        for _ in range(5):
            src.read()


def test_array_source_checks_dtype():
    src = sources.ArraySource([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32)])
    src.open()
    assert src.read().index == 0
    with pytest.raises(SourceError, match="uint8"):
        src.read()


# --- network streams, without a camera or a remote host: real sockets on this machine,
# real FFmpeg (through OpenCV) reading a real FFV1 clip over HTTP.

def test_unresolvable_stream_host_fails_fast_with_a_clear_error():
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="host 'no-such-camera.invalid' does not resolve"):
        sources.StreamSource("rtsp://admin:pw@no-such-camera.invalid:554/stream").open()
    assert time.perf_counter() - t0 < 5
    # the password never shows in the message
    with pytest.raises(SourceError) as info:
        sources.StreamSource("rtsp://admin:pw@no-such-camera.invalid/stream").open()
    assert ":pw@" not in str(info.value) and "admin:***@" in str(info.value)


def test_silent_stream_server_times_out_with_a_clear_error():
    # A TCP server that accepts connections and never answers: open() must give up
    # after open_timeout instead of hanging the capture thread.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(4)], daemon=True).start()
    port = server.getsockname()[1]
    try:
        for scheme in ("rtsp", "http"):
            t0 = time.perf_counter()
            with pytest.raises(SourceError, match=r"no answer within 1 s"):
                sources.StreamSource(f"{scheme}://127.0.0.1:{port}/live", open_timeout=1.0).open()
            assert 0.8 < time.perf_counter() - t0 < 4
    finally:
        server.close()


class _ClipServer:
    """Serves one clip over HTTP; ``down_after_first`` seconds of 503 after the first request."""

    def __init__(self, data: bytes, down_after_first: float):
        self.requests: list[tuple[float, int]] = []
        self.down_until = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                now = time.perf_counter()
                if outer.down_until is not None and now < outer.down_until:
                    outer.requests.append((now, 503))
                    self.send_error(503, "camera rebooting")
                    return
                outer.requests.append((now, 200))
                self.send_response(200)
                self.send_header("Content-Type", "video/x-matroska")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if outer.down_until is None:
                    outer.down_until = time.perf_counter() + down_after_first

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/cam.mkv"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_stream_that_fails_then_recovers_is_reopened_with_backoff(tmp_path, caplog):
    # The stream delivers 5 frames and drops; for 0.6 s the server answers 503, then it
    # serves again. The source retries after 0.25 s (503), then 0.5 s later (back).
    clip = write_clip(tmp_path / "cam.mkv", make_frames(5))
    server = _ClipServer(clip.read_bytes(), down_after_first=0.6)
    try:
        src = sources.StreamSource(server.url, reconnect=True, reconnect_timeout=10)
        with src, caplog.at_level("WARNING", logger="edgerestore.runtime"):
            got = [src.read() for _ in range(8)]
    finally:
        server.close()
    assert [f.index for f in got] == list(range(8))
    assert np.array_equal(got[5].image, make_frames(5)[0])  # lossless, from the start again
    assert src.reconnects == 1
    assert [code for _, code in server.requests] == [200, 503, 200]
    gaps = np.diff([t for t, _ in server.requests])
    # the back-off waits 0.25 s, then 0.5 s (upper bounds loose for a loaded machine)
    assert 0.22 <= gaps[0] < 0.6 and 0.47 <= gaps[1] < 0.9, gaps
    assert "reopening in 0.25 s" in caplog.text and "reopening in 0.5 s" in caplog.text
    assert "reopened (reconnect 1)" in caplog.text
    assert got[5].timestamp - got[4].timestamp > 0.6  # timestamps are capture times


def test_http_stream_through_a_live_pipeline_keeps_going_after_a_loss(tmp_path):
    clip = write_clip(tmp_path / "cam.mkv", make_frames(5, 32, 24))
    server = _ClipServer(clip.read_bytes(), down_after_first=0.4)
    try:
        report = Pipeline("none", mode="live", queue_size=64).run(
            sources.StreamSource(server.url, reconnect_timeout=10), None, max_frames=12)
    finally:
        server.close()
    assert report.status == "ok" and report.frames_in == 12 and report.reconnects == 2
