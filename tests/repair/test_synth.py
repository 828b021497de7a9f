import numpy as np
import pytest

from edgerestore.errors import InputError
from edgerestore.repair import DamageSpec, damage_clip
from tests.repair.conftest import moving_scene


def test_same_seed_same_damage_and_masks_match_the_changes():
    frames = moving_scene(8)
    spec = DamageSpec(slices_per_frame=2, dead_pixels=10, frozen_rate=0.2, drop_rate=0.2)
    a = damage_clip(frames, spec, seed=1)
    b = damage_clip(frames, spec, seed=1)
    c = damage_clip(frames, spec, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
    assert any(not np.array_equal(x, y) for x, y in zip(a.frames, c.frames)) or a.dropped != c.dropped
    for i, img in enumerate(a.frames):
        if i in a.frozen:
            assert np.array_equal(img, a.frames[i - 1])
            continue
        changed = np.any(img != a.clean[i], axis=2)
        assert not (changed & ~a.damage_mask(i)).any()  # nothing changes outside the truth
    assert len(a.frames) + len(a.dropped) == len(frames)
    assert sum(a.gaps.values()) == len(a.dropped)


def test_slices_are_macroblock_runs_that_do_not_repeat_in_the_next_frame():
    frames = moving_scene(10, 128, 192)
    clip = damage_clip(frames, DamageSpec(slices_per_frame=3), seed=4)
    assert any(m.any() for m in clip.masks["packet_loss"])
    for i, m in enumerate(clip.masks["packet_loss"]):
        blocks = m.reshape(8, 16, 12, 16)
        per_block = blocks.mean(axis=(1, 3))
        assert set(np.unique(per_block)) <= {0.0, 1.0}  # whole 16x16 blocks only
        if i:
            assert not (m & clip.masks["packet_loss"][i - 1]).any()


def test_bad_input():
    with pytest.raises(InputError):
        damage_clip([])
    with pytest.raises(InputError):
        damage_clip([np.zeros((8, 8, 3), np.float32)])
