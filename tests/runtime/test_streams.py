"""Streams through FFmpeg (PyAV) against a real local HTTP server on 127.0.0.1: frames
read, redirects only when allowed, bounded open waits, refused connections."""

from __future__ import annotations

import functools
import http.server
import socket
import socketserver
import threading
import time

import pytest

from edgerestore.runtime import Pipeline, sources
from edgerestore.runtime.errors import SourceError

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
