"""BM3D: transforms, agreement with the float64 reference, properties, bad input, CUDA.

Tolerances (stated, and why):

* CPU kernel vs reference, per stage: |diff| <= 1e-5. Inputs are quantised to k/256 so
  that block distances are exact in float32 and float64 alike (identical matches);
  what is left is float32 rounding of transforms and weights (measured ~5e-7).
* CUDA (simulator here, GPU when present) vs reference: the same 1e-5.
* CUDA on a GPU vs CPU end to end (not quantised, atomics): mean |diff| <= 1e-4 and
  PSNR within 0.01 dB (a near-tie in matching may pick another block).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import edgerestore.kernels.bm3d_filter as B
import edgerestore.kernels.transforms as T
from edgerestore.errors import BackendError, InputError
from edgerestore.kernels import bm3d
from edgerestore.metrics import psnr
from tests.kernels.bm3d_reference import bm3d_stage_reference, haar_matrix_recursive

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def smooth_image(h, w, nc=1):
    yy, xx = np.mgrid[:h, :w]
    img = 0.5 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    return np.repeat(img[None], nc, axis=0)


def quantised_noisy(rng, h, w, nc, sigma):
    z = smooth_image(h, w, nc) + rng.normal(0, sigma / 255, (nc, h, w))
    return (np.round(np.clip(z, 0, 1) * 256) / 256).astype(np.float32)


SMALL = B.BM3DProfile(window_ht=11, window_wiener=11)


# --- transforms -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 8, 11])
def test_dct_matrix_is_scipy_orthonormal_dct(n, rng):
    from scipy.fft import dct

    t = T.dct_matrix(n)
    x = rng.normal(size=n)
    np.testing.assert_allclose(t @ x, dct(x, norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(t @ t.T, np.eye(n), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_haar_is_orthonormal_and_inverts(n, rng):
    h = T.haar_matrix(n)
    np.testing.assert_allclose(h @ h.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(h, haar_matrix_recursive(n), atol=1e-12)
    x = rng.normal(size=(n, 3, 3))
    np.testing.assert_allclose(T.haar_inverse(T.haar_forward(x)), x, atol=1e-12)


def test_haar_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        T.haar_forward(np.zeros(6))


def test_bior15_table_is_pywavelets_bior15_and_inverts():
    pywt = pytest.importorskip("pywt")
    n = 8
    ref = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "level too high": intended
            ref[:, i] = np.hstack(pywt.wavedec(e, "bior1.5", mode="periodization", level=3))
    tf, ti = T.transform_matrix("bior1.5", 8)
    for row, r in zip(tf, ref):  # same basis functions up to a per-row scale
        k = np.dot(row, r) / np.dot(r, r)
        np.testing.assert_allclose(row, k * r, atol=1e-9)
        assert 0.95 < abs(k) <= 1.0 + 1e-9
    np.testing.assert_allclose(tf @ ti, np.eye(8), atol=1e-12)
    assert not np.allclose(T.row_norms(tf), 1.0)  # not orthonormal: thresholds must scale


def test_kaiser_window_is_the_reference_window():
    w = T.kaiser_window(8, 2.0)
    assert w[0, 0] == pytest.approx(0.1924, abs=1e-4)  # value tabulated in the bm3d package
    assert w[3, 3] == pytest.approx(0.9718, abs=1e-4)
    np.testing.assert_allclose(w, w.T)


# --- agreement with the float64 reference ------------------------------------------------


@pytest.mark.parametrize("sigma", [15, 40])
@pytest.mark.parametrize("nc", [1, 3])
def test_cpu_stages_match_float64_reference(rng, sigma, nc):
    z = quantised_noisy(rng, 24, 29, nc, sigma)
    p1 = B.stage_params(SMALL, sigma, wiener=False)
    basic = B.run_stage(z, z, p1)
    np.testing.assert_allclose(basic, bm3d_stage_reference(z, z, p1), atol=1e-5, rtol=0)
    pilot = (np.round(basic * 256) / 256).astype(np.float32)
    p2 = B.stage_params(SMALL, sigma, wiener=True)
    np.testing.assert_allclose(B.run_stage(z, pilot, p2), bm3d_stage_reference(z, pilot, p2),
                               atol=1e-5, rtol=0)


def test_cpu_matches_reference_with_dct_and_odd_sizes(rng):
    prof = B.BM3DProfile(block_ht=5, step_ht=2, group_ht=8, window_ht=7, transform_ht="dct",
                         block_wiener=6, step_wiener=4, group_wiener=4, window_wiener=9)
    z = quantised_noisy(rng, 19, 13, 1, 30)
    for wiener in (False, True):
        p = B.stage_params(prof, 30, wiener)
        np.testing.assert_allclose(B.run_stage(z, z, p), bm3d_stage_reference(z, z, p),
                                   atol=1e-5, rtol=0)


def test_reference_detects_a_broken_kernel(rng):
    """The comparison above can fail: a wrong threshold changes the result visibly."""
    z = quantised_noisy(rng, 24, 24, 1, 25)
    p = B.stage_params(SMALL, 25, wiener=False)
    wrong = B.stage_params(SMALL.replace(lambda_ht=2.0), 25, wiener=False)
    assert np.abs(B.run_stage(z, z, wrong) - bm3d_stage_reference(z, z, p)).max() > 1e-3


CUDA_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import edgerestore.kernels.bm3d_filter as B
    from tests.kernels.bm3d_reference import bm3d_stage_reference
    from tests.kernels.test_bm3d import quantised_noisy
    cfg = json.loads(sys.argv[1])
    prof = B.BM3DProfile(**cfg["profile"])
    rng = np.random.default_rng(7)
    out = {}
    for nc in cfg["channels"]:
        z = quantised_noisy(rng, cfg["size"], cfg["size"], nc, 25)
        p1 = B.stage_params(prof, 25, False)
        basic = B.run_stage(z, z, p1, device="cuda")
        out[f"hard{nc}"] = float(np.abs(basic - bm3d_stage_reference(z, z, p1)).max())
        pilot = (np.round(basic * 256) / 256).astype(np.float32)
        p2 = B.stage_params(prof, 25, True)
        out[f"wiener{nc}"] = float(np.abs(B.run_stage(z, pilot, p2, device="cuda")
                                          - bm3d_stage_reference(z, pilot, p2)).max())
    print("RESULT" + json.dumps(out))
    """
)


