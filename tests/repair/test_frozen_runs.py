"""Frozen runs (issue #26): a run of k repeated frames is filled across the whole run by
interpolation between the last good frame before it and the first good frame after it;
static scenes and near-repeats of a compressed stream are not frozen; live mode adds no
latency."""

from __future__ import annotations

import numpy as np

from edgerestore.metrics import psnr
from edgerestore.repair import FrameRepairer, RepairConfig
from edgerestore.repair.frame_timing import is_frozen
from tests.repair.conftest import moving_scene


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(a, b, peak=255.0)


def _freeze(frames: list[np.ndarray], start: int, k: int) -> list[np.ndarray]:
    """Frames ``start .. start+k-1`` repeat frame ``start-1`` bit for bit (a stalled link)."""
    out = [f.copy() for f in frames]
    for j in range(start, start + k):
        out[j] = frames[start - 1].copy()
    return out


def test_every_frame_of_a_frozen_run_is_filled(dashcam):
    clean = dashcam[:10]
    frozen = _freeze(clean, 3, 4)                      # frames 3, 4, 5, 6 repeat frame 2
    rep = FrameRepairer(RepairConfig(fill_frozen=True))
    outs = rep.repair_clip(frozen)
    assert [o.index for o in outs] == list(range(10))
    r = rep.report()["frozen_frames"]
    assert r == {"count": 4, "filled": 4, "frames": [3, 4, 5, 6]}
    gains = []
    for j in range(3, 7):
        gains.append(_psnr(clean[j], outs[j].image) - _psnr(clean[j], frozen[j]))
        # (the first frame of the run is the closest to the frozen copy: the least gain)
        assert gains[-1] > 0.5 and _psnr(clean[j], outs[j].image) > 30, f"frame {j}: {gains}"
        assert outs[j].mask is not None and outs[j].mask.all()
    assert np.mean(gains) > 2.0, gains
    # the middle of the run is made from both ends: neither end's copy
    assert not np.array_equal(outs[4].image, outs[5].image)
    for j in (0, 1, 2, 7, 8, 9):
        assert np.array_equal(outs[j].image, frozen[j]), f"frame {j} changed"


def test_run_is_held_back_until_the_frame_after_it_arrives():
    frames = moving_scene(9)
    frozen = _freeze(frames, 3, 3)                     # 3, 4, 5 repeat 2
    # without the dead-pixel tracker, whose warm-up holds the first 24 frames of a clip
    rep = FrameRepairer(RepairConfig(fill_frozen=True, lookahead=1, detect=("packet_loss", "frozen", "dropped")))
    got = []
    for i, f in enumerate(frozen):
        got.append([o.index for o in rep.push(f)])
    # frame 2 comes out when 3 arrives; 3..5 wait for 6 (the end of the run), then come out at once
    assert got[3] == [2] and got[4] == [] and got[5] == [] and got[6] == [3, 4, 5] and got[7] == [6]
    assert got[8] == [7] and [o.index for o in rep.flush()] == [8]


def test_live_mode_adds_no_latency_and_leaves_frozen_frames():
    frames = moving_scene(8)
    frozen = _freeze(frames, 3, 2)
    rep = FrameRepairer(RepairConfig(fill_frozen=True, lookahead=0))
    for i, f in enumerate(frozen):
        outs = rep.push(f)
        assert [o.index for o in outs] == [i]            # every frame out at once
        assert np.array_equal(outs[0].image, f)          # nothing to interpolate towards
    assert rep.report()["frozen_frames"]["count"] == 2


def test_run_at_the_end_of_the_clip_and_a_clip_that_never_moves_are_left_alone():
    frames = moving_scene(6)
    frozen = _freeze(frames, 4, 2)                     # the clip ends frozen
    outs = FrameRepairer(RepairConfig(fill_frozen=True)).repair_clip(frozen)
    assert all(np.array_equal(o.image, f) for o, f in zip(outs, frozen))
    one = [np.full((48, 64, 3), 77, np.uint8) for _ in range(30)]   # every frame repeats
    rep = FrameRepairer(RepairConfig(fill_frozen=True, max_fill=5))
    outs = rep.repair_clip(one)
    assert [o.index for o in outs] == list(range(30))
    assert all(np.array_equal(o.image, f) for o, f in zip(outs, one))


def test_a_long_run_is_held_back_at_most_max_fill_frames():
    frames = moving_scene(16)
    frozen = _freeze(frames, 2, 10)                    # 2..11 repeat 1
    rep = FrameRepairer(RepairConfig(fill_frozen=True, max_fill=4, detect=("packet_loss", "frozen", "dropped")))
    last_out, lag = -1, 0
    for i, f in enumerate(frozen):
        for o in rep.push(f):
            last_out = o.index
        lag = max(lag, i - last_out)
    assert lag <= 5                                    # max_fill frames held, plus the look-ahead
    outs = rep.flush()
    r = rep.report()["frozen_frames"]
    assert r["count"] == 10 and 1 <= r["filled"] <= 4  # the last max_fill frames of the run
    assert np.array_equal(outs[-1].image, frozen[-1])


def test_static_scene_and_partial_updates_are_not_frozen():
    rng = np.random.default_rng(0)
    base = moving_scene(1)[0].astype(np.int16)
    a = np.clip(base + rng.normal(0, 1.0, base.shape), 0, 255).astype(np.uint8)
    b = np.clip(base + rng.normal(0, 1.0, base.shape), 0, 255).astype(np.uint8)
    assert not is_frozen(b, a)                         # a static camera: noise everywhere
    c = a.copy()
    c[10:14, 20:24] = 255 - c[10:14, 20:24]            # a compressed stream updated a few pixels
    assert np.mean(np.abs(c.astype(int) - a)) < 0.1
    assert not is_frozen(c, a)
    d = a.copy()
    d[::7, ::5] += 1                                   # a decoder's repeat, nearly bit for bit
    assert is_frozen(d, a)


def test_low_bit_rate_reencode_of_a_static_camera_is_not_filled(shared_data):
    """At 40 kbit/s H.264 updates only a few blocks of some frames of the pedestrians
    clip (a static camera): nearly a repeat, but what changed changed a lot. With
    ``fill_frozen`` nothing may change."""
    import cv2

    from edgerestore.repair import read_frames
    from edgerestore.repair.synth import h264_round_trip

    path = shared_data / "video" / "pedestrians_vtest.avi"
    frames = [cv2.resize(f, (480, 270), interpolation=cv2.INTER_AREA)
              for f in read_frames(path, count=20)]
    clip = h264_round_trip([f[:270 - 270 % 2] for f in frames], 40_000)
    outs = FrameRepairer(RepairConfig(fill_frozen=True)).repair_clip(clip)
    assert all(np.array_equal(o.image, f) for o, f in zip(outs, clip))
