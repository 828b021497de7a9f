"""The packet filter of the video source (``edgerestore/runtime/video/bitstream.py``): H.264/
HEVC packets cut where bytes were zeroed, intact packets never changed; and the source
with it on a real H.264 clip made here: frames flagged ``corrupt`` from the damaged
packet to the next keyframe, everything else bit for bit as without the filter."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.runtime import sources
from edgerestore.runtime.video.bitstream import BEST_CONCEALMENT, cut_zero_runs, packet_filter

from .clips import write_av_clip


def nal(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def test_cut_zero_runs_length_prefixed():
    a, b = bytes([0x06, 1, 2, 3]), bytes([0x21]) + bytes(range(1, 60))
    assert cut_zero_runs(nal(a) + nal(b), 4) is None  # an intact packet is left alone
    damaged = b[:20] + bytes(12) + b[32:]
    assert cut_zero_runs(nal(a) + nal(damaged), 4) == nal(a) + nal(b[:20])


def test_cut_zero_runs_annex_b():
    body = bytes([0x21]) + bytes(range(1, 60))
    start = b"\0\0\0\1"
    assert cut_zero_runs(start + body + b"\0\0\0\1" + body, None) is None  # start codes are not damage
    assert cut_zero_runs(start + body[:30] + bytes(8) + body[38:], None) == start + body[:30]


def test_packet_filter_applies_to_h264_and_hevc_only():
    assert packet_filter("zero_runs", "h264", None) is not None
    assert packet_filter("zero_runs", "hevc", None) is not None
    assert packet_filter("zero_runs", "ffv1", None) is None  # zero bytes are valid data there
    with pytest.raises(ValueError, match="unknown packet filter 'x'; known: zero_runs"):
        packet_filter("x", "h264", None)


def moving_frames(n=30, w=160, h=96):
    rng = np.random.default_rng(7)
    big = rng.integers(0, 256, (h + 64, w + 200, 3), dtype=np.uint8)
    return [np.ascontiguousarray(big[16:16 + h, 3 * i:3 * i + w]) for i in range(n)]


def damaged_copy(clip, out, hit: int):
    """``clip`` with an eighth of packet ``hit`` (decode order) zeroed from its middle,
    every packet copied as it is otherwise."""
    import av

    with av.open(str(clip)) as inp, av.open(str(out), "w") as dst:
        vin = inp.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for k, p in enumerate(q for q in inp.demux(vin) if q.size):
            if k == hit:
                data = bytearray(bytes(p))
                n = len(data) // 8
                data[len(data) // 2:len(data) // 2 + n] = bytes(n)
                q = av.Packet(bytes(data))
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                p = q
            p.stream = vout
            dst.mux(p)
    return out


def read(clip, **options):
    with sources.VideoFileSource(clip, hardware="off", **options) as src:
        frames = [(f.image, f.corrupt) for f in src]
        return frames, src.packets_cut


def test_source_flags_the_damage_until_the_next_keyframe_and_leaves_the_rest(tmp_path):
    clip = write_av_clip(tmp_path / "c.mp4", moving_frames(), codec="libx264", pix_fmt="yuv420p",
                         options={"g": "10", "bf": "0", "crf": "18"})
    filt = {"packet_filter": "zero_runs", "concealment": BEST_CONCEALMENT}
    plain, _ = read(clip)
    intact, cut = read(clip, **filt)
    assert cut == 0 and all(c is False for _, c in intact)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(plain, intact))  # intact: bit for bit
    lossy = damaged_copy(clip, tmp_path / "lossy.mp4", hit=13)
    got, cut = read(lossy, **filt)
    assert cut == 1 and len(got) == 30
    assert [c for _, c in got] == [False] * 13 + [True] * 7 + [False] * 10  # 13 to 19: to the keyframe at 20
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(plain[:13] + plain[20:], got[:13] + got[20:]))
    assert not np.array_equal(got[13][0], plain[13][0])
