"""ModelRestorer: pre/post-processing from metadata, checked against closed forms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper

from edgerestore.errors import BackendError, InputError
from edgerestore.kernels.color import BGR_TO_OPPONENT
from edgerestore.restorer import ModelRestorer
from tests import tiny_models as tm

ATOL = 1e-5  # float32 arithmetic through ORT and the colour transforms


def _open(tmp_path, model, **spec_overrides):
    path = tm.save(model, tmp_path / "m.onnx", tm.spec_for(model, **spec_overrides))
    return ModelRestorer.open(path, backend="ort-cpu", threads=1)


def test_gray_denoiser_gets_the_noise_level_map(tmp_path, rng):
    img = rng.random((21, 34), dtype=np.float32)
    with _open(tmp_path, tm.affine_denoiser()) as r:
        assert r.backend_name == "ort-cpu"
        out = r(img, sigma=25)
        sigma_map = np.full(img.shape, 10.0, np.float32)
        sigma_map[:, :17] = 40.0
        out_map = r(img, sigma=sigma_map)
    np.testing.assert_allclose(out, np.clip(0.5 * img + 25 / 255, 0, 1), atol=ATOL)
    expected = np.clip(0.5 * img + sigma_map / 255, 0, 1)
    np.testing.assert_allclose(out_map, expected, atol=ATOL)


def test_gray_model_on_colour_runs_on_opponent_channels(tmp_path, rng):
    img = rng.random((16, 24, 3), dtype=np.float32)
    with _open(tmp_path, tm.affine_denoiser()) as r:
        out = r(img, sigma=30)
    # Closed form: each opponent channel, mapped to [0, 1] by (c - lo) * g, goes through
    # u -> 0.5 u + (30/255) g, then back; in BGR that is 0.5 x + M^T (0.5 lo + 30/255).
    lo = np.array([0.0, -1 / np.sqrt(2), -2 / np.sqrt(6)])
    offset = BGR_TO_OPPONENT.T @ (0.5 * lo + 30 / 255)
    np.testing.assert_allclose(out, np.clip(0.5 * img + offset, 0, 1), atol=ATOL)


def test_bgr_model_on_gray_input_returns_gray(tmp_path, rng):
    img = rng.random((9, 11), dtype=np.float32)
    with _open(tmp_path, tm.affine_denoiser(channels=3, with_noise_level=False)) as r:
        out = r(img)
    assert out.shape == img.shape
    np.testing.assert_allclose(out, 0.5 * img, atol=ATOL)


def test_value_range_is_applied_and_undone(tmp_path, rng):
    img = rng.random((8, 8), dtype=np.float32)
    # The model halves its input; in 0..255 units the output maps back to half the image.
    with _open(tmp_path, tm.affine_denoiser(with_noise_level=False), value_range=(0, 255)) as r:
        out = r(img)
    np.testing.assert_allclose(out, 0.5 * img, atol=ATOL)


def test_padding_to_size_multiple_keeps_the_frame_size(tmp_path, rng):
    img = rng.random((13, 10), dtype=np.float32)
    with _open(tmp_path, tm.affine_denoiser(), size_multiple=4) as r:
        out = r(img, sigma=5)
    assert out.shape == (13, 10)
    np.testing.assert_allclose(out, 0.5 * img + 5 / 255, atol=ATOL)


def test_luma_upscaler_on_colour(tmp_path, rng):
    # Random luma with a constant tint: the chroma is smooth, so bicubic chroma stays in
    # gamut and the Y channel must come out exactly nearest-upscaled.
    luma = rng.random((10, 14, 1), dtype=np.float32) * 0.6 + 0.2
    img = (luma + np.array([0.05, 0.0, -0.05], np.float32)).astype(np.float32)
    model = tm.nearest_upscaler(scale=2)
    with _open(tmp_path, model, task="super_resolution", scale=2, color="luma") as r:
        out = r(img)
    assert out.shape == (20, 28, 3)
    y_in = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[..., 0]
    y_out = cv2.cvtColor(out, cv2.COLOR_BGR2YCrCb)[..., 0]
    np.testing.assert_allclose(y_out, np.clip(np.kron(y_in, np.ones((2, 2))), 0, 1), atol=2e-3)


def test_upscaler_output_shape_is_checked(tmp_path, rng):
    model = tm.nearest_upscaler(scale=2)
    with _open(tmp_path, model, task="super_resolution", scale=3, color="gray") as r:
        with pytest.raises(BackendError, match="implies"):
            r(rng.random((6, 6), dtype=np.float32))


def test_tiling_matches_the_whole_frame(tmp_path, rng):
    img = rng.random((50, 37), dtype=np.float32)
    model = tm.box_blur()
    with _open(tmp_path, model, tile_size=0) as whole:
        ref = whole(img)
    path = tmp_path / "m.onnx"
    with ModelRestorer.open(path, backend="ort-cpu", tile_size=16, tile_overlap=6) as tiled:
        out = tiled(img)
    # Each tile carries 6 pixels of real context; the blur's radius is 1, so the tiled
    # result equals the whole-frame one up to float32 rounding.
    np.testing.assert_allclose(out, ref, atol=ATOL)
    with ModelRestorer.open(path, backend="ort-cpu", tile_size=16, tile_overlap=0) as seams:
        assert np.abs(seams(img) - ref).max() > 0.01  # without context, the cuts show


def test_tiling_is_exact_for_a_pointwise_model(tmp_path, rng):
    img = rng.random((41, 29, 3), dtype=np.float32)
    with _open(tmp_path, tm.affine_denoiser(channels=3), tile_size=12, tile_overlap=3) as r:
        out = r(img, sigma=12)
    np.testing.assert_allclose(out, np.clip(0.5 * img + 12 / 255, 0, 1), atol=ATOL)


def test_bad_tiling_options_are_refused(tmp_path):
    from edgerestore.errors import ModelError

    with pytest.raises(ModelError, match="'tile_overlap' \\(4\\) must be less than half"):  # in metadata
        _open(tmp_path, tm.box_blur(), tile_size=8, tile_overlap=4)
    path = tm.save(tm.box_blur(), tmp_path / "ok.onnx")
    with pytest.raises(InputError, match="tile_overlap"):  # as options
        ModelRestorer.open(path, backend="ort-cpu", tile_size=8, tile_overlap=4)


def test_nan_from_the_model_names_the_model(tmp_path, rng):
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Sub", ["image", "two"], ["d"]), helper.make_node("Sqrt", ["d"], ["output"])],
        "nan", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with _open(tmp_path, model, name="nanny") as r:
        with pytest.raises(BackendError, match="'nanny'.*NaN"):
            r(rng.random((4, 4), dtype=np.float32))


def test_sigma_outside_the_trained_range_is_clipped(tmp_path, rng, caplog):
    img = rng.random((6, 6), dtype=np.float32) * 0.1
    with _open(tmp_path, tm.affine_denoiser()) as r:
        out = r(img, sigma=200)
    np.testing.assert_allclose(out, 0.5 * img + 75 / 255, atol=ATOL)
    assert "trained for sigma" in caplog.text


def test_bad_inputs_are_refused(tmp_path, rng):
    with _open(tmp_path, tm.affine_denoiser()) as r:
        with pytest.raises(InputError, match="NaN"):
            r(np.full((4, 4), np.nan, np.float32), sigma=5)
        with pytest.raises(InputError, match="integer dtype"):
            r(np.zeros((4, 4), np.uint8), sigma=5)
        with pytest.raises(InputError, match="0x4"):
            r(np.zeros((0, 4), np.float32), sigma=5)
        with pytest.raises(InputError, match="sigma map has shape"):
            r(np.zeros((4, 4), np.float32), sigma=np.zeros((3, 3)))
        with pytest.raises(InputError, match="finite and >= 0"):
            r(np.zeros((4, 4), np.float32), sigma=-1)


# ------------------------------------------------------------------ self-ensemble
def _neighbour_mean_zero_padded(img: np.ndarray) -> np.ndarray:
    p = np.pad(img.astype(np.float64), 1)
    return (p[1:-1, 2:] + p[1:-1, :-2] + p[2:, 1:-1] + p[:-2, 1:-1]) / 4


def test_self_ensemble_turns_every_output_back(tmp_path, rng):
    # A right-shift model: each of the 8 flips/rotations turns it into a shift in one of the
    # four directions (each twice), so the ensemble is the mean of the four neighbours. A
    # wrong inverse transform gives shifted or transposed results instead.
    img = rng.random((13, 20), dtype=np.float32)  # odd, non-square: exercises the padding
    path = tm.save(tm.shift_right(), tmp_path / "m.onnx",
                   tm.spec_for(tm.shift_right(), size_multiple=1))
    with ModelRestorer.open(path, backend="ort-cpu", threads=1) as single:
        np.testing.assert_allclose(single(img), np.pad(img, ((0, 0), (0, 1)))[:, 1:], atol=ATOL)
    with ModelRestorer.open(path, backend="ort-cpu", threads=1, self_ensemble=8) as r:
        assert r.self_ensemble == 8
        out = r(img)
    np.testing.assert_allclose(out, _neighbour_mean_zero_padded(img), atol=ATOL)


@pytest.mark.parametrize("copies", [2, 4])
def test_smaller_self_ensembles_keep_the_shape_and_turn_every_output_back(tmp_path, rng, copies):
    # 2 = identity + half turn, 4 = those + both flips: the right-shift model becomes a
    # shift right or left (never up/down: no quarter turn, so no copy is transposed), and
    # the ensemble is the mean of the left and right neighbours.
    img = rng.random((13, 20), dtype=np.float32)
    path = tm.save(tm.shift_right(), tmp_path / "m.onnx", tm.spec_for(tm.shift_right(), size_multiple=1))
    seen = []
    with ModelRestorer.open(path, backend="ort-cpu", threads=1, self_ensemble=copies) as r:
        run_once = r._run_once
        r._run_once = lambda planes, *rest: (seen.append(planes.shape), run_once(planes, *rest))[1]
        out = r(img)
    p = np.pad(img.astype(np.float64), ((0, 0), (1, 1)))
    np.testing.assert_allclose(out, (p[:, 2:] + p[:, :-2]) / 2, atol=ATOL)
    assert len(seen) == copies and set(seen) == {(1, 13, 20)}


def test_self_ensemble_turns_the_noise_map_and_colour_with_the_image(tmp_path, rng):
    # The affine denoiser is pointwise, so every transform gives the same answer: the
    # ensemble must equal the single pass, which it only does if the spatially varying
    # noise map is turned together with the image (also on colour, per opponent channel).
    img = rng.random((15, 22, 3), dtype=np.float32)
    sigma_map = rng.uniform(0, 60, size=(15, 22)).astype(np.float32)
    path = tm.save(tm.affine_denoiser(), tmp_path / "m.onnx")
    with ModelRestorer.open(path, backend="ort-cpu", threads=1) as single:
        ref = single(img, sigma=sigma_map)
    with ModelRestorer.open(path, backend="ort-cpu", threads=1, self_ensemble=8) as r:
        np.testing.assert_allclose(r(img, sigma=sigma_map), ref, atol=ATOL)


def test_self_ensemble_of_an_upscaler_and_with_tiling(tmp_path, rng):
    img = rng.random((11, 17), dtype=np.float32)
    up = tm.nearest_upscaler(scale=2)
    path = tm.save(up, tmp_path / "up.onnx", tm.spec_for(up, task="super_resolution", scale=2, color="gray"))
    with ModelRestorer.open(path, backend="ort-cpu", threads=1, self_ensemble=8) as r:
        np.testing.assert_allclose(r(img), np.repeat(np.repeat(img, 2, 0), 2, 1), atol=ATOL)
    blur = tm.box_blur()
    path = tm.save(blur, tmp_path / "blur.onnx", tm.spec_for(blur, tile_size=0))
    with ModelRestorer.open(path, backend="ort-cpu", threads=1) as whole:
        ref = whole(img)
    with ModelRestorer.open(path, backend="ort-cpu", threads=1, tile_size=8, tile_overlap=2,
                            self_ensemble=8) as tiled:
        np.testing.assert_allclose(tiled(img), ref, atol=ATOL)


def test_self_ensemble_size_is_checked(tmp_path):
    with pytest.raises(InputError, match="self_ensemble must be 1 .*, 2, 4 or 8"):
        _open_ensemble = ModelRestorer.open(tm.save(tm.box_blur(), tmp_path / "m.onnx"),
                                            backend="ort-cpu", self_ensemble=3)
        _open_ensemble.close()


def test_range_check_is_a_constructor_option(tmp_path):
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.model_spec import read_spec

    model = tm.affine_denoiser(with_noise_level=False)
    spec = read_spec(tm.save(model, tmp_path / "m.onnx", tm.spec_for(model)))
    other_scale = np.full((8, 8), 200.0, np.float32)
    runner, reason = open_runner(spec.path, "ort-cpu", RunnerOptions(threads=1))
    with runner:
        with pytest.raises(InputError, match=r"not the \[0, 1\] scale.*divide 8-bit data by 255"):
            ModelRestorer(spec, runner, reason)(other_scale)
        out = ModelRestorer(spec, runner, reason, range_check=False)(other_scale)
        with pytest.raises(InputError, match=r"expected \[0, 1\] \(clipped data\)"):
            ModelRestorer(spec, runner, reason, range_check=True)(np.full((8, 8), 1.25, np.float32))
    assert out.shape == (8, 8) and np.isfinite(out).all()


@pytest.mark.parametrize("shape", [(12, 16), (12, 16, 3)])
def test_unclipped_noisy_float_input_reaches_the_model_and_the_output_is_clipped(tmp_path, shape):
    # out = 0.5 * image: values of -0.4 and 1.6 come back as -0.2 -> 0 and 0.8, so the
    # model saw them unclipped (clipped first, 1.6 would have given 0.5)
    model = tm.affine_denoiser(channels=3, with_noise_level=False)
    path = tm.save(model, tmp_path / "m.onnx", tm.spec_for(model))
    x = np.full(shape, 0.5, np.float32)
    x[0, :4] = -0.4
    x[1, :4] = 1.6
    with ModelRestorer.open(path, backend="ort-cpu", threads=1) as r:
        out = r(x)
    assert out.shape == shape and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out[0, :4], 0.0)
    np.testing.assert_allclose(out[1, :4], 0.8, atol=1e-6)
    np.testing.assert_allclose(out[2:], 0.25, atol=1e-6)


@pytest.mark.parametrize("k", range(8))
def test_dihedral_inverse_undoes_each_transform(k):
    from edgerestore.restorer import dihedral, dihedral_inverse

    a = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    turned = dihedral(a, k)
    assert turned.shape == ((2, 5, 3) if k % 2 else (2, 3, 5))
    assert np.array_equal(dihedral_inverse(turned, k), a)
    assert len({dihedral(a[0], j).tobytes() + bytes(dihedral(a[0], j).shape) for j in range(8)}) == 8
