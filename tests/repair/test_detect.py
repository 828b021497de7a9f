import numpy as np

from edgerestore.repair import DamageSpec, DetectConfig, damage_clip
from edgerestore.repair.dead_pixels import DeadPixelTracker
from edgerestore.repair.detect import block_smear_metrics, detect_packet_loss
from edgerestore.repair.frame_timing import GapDetector, is_frozen


def test_smear_metrics_by_hand():
    img = np.zeros((20, 16, 3), np.uint8)
    img[:16] = np.arange(16, dtype=np.uint8)[None, :, None] * 10   # vertical smear: columns constant
    img[16:] = 7
    mv, mh = block_smear_metrics(img, 16)
    assert mv.shape == (2, 1)
    assert mv[0, 0] == 0 and mh[0, 0] == 10.0
    assert mv[1, 0] == 0 and mh[1, 0] == 0   # the partial edge block is flat


def test_packet_loss_found_on_real_frames_and_nothing_on_clean_ones(dashcam):
    clip = damage_clip(dashcam, DamageSpec(slices_per_frame=2), seed=11)
    tp = fp = fn = 0
    for i in range(1, len(dashcam) - 1):
        clean = detect_packet_loss(dashcam[i], [dashcam[i - 1], dashcam[i + 1]])
        assert clean.count <= 1, f"frame {i}: {clean.count} false blocks on a clean frame"
        got = detect_packet_loss(clip.frames[i], [clip.clean[i - 1], clip.frames[i + 1]]).mask
        truth = clip.masks["packet_loss"][i]
        err = np.abs(clip.frames[i].astype(int) - clip.clean[i].astype(int)).mean(axis=2)
        visible = truth & (err > 5)
        tp += int((got & visible).sum())
        fn += int((~got & visible).sum())
        fp += int((got & ~truth).sum())
    assert tp > 0
    assert tp / (tp + fn) > 0.9
    assert fp / (tp + fp) < 0.1


def test_one_frame_uses_the_block_border():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (np.indices((64, 64)).sum(axis=0) * 3 % 200)[..., None].astype(np.uint8)  # diagonal ramps
    flat = img.copy()
    assert detect_packet_loss(flat, []).count == 0
    img[16:32, 16:48] = 128
    d = detect_packet_loss(img, [])
    assert d.count == 2 and d.mask[16:32, 16:48].all() and d.flat == 2


def test_dead_pixels_need_to_stay_stuck(scene):
    frames = [f.copy() for f in scene]
    for f in frames:
        f[10, 20] = 255
        f[40, 70] = 0
    tr = DeadPixelTracker(DetectConfig(dead_frames=3))
    for k, f in enumerate(frames):
        tr.update(f)
        got = set(zip(*np.nonzero(tr.mask())))
        if k >= 2:
            assert got == {(10, 20), (40, 70)}
    # a pixel at 255 in one frame only is not dead
    tr2 = DeadPixelTracker()
    for k, f in enumerate(scene):
        g = f.copy()
        if k == 2:
            g[30, 30] = 255
        tr2.update(g)
    assert not tr2.mask().any()


def test_frozen_and_gaps():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 90
    assert is_frozen(a, a.copy())
    assert not is_frozen(b, a, tol=0.01)
    assert not is_frozen(a, None)
    g = GapDetector()
    steps = [g.step(t) for t in (0.0, 0.04, 0.08, 0.12, 0.24, 0.28)]
    assert steps == [0, 0, 0, 0, 2, 0]
    g = GapDetector(fps=25)
    assert [g.step(t) for t in (0.0, 0.08, 0.12)] == [0, 1, 0]


def test_one_frame_grey_block_inside_a_flat_sky():
    # a smooth sky: every block is flat-ish, so the block has no textured neighbour to
    # step into; the run must still be found (its whole border steps), the sky not
    rows = (170 + 0.15 * np.arange(96))[:, None, None]
    sky = np.repeat(np.repeat(rows, 160, axis=1), 3, axis=2).round().astype(np.uint8)
    img = sky.copy()
    img[32:48, 48:112] = 128
    d = detect_packet_loss(img, [])
    expected = np.zeros(img.shape[:2], bool)
    expected[32:48, 48:112] = True
    assert np.array_equal(d.mask, expected)
    assert detect_packet_loss(sky, []).count == 0


def test_scores_and_threshold_trade_recall_for_precision(scene):
    import pytest

    from edgerestore.errors import InputError
    from edgerestore.repair.stage import RepairStage

    frames = [f.copy() for f in scene]
    frames[2][16:32, 32:80] = 128                 # three lost blocks
    found = detect_packet_loss(frames[2], [frames[1], frames[3]])
    assert found.count == 3 and len(found.scores) == 3 and (found.scores >= 1.0).all()
    # a threshold above the strongest score finds nothing; the scores do not depend on it
    strict = DetectConfig(threshold=float(found.scores.max()) * 1.01)
    assert detect_packet_loss(frames[2], [frames[1], frames[3]], strict).count == 0
    with pytest.raises(InputError, match="threshold"):
        DetectConfig(threshold=0)
    with pytest.raises(InputError, match="threshold"):
        RepairStage(threshold=-1)


def test_a_flashing_region_is_a_scene_event_not_a_lost_block():
    from edgerestore.repair.detect import scene_events
    from tests.repair.clean_scenes import flashing

    frames = flashing()
    lit = frames[1]
    # the lamp's and the wall's blocks are new against both neighbours, but so are the
    # blocks around them (the flash has its own edges, not the macroblock grid's)
    assert detect_packet_loss(lit, [frames[0], frames[2]]).count == 0
    every = np.ones(((lit.shape[0] + 15) // 16, (lit.shape[1] + 15) // 16), bool)
    every[:] = False
    every[3, 4] = True                            # inside the lit wall
    assert scene_events(lit, [frames[0], frames[2]], every)[3, 4]
