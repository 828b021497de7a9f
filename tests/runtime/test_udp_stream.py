"""Plain UDP streams (``udp://127.0.0.1:PORT``, MPEG-TS) on the loopback: the real
dash-cam clip's first 90 frames (the ``clip`` fixture of ``test_rtsp.py``), packets
copied into MPEG-TS datagrams and sent in real time by a separate process
(``rtsp_relay.publish``: PyAV holds the GIL while it muxes to the network), read back by
the :class:`VideoReader`, the :class:`StreamSource` and ``edgerestore run``.

UDP has no connection: the publisher waits until the reader has bound the port, so no
datagram is sent into the void and the first one carries the first keyframe. Loopback
does not lose datagrams at this rate (~1 Mbit/s), so every frame must arrive, bit for bit
the file's decode, its presentation time the file's shifted by one constant.
"""

from __future__ import annotations

import socket
import time

import pytest

from edgerestore.cli import main
from edgerestore.imageio import read_image
from edgerestore.runtime import sources
from edgerestore.runtime.errors import DecodeError, SourceError
from edgerestore.runtime.video import VideoReader

from .rtsp_relay import PublisherProcess, free_port
from .test_rtsp import clip, digest  # noqa: F401 - clip is a fixture used here

FRAMES = 90  # the clip fixture's frames (3 GOPs of 30; 60 where it is made here)


@pytest.fixture
def udp_url():
    return f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"


def publish(url, clip_path):
    """A publisher process that sends ``clip_path`` once, as soon as a reader holds the port."""
    return PublisherProcess(url, clip_path)


def test_every_frame_arrives_with_the_file_timestamps_and_the_read_timeout_ends_it(clip, udp_url):
    clip_path, ref = clip
    pub = publish(udp_url, clip_path)
    try:
        t_open = time.perf_counter()  # the publisher sends from when the reader binds the port
        reader = VideoReader(udp_url, timeout=(10, 1), threads=False)
        got = []
        with pytest.raises(DecodeError):  # the publisher is gone: the read times out
            for img, ts in reader.frames():
                got.append((ref.get(digest(img)), ts))
        ended = time.perf_counter()
        reader.close()
        assert pub.wait(5) == f"sent {len(ref)}"
    finally:
        pub.stop()
    assert len(got) == len(ref), f"{len(got)} of {len(ref)} frames arrived"
    assert all(file_ts is not None for file_ts, _ in got), "a frame differs from the file's decode"
    assert [file_ts for file_ts, _ in got] == sorted(ref.values())
    assert len({round(ts - file_ts, 6) for file_ts, ts in got}) == 1
    # the clip in real time, then 1 s of silence (read timeout; the decoder's last frames
    # come out only then), not another timeout
    span = max(ref.values()) + 0.04
    assert span + 0.9 < ended - t_open < span + 4


def test_the_stream_source_reads_it_live_and_reports_the_loss(clip, udp_url):
    clip_path, ref = clip
    pub = publish(udp_url, clip_path)
    frames = []
    try:
        assert sources.is_stream_url(udp_url)
        src = sources.StreamSource(udp_url, reconnect=False, open_timeout=10, read_timeout=1)
        with src, pytest.raises(DecodeError, match="stream lost"):
            while (f := src.read()) is not None:
                frames.append(f)
    finally:
        pub.stop()
    assert len(frames) == len(ref)
    assert [ref.get(digest(f.image)) for f in frames] == sorted(ref.values())
    stamps = [f.timestamp for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(frames)
    # received in real time: the wall-clock span is about the clip's
    span = max(ref.values()) - min(ref.values())
    assert stamps[-1] - stamps[0] > 0.5 * span


def test_run_reads_a_udp_stream_into_a_folder(clip, udp_url, tmp_path, capsys):
    clip_path, ref = clip
    pub = publish(udp_url, clip_path)
    try:
        out = tmp_path / "frames"
        rc = main(["run", udp_url, "-o", f"{out}/", "--pipeline", "none", "--max-frames", "20",
                   "--mode", "offline", "--no-progress"])
        assert rc == 0, capsys.readouterr().err
    finally:
        pub.stop()
    written = sorted(out.glob("*.png"))
    assert len(written) == 20
    assert [ref.get(digest(read_image(p))) for p in written] == sorted(ref.values())[:20]


def test_nothing_sent_times_out_at_open_timeout(udp_url):
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="no answer within 1 s"):
        sources.StreamSource(udp_url, reconnect=False, open_timeout=1).open()
    assert time.perf_counter() - t0 < 4
