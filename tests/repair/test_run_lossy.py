"""Real packet loss through ``edgerestore run`` (issue #26): the dash-cam clip's own H.264
packets, bytes zeroed in the middle of one packet per GOP (drawn here, as a lossy link
loses them), written back into an MP4; ``run --pipeline repair`` (the source cuts the damaged
packets and decodes with FFmpeg's best concealment) against ``run --pipeline none``
(FFmpeg's default decode), both into lossless FFV1, compared with the clean decode."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.cli import main
from edgerestore.metrics import psnr
from edgerestore.runtime import sources

PACKETS = 180  # six GOPs of 30


def copy_packets(src, dst, damage: dict[int, tuple[int, int]]):
    """The first PACKETS video packets of ``src`` into ``dst``; packet k in ``damage``
    gets bytes [a, b) zeroed."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for k, p in enumerate(q for q in inp.demux(vin) if q.size):
            if k >= PACKETS:
                break
            if k in damage:
                a, b = damage[k]
                data = bytearray(bytes(p))
                data[a:b] = bytes(b - a)
                q = av.Packet(bytes(data))
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                p = q
            p.stream = vout
            out.mux(p)
    return dst


def decode(path):
    with sources.VideoFileSource(path, hardware="off") as src:
        return [f.image for f in src]


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory):
    real = shared_data / "video" / "dashcam_solidWhiteRight.mp4"
    if not real.is_file():
        pytest.skip(f"{real} not found")
    folder = tmp_path_factory.mktemp("lossy")
    clean = copy_packets(real, folder / "clean.mp4", {})
    import av

    with av.open(str(clean)) as c:
        sizes = [p.size for p in c.demux(video=0) if p.size]
    rng = np.random.default_rng(26)
    damage = {}
    for gop in range(PACKETS // 30):  # one P frame per GOP (a keyframe every 30, no B frames)
        k = 30 * gop + int(rng.integers(1, 30))
        start = int(rng.integers(sizes[k] // 4, 3 * sizes[k] // 4))
        damage[k] = (start, min(sizes[k], start + max(16, sizes[k] // 8)))
    return clean, copy_packets(real, folder / "lossy.mp4", damage), folder


def test_run_repair_beats_run_none_on_real_packet_loss(clips, capsys):
    clean_path, lossy, folder = clips
    clean = decode(clean_path)
    outs = {}
    for pipeline in ("none", "repair"):
        out = folder / f"{pipeline}.mkv"
        rc = main(["run", str(lossy), "-o", str(out), "--lossless", "--pipeline", pipeline, "--no-progress"])
        assert rc == 0, capsys.readouterr().err
        outs[pipeline] = decode(out)
    assert len(outs["none"]) == len(outs["repair"]) == len(clean) == PACKETS
    damaged = [i for i in range(PACKETS) if not np.array_equal(outs["none"][i], clean[i])]
    assert damaged and damaged[0] == 25  # the first damaged packet
    # frames before the first loss: bit for bit
    assert all(np.array_equal(outs["repair"][i], clean[i]) for i in range(damaged[0]))
    none = [psnr(clean[i], outs["none"][i], peak=255.0) for i in damaged]
    repair = [psnr(clean[i], outs["repair"][i], peak=255.0) for i in damaged]
    assert np.mean(repair) > np.mean(none) + 2.0, (np.mean(none), np.mean(repair))
    assert min(repair) > min(none)
