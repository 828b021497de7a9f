"""edgerestore.metrics.psnr against scikit-image's, argument order (reference, restored)."""

import numpy as np
import pytest

from edgerestore.metrics import PSNR_CAP_DB, psnr


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(3)
    for shape in ((17, 23), (8, 9, 3)):
        ref = rng.random(shape)
        out = np.clip(ref + rng.normal(0, 0.05, shape), 0, 1)
        assert psnr(ref, out) == pytest.approx(peak_signal_noise_ratio(ref, out, data_range=1.0), abs=1e-9)
        assert psnr(ref * 255, out * 255, peak=255.0) == pytest.approx(psnr(ref, out), abs=1e-9)


def test_restored_is_clipped_reference_is_not_and_order_matters():
    ref = np.full((4, 4), 0.9)
    out = np.full((4, 4), 1.4)  # clipped to 1.0: error 0.1
    assert psnr(ref, out) == pytest.approx(20.0)
    assert psnr(out, ref) != pytest.approx(20.0)


def test_identical_images_give_the_cap_and_shapes_must_match():
    ref = np.zeros((3, 3))
    assert psnr(ref, ref) == PSNR_CAP_DB
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(ref, np.zeros((3, 4)))
