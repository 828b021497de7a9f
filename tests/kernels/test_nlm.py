"""Non-local means: agreement with the float64 reference, properties, bad input, CUDA.

Both aggregations (``"patch"``, ``"pixel"``) are checked against their float64
references. Tolerances (stated in docs/kernels.md):

* CPU kernel vs reference: |diff| <= 1e-5 (float32 running sums and a polynomial exp;
  measured <= 7e-7 on [0, 1] images);
* CUDA (simulator or GPU) vs reference: |diff| <= 1e-5; CUDA on a GPU vs CPU on a
  256x256 image: |diff| <= 1e-4 (different summation orders, hardware expf).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgerestore.errors import BackendError, InputError
from edgerestore.kernels import estimate_sigma, nlm
from edgerestore.kernels.nonlocal_means import default_aggregation, default_params
from edgerestore.metrics import psnr
from tests.kernels.test_nlm_reference import nlm_patch_reference, nlm_reference

ATOL_REF = 1e-5
REFERENCES = {"pixel": nlm_reference, "patch": nlm_patch_reference}


def _noisy(rng, shape, sigma01=0.1):
    """A smooth ramp (and for colour, three different ramps) plus Gaussian noise, clipped."""
    H, W = shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    base = 0.2 + 0.6 * (xx / max(W - 1, 1)) * (0.5 + 0.5 * np.cos(yy / 3.0))
    if len(shape) == 3:
        base = np.stack([base, base[::-1, ::-1], np.full_like(base, 0.5)], axis=-1)
    return np.clip(base + rng.normal(0, sigma01, shape), 0, 1).astype(np.float32)


# --- agreement with the reference -------------------------------------------------------

@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize(
    "shape, patch, search, h, hc",
    [
        ((23, 31), 3, 7, 12.0, None),
        ((19, 17), 5, 11, 20.0, None),
        ((70, 9), 7, 5, 15.0, None),  # several row blocks, image narrower than the search
        ((40, 8), 3, 37, 12.0, None),  # search radius (18) above the block height (16)
        ((20, 17, 3), 3, 7, 12.0, 24.0),
        ((16, 21, 3), 5, 9, 10.0, 10.0),
    ],
)
def test_cpu_matches_float64_reference(rng, shape, patch, search, h, hc, aggregation):
    x = _noisy(rng, shape)
    kw = dict(sigma=25.0, patch_size=patch, search_size=search, h=h)
    if hc is not None:
        kw["h_chroma"] = hc
    out = nlm(x, aggregation=aggregation, **kw)
    ref = REFERENCES[aggregation](x, **kw)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.abs(ref - x).max() > 0.05  # the filter did something worth comparing
    np.testing.assert_allclose(out, ref, rtol=0, atol=ATOL_REF)


# --- a per-pixel sigma ---------------------------------------------------------------------

def _sigma_map(rng, shape):
    """A noise level per pixel (0-255 scale) between 5 and 45: smooth blobs plus a step,
    so that neighbouring reference pixels differ, some a little and some a lot."""
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W]
    m = 25.0 + 12.0 * np.sin(yy / 2.0 + rng.random() * 6) * np.cos(xx / 3.0)
    m[:, W // 2:] *= 0.6
    return np.clip(m + rng.normal(0, 3.0, shape), 5.0, 45.0)


@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize(
    "shape, patch, search, h, hc",
    [
        ((23, 31), 3, 7, 12.0, None),
        ((70, 9), 5, 5, 15.0, None),  # several row blocks, image narrower than the search
        ((40, 8), 3, 37, 12.0, None),  # search radius above the block height
        ((20, 17, 3), 3, 7, 12.0, 24.0),
    ],
)
def test_cpu_sigma_map_matches_float64_reference(rng, shape, patch, search, h, hc, aggregation):
    # The reference applies the rule as nlm states it (sigma_p and h sigma_p / median at
    # the reference pixel p), pixel by pixel, in float64; same tolerance as for one sigma.
    x = _noisy(rng, shape)
    sig = _sigma_map(rng, shape[:2])
    kw = dict(patch_size=patch, search_size=search, h=h)
    if hc is not None:
        kw["h_chroma"] = hc
    out = nlm(x, sig, aggregation=aggregation, **kw)
    ref = REFERENCES[aggregation](x, sig, **kw)
    np.testing.assert_allclose(out, ref, rtol=0, atol=ATOL_REF)
    # ... and the map is not the scalar in disguise: its median gives another result.
    flat = REFERENCES[aggregation](x, float(np.median(sig)), **kw)
    assert np.abs(flat - ref).max() > 100 * ATOL_REF


@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize("shape", [(30, 41), (26, 33, 3)])
@pytest.mark.parametrize("level", [7.5, 25.0, 60.0])
def test_constant_sigma_map_gives_the_scalar_result(rng, shape, aggregation, level):
    # Defaults from the level's table row and the same float32 terms; the two compiled
    # versions may round differently (fastmath lets LLVM fuse multiply-adds in one and
    # not the other): |diff| <= 1e-6, a few float32 ulps (measured <= 1.2e-7).
    x = _noisy(rng, shape)
    want = nlm(x, level, aggregation=aggregation)
    got = nlm(x, np.full(shape[:2], level), aggregation=aggregation)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_sigma_map_smooths_more_where_the_level_is_higher(rng):
    # Left half at 5, right half at 40: the right half loses more of the noise. Measured
    # against the clean ramp the map gives the best of both levels per half.
    H, W = 40, 60
    clean = _noisy(np.random.default_rng(1), (H, W), sigma01=0.0)
    noise_level = np.where(np.arange(W) < W // 2, 5.0, 40.0)[None, :].repeat(H, 0)
    x = np.clip(clean + rng.normal(0, 1, (H, W)) * noise_level / 255.0, 0, 1).astype(np.float32)
    out = nlm(x, noise_level)
    low, high = nlm(x, 5.0), nlm(x, 40.0)
    left, right = np.s_[:, 3:W // 2 - 3], np.s_[:, W // 2 + 3:-3]
    err = lambda a, s: float(np.mean((a[s] - clean[s]) ** 2))  # noqa: E731
    assert err(out, right) < 0.5 * err(low, right)  # smoothed where the noise is
    assert err(out, left) < 0.5 * err(high, left)  # detail kept where there is little


@pytest.mark.parametrize(
    "sigma, match",
    [(np.full((8, 9), 10.0), "H x W array matching the image"),
     (np.full((8, 8, 3), 10.0), "H x W array matching the image"),
     (np.full((8, 8), np.nan), "NaN or Inf"),
     (np.zeros((8, 8)), r"must lie in \[0.0001, 255\]"),
     (np.full((8, 8), 300.0), r"must lie in \[0.0001, 255\]"),
     (np.full((8, 8), "a"), "must hold numbers")],
)
def test_bad_sigma_map_is_a_clear_error(sigma, match):
    with pytest.raises(InputError, match=match):
        nlm(np.zeros((8, 8), np.float32), sigma)


def test_patch_and_pixel_differ(rng):
    x = _noisy(rng, (24, 26))
    a = nlm(x, 20.0, aggregation="patch", patch_size=5, search_size=7, h=15.0)
    b = nlm(x, 20.0, aggregation="pixel", patch_size=5, search_size=7, h=15.0)
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("shape", [(24, 26), (18, 20, 3)])
def test_defaults_match_reference_with_default_params(rng, shape):
    x = _noisy(rng, shape)
    color = len(shape) == 3
    agg = default_aggregation(color=color)
    patch, search, h, hc = default_params(20.0, color=color)
    assert (hc is None) == (not color)
    kw = {} if hc is None else {"h_chroma": hc}
    np.testing.assert_allclose(nlm(x, 20.0), REFERENCES[agg](x, 20.0, patch, search, h, **kw),
                               rtol=0, atol=ATOL_REF)


_CUDA_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from edgerestore.kernels import nlm
    cases = json.loads(sys.argv[1])
    outs = {}
    for i, c in enumerate(cases):
        x = np.load(c["path"])
        kw = dict(c["kw"])
        if "sigma_path" in c:
            kw["sigma"] = np.load(c["sigma_path"])
        outs[str(i)] = nlm(x, device="cuda", **kw)
    np.savez(sys.argv[2], **outs)
    """
)


