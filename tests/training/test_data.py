"""Training data helpers that need no PyTorch."""

import numpy as np


def test_chroma_like_patches_are_low_contrast_around_mid_gray_and_share_0_draws_nothing():
    from edgerestore.training.data import CHROMA_CONTRAST, CHROMA_OFFSET, chroma_like

    rng = np.random.default_rng(3)
    clean = rng.uniform(0.1, 0.9, (64, 1, 16, 16)).astype(np.float32)
    before = rng.bit_generator.state
    assert chroma_like(clean, 0.0, rng) is clean and rng.bit_generator.state == before
    out = chroma_like(clean, 1.0, np.random.default_rng(4))
    ratio = out.std(axis=(1, 2, 3)) / clean.std(axis=(1, 2, 3))
    assert CHROMA_CONTRAST[0] * 0.999 <= ratio.min() and ratio.max() <= CHROMA_CONTRAST[1] * 1.001
    assert np.abs(out.mean(axis=(1, 2, 3)) - 0.5).max() <= CHROMA_OFFSET + 1e-6
    half = chroma_like(clean, 0.5, np.random.default_rng(5))
    changed = (half != clean).any(axis=(1, 2, 3))
    assert 16 <= changed.sum() <= 48                      # about half, seeded
