"""The checks every kernel shares: the same sigma rule for nlm and bm3d (too small,
non-positive, non-finite, too large), float inputs that noise pushed past [0, 1]
accepted and restored, other scales refused with the fix, no NaN ever returned."""

from __future__ import annotations

import numpy as np
import pytest

from edgerestore.errors import InputError
from edgerestore.kernels import bm3d, nlm
from edgerestore.kernels.checks import MIN_SIGMA
from edgerestore.metrics import psnr

KERNELS = {"nlm": nlm, "bm3d": bm3d}


def _clean(shape=(48, 48)):
    """Smooth gradients and a bright and a black square: values reach 0 and 1, where
    unclipped noise goes past the range."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    img = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    img[4:16, 4:16] = 1.0
    img[30:44, 28:44] = 0.0
    return img


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("sigma", [0, -1, float("nan"), float("inf"), -float("inf"), 1e-20, 1e-12,
                                   MIN_SIGMA / 2, 256])
def test_every_kernel_refuses_the_same_bad_sigmas(kernel, sigma):
    with pytest.raises(InputError, match="sigma"):
        KERNELS[kernel](np.full((16, 16), 0.5, np.float32), sigma)


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_smallest_sigma_taken_returns_the_input(kernel):
    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    out = KERNELS[kernel](x, MIN_SIGMA)
    assert np.isfinite(out).all() and np.abs(out - x).max() < 1e-5


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("color", [False, True])
def test_unclipped_noisy_float_input_is_restored_and_clipped(kernel, color):
    rng = np.random.default_rng(3)
    clean = _clean()
    if color:
        clean = np.dstack([clean, clean[::-1], 1 - clean])
    noisy = (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32)
    assert noisy.min() < -0.15 and noisy.max() > 1.15  # noise pushed it well past [0, 1]
    out = KERNELS[kernel](noisy, 25)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert out.min() >= 0 and out.max() <= 1  # documented: the estimate is clipped
    assert psnr(clean, out) > psnr(clean, np.clip(noisy, 0, 1)) + 4


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("scale, fix", [(255, "divide 8-bit data by 255"), (65535, "divide 16-bit data by 65535")])
def test_values_on_another_scale_are_refused_with_the_fix(kernel, scale, fix):
    x = (_clean() * scale).astype(np.float32)
    with pytest.raises(InputError, match=f"not the \\[0, 1\\] scale.*{fix}"):
        KERNELS[kernel](x, 25)