def _check_cuda_simulator_against_reference(cases, tmp_path, timeout):
    """Run ``nlm(x, device="cuda", **kw)`` for each ``(x, kw)`` under the CUDA simulator
    (a subprocess: the simulator is chosen at numba's import) and compare with the
    float64 reference."""
    spec = []
    for i, (x, kw) in enumerate(cases):
        np.save(tmp_path / f"in{i}.npy", x)
        one = {"path": str(tmp_path / f"in{i}.npy"), "kw": kw}
        if isinstance(kw["sigma"], np.ndarray):  # a per-pixel sigma goes by file
            np.save(tmp_path / f"sigma{i}.npy", kw["sigma"])
            one = {"path": one["path"], "sigma_path": str(tmp_path / f"sigma{i}.npy"),
                   "kw": {k: v for k, v in kw.items() if k != "sigma"}}
        spec.append(one)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CUDA_SCRIPT, json.dumps(spec), str(tmp_path / "out.npz")],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    for i, (x, kw) in enumerate(cases):
        kw = dict(kw)
        ref = REFERENCES[kw.pop("aggregation")](x, **kw)
        assert got[str(i)].shape == x.shape
        assert np.abs(ref - x).max() > 0.05  # the filter did something worth comparing
        np.testing.assert_allclose(got[str(i)], ref, rtol=0, atol=ATOL_REF)


