"""The macroblock grid found from the damage itself (issue #26): a stream cropped by a few
pixels has its grid away from the top-left corner, and packet loss on it is found only
once the grid is."""

from __future__ import annotations

import numpy as np

from edgerestore.repair import DamageSpec, FrameRepairer, damage_clip
from edgerestore.repair.detect import detect_packet_loss
from edgerestore.repair.grid import GridTracker, from_grid, gray, grid_votes, to_grid

CROP_Y, CROP_X = 5, 3                       # the grid then starts at row 11, column 13
PHASE = ((-CROP_Y) % 16, (-CROP_X) % 16)


def _crop(frames):
    return [np.ascontiguousarray(f[CROP_Y:, CROP_X:]) for f in frames]


def _cropped_damage(dashcam, seed=4):
    """The dash-cam crop damaged on its own 16x16 grid (grey and smeared slices in every
    frame), then cropped by a few pixels at the top and left, with the true masks."""
    clip = damage_clip(dashcam, DamageSpec(slices_per_frame=2.0, smear_fraction=0.5), seed=seed)
    masks = [clip.damage_mask(i) for i in range(len(clip.frames))]
    return _crop(clip.frames), _crop(clip.clean), _crop(masks)


def test_votes_by_hand_point_at_the_edges_of_a_new_flat_block():
    rng = np.random.default_rng(0)
    prev = rng.integers(0, 256, (80, 96), dtype=np.uint8)
    img = rng.integers(0, 256, (80, 96), dtype=np.uint8)
    img[21:37, 39:55] = 200                  # a concealed block: rows 21.., columns 39..
    vy, vx = grid_votes(img, prev)
    assert int(np.argmax(vy)) == 21 % 16 and int(np.argmax(vx)) == 39 % 16
    assert vy[21 % 16] >= 1 and vx[39 % 16] >= 1
    # the same block in the previous frame too (a static flat logo): no evidence
    prev[21:37, 39:55] = 200
    vy, vx = grid_votes(img, prev)
    assert vy[21 % 16] < 1 and vx[39 % 16] < 1


def test_to_grid_and_back():
    img = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)
    padded = to_grid(img, (11, 13))
    assert padded.shape == (30 + 5, 40 + 3)
    assert np.array_equal(padded[5:, 3:], img)
    assert np.array_equal(from_grid(padded, (11, 13)), img)
    assert to_grid(img, (0, 0)) is img


def test_grid_of_a_cropped_clip_is_found_from_its_damage(dashcam):
    damaged, _, _ = _cropped_damage(dashcam)
    tracker = GridTracker()
    phases = [tracker.update(f) for f in damaged]
    assert phases[-1] == PHASE
    assert phases.index(PHASE) <= 4, phases
    assert all(p == PHASE for p in phases[phases.index(PHASE):])
    # the clean clip, cropped or not, gives no evidence: the grid stays at the corner
    for clean in (dashcam, _crop(dashcam)):
        t = GridTracker()
        assert [t.update(f) for f in clean][-1] == (0, 0)
        assert t.votes_y.max() < 1 and t.votes_x.max() < 1


def test_packet_loss_on_a_cropped_clip_is_found_once_the_grid_is(dashcam):
    damaged, clean, masks = _cropped_damage(dashcam)
    rep = FrameRepairer()
    outs = rep.repair_clip(damaged)
    settled = next(i for i in range(len(damaged)) if _phase_after(damaged, i) == PHASE)
    hit = miss = outside = 0
    for o, m in zip(outs[settled + 1:], masks[settled + 1:]):
        flagged = o.mask if o.mask is not None else np.zeros(m.shape, bool)
        hit += int((flagged & m).sum())
        miss += int((~flagged & m).sum())
        outside += int((flagged & ~m).sum())
    assert hit / max(hit + miss, 1) > 0.8, (hit, miss)
    assert outside <= 0.05 * hit
    # the same frames searched on a grid at the corner: only the blocks inside slices
    # at least two macroblocks tall or wide
    corner = sum(int((detect_packet_loss(damaged[i], [clean[i - 1], damaged[i + 1]]).mask & masks[i]).sum())
                 for i in range(settled + 1, len(damaged) - 1))
    grid = sum(int((detect_packet_loss(damaged[i], [clean[i - 1], damaged[i + 1]], phase=PHASE).mask
                    & masks[i]).sum()) for i in range(settled + 1, len(damaged) - 1))
    assert corner < 0.5 * grid


def _phase_after(frames, i):
    t = GridTracker()
    for f in frames[: i + 1]:
        t.update(f)
    return t.phase


def test_gray_keeps_a_gray_frame():
    g = np.zeros((20, 20), np.uint8)
    assert gray(g) is g
