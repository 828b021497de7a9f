"""The SR training degradations (edgerestore.training.degrade): deterministic by seed,
8-bit LR of the right shape, and each degradation really applied (checked against
OpenCV/NumPy references or a measurable effect on synthetic HR). No torch."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.resize import downscale
from edgerestore.training.degrade import KERNELS, DegradationMix, Degrader, quantize

ONLY_MATLAB = (1.0, 0, 0, 0, 0, 0)


def only(**fields) -> DegradationMix:
    """A mix with nothing random but what ``fields`` turn on (no clean share)."""
    base = dict(clean_share=0.0, kernel_weights=ONLY_MATLAB, blur_p=0.0, motion_p=0.0, noise_p=0.0,
                jpeg_p=0.0, h264_p=0.0)
    base.update(fields)
    return DegradationMix(**base)


def noise_hr(n=4, size=96, seed=0):
    return [np.random.default_rng(seed + i).random((size, size), dtype=np.float32) for i in range(n)]


def on_8bit_grid(img):
    return np.array_equal(img, np.rint(img * 255) / 255)


def test_same_seed_same_lr_images_and_state_resumes_them():
    hrs = noise_hr(8)
    a, plans = Degrader(seed=5).degrade_batch(hrs, 3)
    b, _ = Degrader(seed=5).degrade_batch(hrs, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(p.steps != ["down_matlab"] for p in plans)  # the default mix degrades some
    c, _ = Degrader(seed=6).degrade_batch(hrs, 3)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    d = Degrader(seed=5)
    d.degrade_batch(hrs, 3)
    saved = d.state()
    nxt, _ = d.degrade_batch(hrs, 2)
    e = Degrader(seed=99)
    e.set_state(saved)
    again, _ = e.degrade_batch(hrs, 2)
    assert all(np.array_equal(x, y) for x, y in zip(nxt, again))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_images_are_8bit_float32_of_the_scaled_shape(scale):
    hrs = noise_hr(24, size=24 * scale)
    los, plans = Degrader(DegradationMix(clean_share=0.0, jpeg_p=0.3, h264_p=0.3), seed=scale).degrade_batch(hrs, scale)
    kinds = {p.kernel for p in plans}
    assert len(kinds) >= 3
    for lo in los:
        assert lo.shape == (24, 24) and lo.dtype == np.float32
        assert lo.min() >= 0 and lo.max() <= 1 and on_8bit_grid(lo)


def test_clean_share_gives_matlab_bicubic_rounded_to_8_bits():
    hrs = noise_hr(3)
    los, plans = Degrader(DegradationMix(clean_share=1.0), seed=1).degrade_batch(hrs, 3)
    for hr, lo, p in zip(hrs, los, plans):
        assert p.steps == ["down_matlab"]
        np.testing.assert_array_equal(lo, quantize(downscale(hr, 3)))


def test_aliased_kernels_keep_more_high_frequency_energy_than_antialiased_ones():
    """White-noise HR at x4: MATLAB bicubic and INTER_AREA average a 16-pixel-wide window
    (std / ~4 or less); OpenCV's INTER_CUBIC/LINEAR/NEAREST sample without antialiasing."""
    hr = noise_hr(1, size=256)[0]
    std = {}
    for i, k in enumerate(KERNELS):
        w = [0.0] * len(KERNELS)
        w[i] = 1.0
        (lo,), (p,) = Degrader(only(kernel_weights=tuple(w)), seed=0).degrade_batch([hr], 4)
        assert p.steps == [f"down_{k}"]
        std[k] = float(lo.std())
    assert std["matlab"] < 0.1 and std["area"] < 0.1
    for k in ("cubic", "linear", "nearest"):
        assert std[k] > 1.5 * max(std["matlab"], std["area"]), std


def test_blur_lowers_the_lr_detail():
    hrs = noise_hr(6)
    plain, _ = Degrader(only(), seed=0).degrade_batch(hrs, 2)
    for field in ("blur_p", "motion_p"):
        blurred, plans = Degrader(only(**{field: 1.0}), seed=0).degrade_batch(hrs, 2)
        assert all(any(s.startswith("blur") for s in p.steps) for p in plans)
        assert np.mean([b.std() for b in blurred]) < 0.9 * np.mean([c.std() for c in plain])


def test_noise_is_added_and_poisson_gaussian_grows_with_the_signal():
    dark, bright = np.full((96, 96), 0.1, np.float32), np.full((96, 96), 0.8, np.float32)
    (lo,), (p,) = Degrader(only(noise_p=1.0, poisson_share=0.0, noise_sigma=(8.0, 8.0)), seed=0).degrade_batch([dark], 2)
    assert p.steps == ["down_matlab", "noise_gauss"]
    assert lo.std() * 255 == pytest.approx(8.0, rel=0.15)
    mix = only(noise_p=1.0, poisson_share=1.0, noise_sigma=(8.0, 8.0))
    (lo_d, lo_b), plans = Degrader(mix, seed=0).degrade_batch([dark, bright], 2)
    assert [p.steps[-1] for p in plans] == ["noise_poisson"] * 2
    assert lo_b.std() > 1.5 * lo_d.std()


def test_jpeg_is_opencvs_round_trip_of_the_8bit_lr():
    import cv2

    hrs = noise_hr(2)
    plain, _ = Degrader(only(), seed=0).degrade_batch(hrs, 2)
    coded, plans = Degrader(only(jpeg_p=1.0, jpeg_quality=(40, 40)), seed=0).degrade_batch(hrs, 2)
    for a, b, p in zip(plain, coded, plans):
        assert p.steps[-1] == "jpeg" and p.codec == ("jpeg", 40, "")
        ok, buf = cv2.imencode(".jpg", np.rint(a * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 40])
        np.testing.assert_array_equal(b, cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) / np.float32(255))
        assert np.abs(a - b).mean() > 2 / 255


def test_h264_codes_the_batch_as_one_clip_and_is_deterministic():
    hrs = noise_hr(5, size=90)  # x3: 30x30 LR, an even size; odd sizes are padded (next test)
    plain, _ = Degrader(only(), seed=0).degrade_batch(hrs, 3)
    mix = only(h264_p=1.0, h264_crf=(38, 38))
    coded, plans = Degrader(mix, seed=0).degrade_batch(hrs, 3)
    again, _ = Degrader(mix, seed=0).degrade_batch(hrs, 3)
    for a, b, c, p in zip(plain, coded, again, plans):
        assert p.steps[-1] == "h264" and p.codec[:2] == ("h264", 38)
        assert b.shape == a.shape and on_8bit_grid(b)
        assert np.abs(a - b).mean() > 4 / 255  # CRF 38 on noise: heavy loss
        np.testing.assert_array_equal(b, c)


def test_h264_pads_odd_sizes_and_crops_back():
    from edgerestore.training.degrade import h264

    frames = [np.full((15, 21), v, np.float32) for v in (0.2, 0.6)]
    out = h264(frames, 18)
    assert [o.shape for o in out] == [(15, 21)] * 2
    assert [round(float(o.mean()), 1) for o in out] == [0.2, 0.6]  # flat frames survive CRF 18
