"""Temporal filter kernels: the Numba CPU kernels and the CUDA kernels (simulator)
against float64 references, and properties of the filters on real frames.

Tolerances: CPU and CUDA kernels vs the float64 reference |diff| <= 1e-5 (float32
arithmetic on values in [0, 1]; the masks exactly, away from their thresholds).
"""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgerestore.kernels import _temporal_cpu as cpu  # noqa: F401 - the module under test
from edgerestore.kernels.temporal import (
    RecursiveFilter,
    TemporalFilter,
    aggregate,
    consistency,
    scene_cut,
    spatial_level_map,
    warp,
)
from edgerestore.metrics import psnr
from tests.kernels.temporal_reference import (
    aggregate_reference,
    fb_reference,
    kalman_reference,
    warp_reference,
)

ATOL = 1e-5


def _inputs(rng, H=9, W=11, C=3, K=3):
    """Random kernel inputs; flows up to +-4 px so some samples leave the image."""
    img = rng.random((H, W, C), dtype=np.float32)
    flow = (rng.random((H, W, 2), dtype=np.float32) - 0.5) * 8
    bwd = -flow + (rng.random((H, W, 2), dtype=np.float32) - 0.5) * 3
    warped = rng.random((K, H, W, C), dtype=np.float32)
    dist = rng.random((K, H, W), dtype=np.float32) * 0.02
    valid = (rng.random((K, H, W)) > 0.3).astype(np.float32)
    return img, flow, bwd, warped, dist, valid


def _away_from_threshold(fwd, bwd, tol_abs, tol_rel):
    """Pixels whose round-trip error is not within 1e-3 px of the tolerance (float32 and
    float64 may fall on different sides there)."""
    H, W = fwd.shape[:2]
    from tests.kernels.temporal_reference import bilinear

    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    back = bilinear(bwd, xx + fwd[..., 0], yy + fwd[..., 1])
    err = np.hypot(fwd[..., 0] + back[..., 0], fwd[..., 1] + back[..., 1])
    return np.abs(err - (tol_abs + tol_rel * np.hypot(fwd[..., 0], fwd[..., 1]))) > 1e-3


def run_kernels(mod, img, flow, bwd, warped, dist, valid):
    """Every kernel of ``mod`` (``_temporal_cpu`` or ``_temporal_cuda``) on the inputs."""
    H, W, C = img.shape
    out, v = np.empty_like(img), np.empty((H, W), np.float32)
    mod.warp_bilinear(img, flow, out, v)
    fb = np.empty((H, W), np.float32)
    mod.fb_consistent(flow, bwd, 1.0, 0.1, fb)
    agg, rv = np.empty_like(img), np.empty((H, W), np.float32)
    mod.aggregate(img, warped, dist, valid, 0.005, 0.004, agg, rv)
    kal, kv = np.empty_like(img), np.empty((H, W), np.float32)
    mod.kalman_blend(img, warped[0], dist[1] * 30, dist[0], valid[0], 0.005, 0.004, 0.2, kal, kv)
    return {"warp": out, "valid": v, "fb": fb, "agg": agg, "resvar": rv, "kalman": kal, "kvar": kv}