def test_cuda_simulator_matches_float64_reference_fast(rng, tmp_path):
    # The default run's check of the CUDA code (the simulator runs every CUDA thread as
    # a Python thread): tiny images, 3x3 patches and search, each kernel once: colour
    # patchwise (weight sums, aggregation) and gray pixelwise, then both with a
    # per-pixel sigma.
    cases = [(_noisy(rng, (6, 5, 3)), dict(sigma=25.0, patch_size=3, search_size=3, h=12.0,
                                           h_chroma=20.0, aggregation="patch")),
             (_noisy(rng, (5, 6)), dict(sigma=25.0, patch_size=3, search_size=3, h=12.0,
                                        aggregation="pixel")),
             (_noisy(rng, (5, 6)), dict(sigma=_sigma_map(rng, (5, 6)), patch_size=3, search_size=3,
                                        h=12.0, aggregation="patch")),
             (_noisy(rng, (6, 5, 3)), dict(sigma=_sigma_map(rng, (6, 5)), patch_size=3, search_size=3,
                                           h=12.0, h_chroma=20.0, aggregation="pixel"))]
    _check_cuda_simulator_against_reference(cases, tmp_path, timeout=120)


@pytest.mark.slow
def test_cuda_simulator_matches_float64_reference(rng, tmp_path):
    # Both aggregations, gray and colour; the colour cases have 17 rows, so two tiles
    # (one partial) are exercised.
    cases = [
        (_noisy(rng, (12, 12)), dict(sigma=25.0, patch_size=3, search_size=5, h=12.0,
                                     aggregation="pixel")),
        (_noisy(rng, (17, 12, 3)), dict(sigma=25.0, patch_size=3, search_size=3, h=12.0,
                                        h_chroma=20.0, aggregation="pixel")),
        (_noisy(rng, (12, 12)), dict(sigma=25.0, patch_size=3, search_size=5, h=12.0,
                                     aggregation="patch")),
        (_noisy(rng, (17, 10, 3)), dict(sigma=25.0, patch_size=3, search_size=3, h=12.0,
                                        h_chroma=20.0, aggregation="patch")),
        (_noisy(rng, (17, 12, 3)), dict(sigma=_sigma_map(rng, (17, 12)), patch_size=3, search_size=5,
                                        h=12.0, h_chroma=20.0, aggregation="patch")),
        (_noisy(rng, (12, 17)), dict(sigma=_sigma_map(rng, (12, 17)), patch_size=5, search_size=3,
                                     h=12.0, aggregation="pixel")),
    ]
    _check_cuda_simulator_against_reference(cases, tmp_path, timeout=600)


@pytest.mark.gpu
@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize("shape", [(256, 256), (200, 300, 3)])
@pytest.mark.parametrize("per_pixel", [False, True])
def test_cuda_matches_cpu_on_gpu(rng, shape, aggregation, per_pixel):
    x = _noisy(rng, shape)
    sigma = _sigma_map(rng, shape[:2]) if per_pixel else 25.0
    np.testing.assert_allclose(nlm(x, sigma, device="cuda", aggregation=aggregation),
                               nlm(x, sigma, aggregation=aggregation), rtol=0, atol=1e-4)