def _check_cuda_simulator_against_reference(cfg: dict, timeout: float) -> None:
    """Both stages of ``B.run_stage(..., device="cuda")`` under the CUDA simulator (a
    subprocess: the simulator is chosen at numba's import) against the float64
    reference: max |diff| <= 1e-5 per stage and channel count."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", CUDA_SCRIPT, json.dumps(cfg)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    diffs = json.loads(line[len("RESULT"):])
    assert set(diffs) == {f"{s}{nc}" for s in ("hard", "wiener") for nc in cfg["channels"]}
    for key, d in diffs.items():
        assert d <= 1e-5, (key, d)


def test_cuda_simulator_stages_match_float64_reference_fast():
    # The default run's check of the CUDA code (the simulator runs every CUDA thread as
    # a Python thread): one 12x12 gray image, the default 8x8 blocks and transforms,
    # four reference blocks with a 5x5 search, both stages.
    _check_cuda_simulator_against_reference(
        {"size": 12, "channels": [1],
         "profile": dict(window_ht=5, window_wiener=5, group_ht=4, group_wiener=4,
                         step_ht=4, step_wiener=4)},
        timeout=120)


@pytest.mark.slow
def test_cuda_simulator_stages_match_float64_reference():
    _check_cuda_simulator_against_reference(
        {"size": 16, "channels": [1, 3],
         "profile": dict(window_ht=5, window_wiener=5, group_ht=4, group_wiener=8,
                         step_ht=4, step_wiener=4)},
        timeout=600)


@pytest.mark.gpu
def test_cuda_matches_cpu_on_gpu(rng):
    clean = smooth_image(96, 128)[0]
    x = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    q = (np.round(x * 256) / 256).astype(np.float32)
    np.testing.assert_allclose(bm3d(q, 25, stage="hard", device="cuda"),
                               bm3d(q, 25, stage="hard"), atol=1e-5)
    a, b = bm3d(x, 25, device="cuda"), bm3d(x, 25)
    assert np.abs(a - b).mean() <= 1e-4
    assert abs(psnr(clean, a) - psnr(clean, b)) <= 0.01
    col = np.repeat(x[..., None], 3, axis=2)
    assert np.abs(bm3d(col, 25, device="cuda") - bm3d(col, 25)).mean() <= 1e-4


def test_cuda_without_gpu_is_a_clear_error():
    from numba import cuda

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is present")
    with pytest.raises(BackendError, match="device='cpu'"):
        bm3d(np.full((16, 16), 0.5, np.float32), 25, device="cuda")


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_constant_image_stays_constant(value):
    for shape in ((20, 27), (20, 27, 3)):
        img = np.full(shape, value, np.float32)
        for stage in ("hard", "final"):
            out = bm3d(img, 25, stage=stage)
            assert out.shape == shape and out.dtype == np.float32
            np.testing.assert_allclose(out, value, atol=1e-5)


def _crops(shared_data, n_per_set=4, size=64):
    import cv2

    crops = []
    for name in ("Set12", "BSD68"):
        for f in sorted((shared_data / "testsets" / name).glob("*.png"))[:n_per_set]:
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255
            y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
            crops.append((f"{name}/{f.name}", img[y:y + size, x:x + size]))
    return crops


@pytest.mark.parametrize("sigma", [15, 50])
def test_psnr_rises_on_every_image_tried(shared_data, sigma):
    for idx, (name, clean) in enumerate(_crops(shared_data)):
        rng = np.random.default_rng(idx)
        noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
        hard = bm3d(noisy, sigma, stage="hard")
        final = bm3d(noisy, sigma)
        assert psnr(clean, hard) > psnr(clean, noisy) + 3, name
        assert psnr(clean, final) > psnr(clean, noisy) + 3, name


def test_colour_psnr_rises_and_wiener_helps(shared_data):
    import cv2

    clean = cv2.imread(str(shared_data / "testsets" / "Set5" / "butterfly_GT.bmp"))
    h, w = clean.shape[:2]
    clean = clean[h // 2 - 32:h // 2 + 32, w // 2 - 32:w // 2 + 32].astype(np.float64) / 255
    rng = np.random.default_rng(3)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    hard, final = bm3d(noisy, 25, stage="hard"), bm3d(noisy, 25)
    assert psnr(clean, hard) > psnr(clean, noisy) + 4
    assert psnr(clean, final) > psnr(clean, hard)


def test_float64_input_gives_the_float32_result(rng):
    x = np.clip(smooth_image(24, 24)[0] + rng.normal(0, 0.1, (24, 24)), 0, 1)
    np.testing.assert_array_equal(bm3d(x, 25), bm3d(x.astype(np.float32), 25))


def test_minimum_size_and_non_square_images(rng):
    for shape in ((8, 8), (8, 41), (33, 9, 3)):
        x = rng.random(shape, dtype=np.float32)
        out = bm3d(x, 30)
        assert out.shape == shape and np.isfinite(out).all()
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_sigma_none_uses_the_noise_estimate(rng):
    from edgerestore.kernels import estimate_sigma

    x = np.clip(smooth_image(40, 40)[0] + rng.normal(0, 20 / 255, (40, 40)), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(bm3d(x), bm3d(x, estimate_sigma(x)))


def test_sigma_none_on_a_flat_image_returns_it():
    x = np.full((16, 16), 0.25, np.float32)
    np.testing.assert_array_equal(bm3d(x), x)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "img, match",
    [
        (np.full((16, 16), np.nan, np.float32), "NaN or Inf"),
        (np.where(np.eye(16) > 0, np.inf, 0.5).astype(np.float32), "NaN or Inf"),
        (np.zeros((0, 0), np.float32), "at least 8x8"),
        (np.zeros((7, 30), np.float32), "at least 8x8"),
        (np.zeros((1, 1), np.float32), "at least 8x8"),
        (np.zeros((16, 16), np.uint8), "integer dtype"),
        (np.full((16, 16), 200.0, np.float32), "not the \\[0, 1\\] scale"),
        (np.zeros((16, 16, 4), np.float32), "H x W x 3"),
        (np.zeros((16,), np.float32), "H x W"),
        ([[0.5] * 16] * 16, "numpy array"),
    ],
)
def test_bad_images_raise(img, match):
    with pytest.raises(InputError, match=match):
        bm3d(img, 25)


@pytest.mark.parametrize("sigma, match", [(0, "> 0"), (-5, "> 0"), (float("nan"), "> 0"),
                                          (1000, "absurd"), ("abc", "number")])
def test_bad_sigma_raises(sigma, match):
    with pytest.raises(InputError, match=match):
        bm3d(np.full((16, 16), 0.5, np.float32), sigma)


def test_bad_options_raise():
    x = np.full((16, 16), 0.5, np.float32)
    with pytest.raises(InputError, match="stage="):
        bm3d(x, 25, stage="wiener")
    with pytest.raises(InputError, match="device="):
        bm3d(x, 25, device="gpu")
    with pytest.raises(InputError, match="BM3DProfile"):
        bm3d(x, 25, profile={"block_ht": 8})
    for bad in (dict(group_ht=12), dict(window_ht=20), dict(block_ht=6), dict(step_wiener=0),
                dict(lambda_ht=-1.0), dict(mu2=float("inf")), dict(beta_ht=-1.0)):
        with pytest.raises(InputError):
            B.BM3DProfile(**bad)
    # a bigger block raises the minimum image size
    with pytest.raises(InputError, match="at least 12x12"):
        bm3d(np.zeros((10, 10), np.float32), 25,
             profile=B.BM3DProfile(block_wiener=12, transform_ht="dct"))


# --- against the bm3d package (slow) ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_quality_within_0p1_db_of_the_bm3d_package(shared_data, sigma):
    bm3d_pkg = pytest.importorskip("bm3d")
    import cv2

    diffs = []
    for idx, f in enumerate(sorted((shared_data / "testsets" / "Set12").glob("*.png"))[:4]):
        clean = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255
        z = clean + np.random.default_rng(idx).normal(0, sigma / 255, clean.shape)
        ours = B.run_stages(z[None].astype(np.float32), sigma, B.BM3DProfile(), "final", "cpu")[0]
        ref = bm3d_pkg.bm3d(z, sigma / 255)
        diffs.append(psnr(clean, np.clip(ours, 0, 1)) - psnr(clean, np.clip(ref, 0, 1)))
    assert np.mean(diffs) >= -0.1, diffs
