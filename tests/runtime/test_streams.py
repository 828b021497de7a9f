"""Streams through FFmpeg (PyAV) against a real local HTTP server on 127.0.0.1: frames
read, redirects only when allowed, bounded open and read waits, refused connections,
reconnection after the server drops the stream, and giving up in bounded time.
RTSP, against real RTSP servers: ``test_rtsp.py``."""

from __future__ import annotations

import functools
import http.server
import socket
import socketserver
import threading
import time

import numpy as np
import pytest

from edgerestore.runtime import Pipeline, sources
from edgerestore.runtime.errors import DecodeError, SourceError, SourceLost

from .clips import make_frames, write_av_clip


@pytest.fixture
def server(tmp_path):
    write_av_clip(tmp_path / "clip.mkv", make_frames(6, 64, 48))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/clip.mkv")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_http_stream_is_read_to_the_end(server):
    src = sources.open_source(f"{server}/clip.mkv")
    assert isinstance(src, sources.StreamSource) and src.live
    report = Pipeline("none", mode="offline").run(src, None)
    # offline, the end of a stream is a loss: the run stops cleanly with what was read
    assert report.frames_in == 6 and report.frames_out == 6


def test_redirect_is_followed_only_when_allowed(server):
    with pytest.raises(SourceError, match="redirects to http://localhost.*--follow-redirects"):
        sources.StreamSource(f"{server}/redirect", reconnect=False).open()
    src = sources.StreamSource(f"{server}/redirect", follow_redirects=True, reconnect=False)
    frames = []
    with src:
        while (f := src.read() if len(frames) < 6 else None) is not None:
            frames.append(f)
    assert len(frames) == 6 and frames[0].image.shape == (48, 64, 3)


def test_a_silent_server_times_out_at_open_timeout():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts the connection, never answers
    try:
        t0 = time.perf_counter()
        with pytest.raises(SourceError, match="no answer within 1 s"):
            sources.StreamSource(f"http://127.0.0.1:{sock.getsockname()[1]}/x", open_timeout=1.0).open()
        assert time.perf_counter() - t0 < 5
    finally:
        sock.close()


def test_refused_connection_and_bad_transport():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(SourceError, match="Connection refused"):
        sources.StreamSource(f"http://127.0.0.1:{port}/x", open_timeout=2).open()
    with pytest.raises(ValueError, match="rtsp_transport"):
        sources.StreamSource("rtsp://127.0.0.1/x", rtsp_transport="quic")


class CuttingServer:
    """A real HTTP server on 127.0.0.1 serving ``data`` (no Content-Length: the body ends
    when the connection closes, as a live stream's would). The first ``faulty`` requests
    get ``cut`` of the bytes, then the connection is dropped (``stall_s`` = 0) or held
    open and silent for ``stall_s`` seconds; later requests get everything, unless
    ``down_after_faults`` closes the server instead."""

    def __init__(self, data: bytes, *, cut: float = 0.4, faulty: int = 1, stall_s: float = 0.0,
                 down_after_faults: bool = False):
        self.data, self.cut, self.faulty, self.stall_s = data, cut, faulty, stall_s
        self.down_after_faults = down_after_faults
        self.requests = 0
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                outer.requests += 1
                faulty = outer.requests <= outer.faulty
                self.send_response(200)
                self.send_header("Content-Type", "video/x-matroska")
                self.end_headers()
                body = outer.data[: int(len(outer.data) * outer.cut)] if faulty else outer.data
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                    if faulty and outer.stall_s:
                        outer.release.wait(outer.stall_s)
                except OSError:
                    pass
                if faulty and outer.down_after_faults and outer.requests == outer.faulty:
                    threading.Thread(target=outer.stop, daemon=True).start()

            def log_message(self, *args):
                pass

        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/live.mkv"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def live_clip(tmp_path):
    clip = write_av_clip(tmp_path / "live.mkv", make_frames(30, 64, 48))
    first = sources.VideoFileSource(clip, hardware="off").read().image
    return clip.read_bytes(), first


def test_stream_dropped_by_the_server_is_reopened_and_read_on(live_clip):
    data, first = live_clip
    server = CuttingServer(data)
    try:
        src = sources.StreamSource(server.url, reconnect=True, reconnect_timeout=10, read_timeout=2)
        t0 = time.perf_counter()
        frames, n_before = [], 0
        with src:
            while src.reconnects == 0 or len(frames) < n_before + 10:
                frames.append(src.read())
                if src.reconnects == 0:
                    n_before = len(frames)
        assert time.perf_counter() - t0 < 15
        assert src.reconnects == 1 and server.requests == 2
        assert 0 < n_before < 30  # the first connection gave part of the clip
        assert np.array_equal(frames[n_before].image, first)  # the new connection starts it again
    finally:
        server.stop()


def test_a_stream_that_stalls_ends_at_read_timeout(live_clip):
    data, _ = live_clip
    server = CuttingServer(data, stall_s=30)
    try:
        src = sources.StreamSource(server.url, reconnect=False, read_timeout=1)
        t0 = time.perf_counter()
        got = 0
        with src, pytest.raises(DecodeError, match="stream lost"):
            while src.read() is not None:
                got += 1
        assert 0 < got < 30 and time.perf_counter() - t0 < 8  # 1 s of silence, not 30
    finally:
        server.release.set()
        server.stop()


def test_reconnection_gives_up_after_reconnect_timeout(live_clip):
    data, _ = live_clip
    server = CuttingServer(data, down_after_faults=True)
    src = sources.StreamSource(server.url, reconnect=True, reconnect_timeout=2, open_timeout=1, read_timeout=1)
    t0 = time.perf_counter()
    with src, pytest.raises(SourceLost, match="not back after 2 s"):
        while src.read() is not None:
            pass
    assert 2 <= time.perf_counter() - t0 < 10 and src.reconnects == 0