def test_cuda_without_gpu_is_a_clear_error():
    from numba import cuda

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is available here")
    with pytest.raises(BackendError, match="device='cpu'"):
        nlm(np.zeros((8, 8), np.float32), 10.0, device="cuda")


# --- properties -------------------------------------------------------------------------

@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_psnr_rises_and_output_is_smoother_on_set12_crops(shared_data, sigma, aggregation):
    import cv2

    rng = np.random.default_rng(sigma)
    files = sorted((shared_data / "testsets" / "Set12").glob("*.png"))[:4]
    assert files, "Set12 is missing from the shared data"
    for path in files:
        clean = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[64:160, 64:160].astype(np.float32) / 255
        noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
        out = nlm(noisy, sigma, aggregation=aggregation)
        gain = psnr(clean, out) - psnr(clean, noisy)
        assert gain > 3.0, f"{path.name} sigma {sigma}: PSNR gain {gain:.2f} dB"
        tv = lambda a: np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
        assert tv(out) < 0.7 * tv(noisy)


def test_psnr_rises_on_colour_and_colours_do_not_bleed(rng):
    # Left half red, right half blue (BGR), sigma 25: the noise goes, the edge stays.
    clean = np.zeros((40, 40, 3), np.float32)
    clean[:, :20] = (0.1, 0.2, 0.8)
    clean[:, 20:] = (0.8, 0.3, 0.1)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    out = nlm(noisy, 25.0)
    assert psnr(clean, out) > psnr(clean, noisy) + 8
    # The columns beside the edge keep their own colour (no bleeding across it).
    np.testing.assert_allclose(out[:, 19].mean(axis=0), clean[0, 19], atol=0.03)
    np.testing.assert_allclose(out[:, 20].mean(axis=0), clean[0, 20], atol=0.03)


@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize("shape", [(33, 20), (21, 18, 3)])
def test_constant_image_stays_constant(shape, aggregation):
    value = 0.37 if len(shape) == 2 else np.array([0.2, 0.5, 0.7], np.float32)
    x = np.broadcast_to(np.asarray(value, np.float32), shape).copy()
    # Exact up to float32 accumulation over the 441 offsets: pixelwise relative 1e-5
    # (num / den, whose roundings partly cancel); patchwise, whose sums of ~49 I are
    # divided by the patch count, a few 1e-6 absolute (measured 2.7e-6 on colour).
    tol = dict(rtol=1e-5, atol=0) if aggregation == "pixel" else dict(rtol=0, atol=5e-6)
    np.testing.assert_allclose(nlm(x, 25.0, aggregation=aggregation), x, **tol)
    np.testing.assert_allclose(nlm(x, aggregation=aggregation), x, **tol)  # estimated sigma ~ 0


@pytest.mark.parametrize("aggregation", ["patch", "pixel"])
@pytest.mark.parametrize("shape", [(30, 25), (20, 22, 3)])
def test_tiny_h_returns_the_input(rng, shape, aggregation):
    x = rng.random(shape, dtype=np.float32)
    kw = dict(h_chroma=0.01) if len(shape) == 3 else {}
    np.testing.assert_allclose(nlm(x, 0.01, h=0.01, aggregation=aggregation, **kw), x,
                               rtol=0, atol=1e-6)


def test_float32_and_float64_inputs_agree(rng):
    x64 = _noisy(rng, (40, 37)).astype(np.float64)
    out32, out64 = nlm(x64.astype(np.float32), 20.0), nlm(x64, 20.0)
    assert out64.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=0, atol=1e-6)


def test_estimated_sigma_is_used_when_none_given(rng):
    x = _noisy(rng, (48, 48), sigma01=20 / 255)
    np.testing.assert_array_equal(nlm(x), nlm(x, estimate_sigma(x)))


def test_output_in_range_and_input_untouched(rng):
    x = _noisy(rng, (30, 31, 3), sigma01=0.3)
    before = x.copy()
    out = nlm(x, 60.0)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(x, before)


def test_non_contiguous_input(rng):
    x = _noisy(rng, (40, 60))
    view = x[:, ::2]
    np.testing.assert_array_equal(nlm(view, 20.0), nlm(np.ascontiguousarray(view), 20.0))


