"""RTSP against real servers on 127.0.0.1: a real clip published by FFmpeg's ``rtsp``
muxer (PyAV, packets copied, in real time) and read back by :class:`StreamSource` and
the :class:`VideoReader` under it.

Two servers (``tests/runtime/rtsp_relay.py`` says why two): the relay written for the
tests (players over TCP or UDP), and Debian's ``rtsp-server-perl`` (UDP only), whose
tests are skipped with the reason where it is not installed (``.ci/run`` installs it).

Each frame read is compared bit for bit with the same clip decoded from the file, and
its presentation time with the file's: the stream's timestamps are the file's shifted
by one constant.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time

import pytest

from edgerestore.cli import main
from edgerestore.imageio import read_image
from edgerestore.runtime import sources
from edgerestore.runtime.errors import DecodeError, SourceError
from edgerestore.runtime.video import VideoReader
from tests.conftest import SHARED_DATA

from .clips import make_frames, write_av_clip
from .rtsp_relay import PerlServerProcess, PublisherProcess, RelayProcess, wait_published

REAL_CLIP = SHARED_DATA / "video" / "dashcam_solidWhiteRight.mp4"
NO_PERL = "Debian's rtsp-server-perl is not installed (.ci/run installs it: apt-get install rtsp-server-perl)"


def digest(img) -> str:
    return hashlib.sha1(img.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """``(path, {frame digest: timestamp})``: the first 90 frames (3 GOPs of 30) of the
    real dash-cam clip, packets copied; where the shared data is absent, a clip made
    here (libx264, a keyframe every 10 frames)."""
    import av

    folder = tmp_path_factory.mktemp("rtsp")
    path = folder / "clip.mp4"
    if REAL_CLIP.is_file():
        with av.open(str(REAL_CLIP)) as src, av.open(str(path), "w") as out:
            vin = src.streams.video[0]
            vout = out.add_stream_from_template(vin)
            for n, p in enumerate(src.demux(vin)):
                if p.size and n < 90:
                    p.stream = vout
                    out.mux(p)
    else:
        write_av_clip(path, make_frames(60, 160, 96), codec="libx264", pix_fmt="yuv420p",
                      options={"g": "10", "bf": "0"})
    reader = VideoReader(str(path), threads=False)
    ref = {digest(img): ts for img, ts in reader.frames()}
    reader.close()
    return path, ref


@pytest.fixture(params=["relay", "perl"])
def server(request):
    """A running RTSP server: ``(kind, object with url() and publish_url())``."""
    if request.param == "perl":
        if shutil.which(PerlServerProcess.EXECUTABLE) is None:
            pytest.skip(NO_PERL)
        srv = PerlServerProcess()
    else:
        srv = RelayProcess()
    yield request.param, srv
    srv.stop()


def start_publisher(kind, srv, clip_path, loops=1):
    """A publisher of ``clip_path`` on ``srv``, published when this returns. The relay
    takes publishers over TCP, the Debian server over UDP."""
    pub = PublisherProcess(srv.publish_url(), clip_path, transport="udp" if kind == "perl" else "tcp", loops=loops)
    try:
        wait_published(srv.url())
    except RuntimeError:
        pub.proc.terminate()
        raise RuntimeError(f"publisher did not publish: {pub.wait(5)}") from None
    return pub


def transports(kind):
    return ["tcp", "udp"] if kind == "relay" else ["udp"]


def test_frames_arrive_bit_exact_with_their_timestamps_over_each_transport(server, clip):
    kind, srv = server
    clip_path, ref = clip
    pub = start_publisher(kind, srv, clip_path, loops=5)
    try:
        for transport in transports(kind):
            # the reader under the source: presentation times are the file's, shifted
            reader = VideoReader(srv.url(), options={"rtsp_transport": transport}, timeout=(5, 3), threads=False)
            got = []
            for img, ts in reader.frames():
                got.append((ref.get(digest(img)), ts))
                if len(got) == 15:
                    break
            reader.close()
            assert all(file_ts is not None for file_ts, _ in got), "a frame differs from the file's decode"
            offsets = {round(ts - file_ts, 6) for file_ts, ts in got}
            assert len(offsets) == 1, offsets
            # the source: the same pictures, timestamps in seconds since it opened, increasing
            src = sources.StreamSource(srv.url(), rtsp_transport=transport, reconnect=False,
                                       open_timeout=5, read_timeout=3)
            with src:
                frames = [src.read() for _ in range(10)]
            assert all(digest(f.image) in ref for f in frames)
            stamps = [f.timestamp for f in frames]
            assert stamps == sorted(stamps) and len(set(stamps)) == 10
        if kind == "relay":  # the relay saw each player use the transport asked for
            assert [line.split()[-1] for line in srv.log if line.startswith("PLAY")] == ["tcp", "tcp", "udp", "udp"]
    finally:
        pub.stop()


def test_tcp_on_the_udp_only_server_is_a_clear_error(clip):
    if shutil.which(PerlServerProcess.EXECUTABLE) is None:
        pytest.skip(NO_PERL)
    srv = PerlServerProcess()
    pub = None
    try:
        pub = start_publisher("perl", srv, clip[0])
        with pytest.raises(SourceError, match=r"cannot open stream .*400 Bad Request"):
            sources.StreamSource(srv.url(), rtsp_transport="tcp", reconnect=False, open_timeout=5).open()
    finally:
        if pub is not None:
            pub.stop()
        srv.stop()


def test_nothing_listening_is_refused_and_a_silent_port_times_out_at_open_timeout():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="Connection refused"):
        sources.StreamSource(f"rtsp://127.0.0.1:{port}/cam", rtsp_transport="tcp", open_timeout=3).open()
    assert time.perf_counter() - t0 < 3
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        t0 = time.perf_counter()
        with pytest.raises(SourceError, match="no answer within 1 s"):
            sources.StreamSource(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam", open_timeout=1).open()
        assert time.perf_counter() - t0 < 5
    finally:
        silent.close()


def test_nothing_published_yet_is_a_clear_error():
    srv = RelayProcess()
    try:
        with pytest.raises(SourceError, match="cannot open stream .*404 Not Found"):
            sources.StreamSource(srv.url("nobody"), rtsp_transport="tcp", open_timeout=3).open()
    finally:
        srv.stop()


def test_a_publisher_that_stalls_ends_the_read_at_read_timeout(server, clip):
    kind, srv = server
    pub = start_publisher(kind, srv, clip[0], loops=3)
    try:
        src = sources.StreamSource(srv.url(), rtsp_transport=transports(kind)[0], reconnect=False,
                                   open_timeout=5, read_timeout=1)
        with src:
            for _ in range(5):
                assert digest(src.read().image) in clip[1]
            pub.stall()  # the publisher's process stops: its connection stays open, silent
            t0 = time.perf_counter()
            with pytest.raises(DecodeError, match="stream lost"):
                while src.read() is not None:
                    pass
            # at most what the server had in flight, then 1 s of silence (not the 3 loops)
            assert time.perf_counter() - t0 < 6
    finally:
        pub.stop()


def test_the_stream_is_read_on_when_the_publisher_restarts(server, clip):
    kind, srv = server
    clip_path, ref = clip
    pub = start_publisher(kind, srv, clip_path, loops=3)
    second = None
    try:
        src = sources.StreamSource(srv.url(), rtsp_transport=transports(kind)[-1], reconnect=True,
                                   reconnect_timeout=20, open_timeout=3, read_timeout=1.5)
        with src:
            before = [src.read() for _ in range(5)]
            # the relay: killed (its connection closes, the path is unpublished); the Debian
            # server keeps the path of a publisher that vanished without TEARDOWN (refusing
            # its successor), so there the publisher closes its output cleanly
            pub.stop(clean=kind == "perl")
            time.sleep(1.0)
            second = PublisherProcess(srv.publish_url(), clip_path,
                                      transport="udp" if kind == "perl" else "tcp", loops=3)
            t0 = time.perf_counter()
            after = []
            while len(after) < 10:
                f = src.read()
                if src.reconnects:
                    after.append(f)
            assert time.perf_counter() - t0 < 20
        assert src.reconnects == 1
        assert all(digest(f.image) in ref for f in before + after)
        indexes = [f.index for f in before + after]
        assert indexes == sorted(indexes)
    finally:
        pub.stop()
        if second is not None:
            second.stop()


def test_run_reads_an_rtsp_stream_into_a_folder(clip, tmp_path, capsys):
    clip_path, ref = clip
    srv = RelayProcess()
    pub = None
    try:
        pub = start_publisher("relay", srv, clip_path, loops=2)
        out = tmp_path / "frames"
        rc = main(["run", srv.url(), "-o", f"{out}/", "--pipeline", "none", "--max-frames", "8",
                   "--rtsp-transport", "tcp", "--mode", "offline", "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        written = sorted(out.glob("*.png"))
        assert len(written) == 8
        assert all(digest(read_image(p)) in ref for p in written)
        assert [line.split()[-1] for line in srv.log if line.startswith("PLAY")] == ["tcp"]
    finally:
        if pub is not None:
            pub.stop()
        srv.stop()