def check_against_reference(got, img, flow, bwd, warped, dist, valid):
    ref_w, ref_v = warp_reference(img, flow)
    np.testing.assert_allclose(got["warp"], ref_w, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(got["valid"], ref_v)
    assert 0 < ref_v.sum() < ref_v.size  # some samples inside, some outside
    ref_fb = fb_reference(flow, bwd, 1.0, 0.1)
    keep = _away_from_threshold(flow, bwd, 1.0, 0.1)
    np.testing.assert_array_equal(got["fb"][keep], ref_fb[keep])
    assert 0 < ref_fb[keep].sum() < keep.sum()
    ref_a, ref_rv = aggregate_reference(img, warped, dist, valid, 0.005, 0.004)
    np.testing.assert_allclose(got["agg"], ref_a, rtol=0, atol=ATOL)
    np.testing.assert_allclose(got["resvar"], ref_rv, rtol=0, atol=ATOL)
    assert np.abs(ref_a - img).max() > 0.05
    ref_k, ref_kv = kalman_reference(img, warped[0], dist[1] * 30, dist[0], valid[0], 0.005, 0.004, 0.2)
    np.testing.assert_allclose(got["kalman"], ref_k, rtol=0, atol=ATOL)
    np.testing.assert_allclose(got["kvar"], ref_kv, rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape", [(9, 11, 3), (13, 7, 1)])
def test_cpu_kernels_match_float64_reference(rng, shape):
    inputs = _inputs(rng, *shape)
    check_against_reference(run_kernels(cpu, *inputs), *inputs)


_CUDA_SCRIPT = r"""
import sys, numpy as np
from edgerestore.kernels import _temporal_cuda as cu
from tests.kernels.test_temporal import run_kernels
d = np.load(sys.argv[1])
got = run_kernels(cu, *[d[k] for k in ("img", "flow", "bwd", "warped", "dist", "valid")])
np.savez(sys.argv[2], **got)
"""


def test_cuda_simulator_matches_float64_reference(rng, tmp_path):
    # Tiny inputs: the simulator runs each CUDA thread as a Python thread.
    inputs = _inputs(rng, 5, 6, 3, 2)
    names = ("img", "flow", "bwd", "warped", "dist", "valid")
    np.savez(tmp_path / "in.npz", **dict(zip(names, inputs)))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", _CUDA_SCRIPT, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = dict(np.load(tmp_path / "out.npz"))
    check_against_reference(got, *inputs)


@pytest.mark.gpu
def test_cuda_matches_cpu_on_gpu(rng):
    from edgerestore.kernels import _temporal_cuda as cu

    inputs = _inputs(rng, 200, 300, 3, 4)
    a, b = run_kernels(cpu, *inputs), run_kernels(cu, *inputs)
    for k in a:
        keep = _away_from_threshold(inputs[1], inputs[2], 1.0, 0.1) if k == "fb" else slice(None)
        np.testing.assert_allclose(b[k][keep], a[k][keep], rtol=0, atol=1e-4, err_msg=k)


# --- properties -------------------------------------------------------------------------

def test_integer_shift_warps_exactly_and_marks_the_uncovered_border(rng):
    img = rng.random((10, 12, 3), dtype=np.float32)
    flow = np.zeros((10, 12, 2), np.float32)
    flow[..., 0] = 2.0  # sample 2 px to the right
    out, valid = warp(img, flow)
    np.testing.assert_array_equal(out[:, :10], img[:, 2:])
    assert valid[:, :10].all() and not valid[:, 11].any()


def test_occluded_neighbours_have_no_weight(rng):
    c = rng.random((8, 8, 3), dtype=np.float32)
    far = np.ones_like(c)
    out, res = aggregate(c, [far, far], [np.zeros((8, 8), np.float32)] * 2, 25.0)
    np.testing.assert_array_equal(out, c)
    np.testing.assert_array_equal(res, np.full((8, 8), 25.0, np.float32))


def test_consistency_of_opposite_flows():
    fwd = np.full((6, 7, 2), 1.5, np.float32)
    assert consistency(fwd, -fwd)[:, :4].all()
    assert not consistency(fwd, fwd)[:3, :3].any()


def _real_frames(shared_data, name, n, size=(160, 90)):
    cap = cv2.VideoCapture(str(shared_data / "video" / name))
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        assert ok
        frames.append(cv2.resize(f, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    return frames


def _noisy(frames, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(np.rint(f * 255 + rng.normal(0, sigma, f.shape)), 0, 255).astype(np.float32) / 255
            for f in frames]


def test_temporal_average_of_a_static_scene_divides_the_noise(shared_data):
    # One real frame seen five times with independent noise (a static camera).
    clean = _real_frames(shared_data, "pedestrians_vtest.avi", 1)[0]
    noisy = _noisy([clean] * 5, 25.0)
    res = TemporalFilter(radius=2).filter(noisy, 2, 25.0)
    gain = psnr(clean, res.image) - psnr(clean, noisy[2])
    assert gain > 4.0  # 5 frames: at most 10 log10(5) = 7 dB
    assert np.median(res.residual_sigma) < 25.0 / np.sqrt(3)


def test_recursive_filter_improves_over_frames_and_resets(shared_data):
    clean = _real_frames(shared_data, "pedestrians_vtest.avi", 6)
    noisy = _noisy(clean, 25.0)
    rf = RecursiveFilter()
    outs = [rf.step(x, 25.0).image for x in noisy]
    np.testing.assert_array_equal(outs[0], noisy[0])
    assert psnr(clean[5], outs[5]) > psnr(clean[5], noisy[5]) + 2.0
    rf.reset()
    np.testing.assert_array_equal(rf.step(noisy[5], 25.0).image, noisy[5])


def test_scene_cut_between_the_two_clips_and_not_within(shared_data):
    from edgerestore.kernels.flow import flow_guide

    a = [flow_guide(f, 25.0) for f in _noisy(_real_frames(shared_data, "dashcam_solidWhiteRight.mp4", 4), 25)]
    b = [flow_guide(f, 25.0) for f in _noisy(_real_frames(shared_data, "pedestrians_vtest.avi", 4), 25, 1)]
    assert not any(scene_cut(x, y) for x, y in zip(a, a[1:]))
    assert not any(scene_cut(x, y) for x, y in zip(b, b[1:]))
    assert scene_cut(a[-1], b[0]) and scene_cut(b[0], a[-1])


def test_spatial_level_map_scales_below_the_median_and_reaches_sigma():
    # residual 5 (most pixels), 10 and 25 = sigma (nothing matched): the median 5 is
    # scaled by 0.8, sigma stays sigma, 10 lies a third of the way (scale 0.8 + 0.2/3).
    res = np.array([[5.0, 5.0, 5.0], [5.0, 5.0, 10.0], [25.0, 2.0, 0.1]])
    lvl = spatial_level_map(res, 25.0, 0.8)
    np.testing.assert_allclose(lvl[0], 4.0)
    np.testing.assert_allclose(lvl[1, 2], 10.0 * (0.8 + 0.2 * 5.0 / 20.0))
    np.testing.assert_allclose(lvl[2, 0], 25.0)
    np.testing.assert_allclose(lvl[2, 1:], [1.6, 0.5])  # below: scaled, then clipped at 0.5


def test_guides_cached_per_frame_do_not_depend_on_the_centre(shared_data):
    # Each image's guide is made with its own level: filtering frame 2 after frame 1
    # (guides of 1..3 cached then) equals filtering frame 2 afresh.
    frames = _noisy(_real_frames(shared_data, "pedestrians_vtest.avi", 4), 25.0)
    levels = [6.0, 8.0, 10.0, 12.0]
    tf = TemporalFilter(radius=1)
    tf.filter(frames[0:3], 1, 25.0, keys=[0, 1, 2], guide_sigma=levels[0:3])
    warm = tf.filter(frames[1:4], 1, 25.0, keys=[1, 2, 3], guide_sigma=levels[1:4])
    fresh = TemporalFilter(radius=1).filter(frames[1:4], 1, 25.0, keys=[1, 2, 3], guide_sigma=levels[1:4])
    np.testing.assert_array_equal(warm.image, fresh.image)


def test_recursive_residual_map_is_the_noise_left(shared_data):
    # A static camera (one real frame, fresh noise each time): once the memory is full,
    # the residual map the recursion reports is the noise it actually leaves, within
    # 25 %; it used to report the gain's floor (sqrt(min_var) sigma, about 1.6 times the
    # noise left), which made the spatial pass after it over-smooth.
    clean = _real_frames(shared_data, "pedestrians_vtest.avi", 1)[0]
    noisy = _noisy([clean] * 10, 20.0, seed=5)
    rf = RecursiveFilter(min_var=0.4)
    for x in noisy:
        res = rf.step(x, 20.0, guide_source=clean, guide_sigma=0.5)
    left = float(np.std((res.image - clean) * 255.0))
    reported = float(np.sqrt(np.mean(res.residual_sigma ** 2)))
    assert 0.75 * left < reported < 1.25 * left, (left, reported)
    assert reported < 0.9 * np.sqrt(0.4) * 20.0