@pytest.mark.parametrize("aggregation", [None, "patch", "pixel"])
def test_default_params_follow_the_noise_level(aggregation):
    p15, s15, h15, _ = default_params(15, color=False, aggregation=aggregation)
    p50, s50, h50, _ = default_params(50, color=False, aggregation=aggregation)
    assert p15 < p50
    # where the weights start to fall (distance 2 sigma**2, then scale h**2) moves out
    assert 2 * 15**2 + h15**2 < 2 * 50**2 + h50**2
    assert all(v % 2 == 1 for v in (p15, s15, p50, s50))
    patch, search, h, hc = default_params(25, color=True, aggregation=aggregation)
    assert patch % 2 == 1 and search % 2 == 1 and hc > h > 0


def test_default_aggregation_is_what_nlm_uses(rng):
    for shape in [(20, 21), (20, 21, 3)]:
        x = _noisy(rng, shape)
        agg = default_aggregation(color=len(shape) == 3)
        assert agg in ("patch", "pixel")
        np.testing.assert_array_equal(nlm(x, 20.0), nlm(x, 20.0, aggregation=agg))


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "img, match",
    [
        (np.full((8, 8), np.nan, np.float32), "NaN or Inf"),
        (np.pad(np.full((1, 1), np.inf, np.float32), 4), "NaN or Inf"),
        (np.zeros((0, 5), np.float32), "at least 3x3"),
        (np.zeros((1, 1), np.float32), "at least 3x3"),
        (np.zeros((2, 9, 3), np.float32), "at least 3x3"),
        (np.zeros((8, 8), np.uint8), r"integer dtype uint8.*/ 255"),
        (np.full((8, 8), 200.0, np.float32), r"not the \[0, 1\] scale.*divide 8-bit data by 255"),
        (np.zeros((8, 8, 4), np.float32), "H x W x 3"),
        (np.zeros((8, 8, 3, 1), np.float32), "H x W x 3"),
        (np.zeros((8, 8), np.complex64), "expected float32"),
        ([[0.1, 0.2, 0.3]] * 3, "numpy array"),
    ],
)
def test_bad_images_are_clear_errors(img, match):
    with pytest.raises(InputError, match=match):
        nlm(img, 10.0)


@pytest.mark.parametrize(
    "sigma, match",
    [(0, "> 0"), (-5, "> 0"), (float("nan"), "> 0"), (float("inf"), "> 0"),
     (300, "absurd"), ("abc", "must be a number")],
)
def test_bad_sigma_is_a_clear_error(sigma, match):
    with pytest.raises(InputError, match=match):
        nlm(np.zeros((8, 8), np.float32), sigma)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(patch_size=4), "patch_size must be an odd integer"),
        (dict(patch_size=0), "patch_size must be an odd integer"),
        (dict(patch_size=17), r"patch_size must be an odd integer in \[1, 15\]"),
        (dict(patch_size=3.0), "patch_size must be an odd integer"),
        (dict(patch_size=True), "patch_size must be an odd integer"),
        (dict(search_size=20), "search_size must be an odd integer"),
        (dict(h=0), "h must be > 0"),
        (dict(h=-1.0), "h must be > 0"),
        (dict(h="strong"), "h must be a number"),
        (dict(h_chroma=5.0), "h_chroma applies to colour"),
        (dict(device="gpu"), "device must be one of cpu, cuda"),
        (dict(aggregation="block"), "aggregation must be one of patch, pixel"),
        (dict(aggregation=None, patch_size=2), "patch_size must be an odd integer"),
    ],
)
def test_bad_options_are_clear_errors(kw, match):
    with pytest.raises(InputError, match=match):
        nlm(np.zeros((8, 8), np.float32), 10.0, **kw)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        nlm(np.zeros((8, 8), np.float32), 10.0, 5)  # patch size passed positionally


def test_concurrent_calls_from_threads_agree(rng):
    # Pipeline stages run in threads; whatever numba's threading layer, calls must not
    # crash or mix up their buffers.
    from concurrent.futures import ThreadPoolExecutor

    xs = [_noisy(rng, (40, 44)) for _ in range(4)]
    expected = [nlm(x, 20.0) for x in xs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda x: nlm(x, 20.0), xs))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
