"""`edgerestore denoise --method model` / `--model`: the shipped denoiser and users' own."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgerestore.cli import main
from edgerestore.metrics import psnr
from tests import tiny_models as tm


def _psnr(restored, clean):
    return psnr(clean.astype(np.float64), restored.astype(np.float64), peak=255.0)


@pytest.fixture(scope="module")
def clean_and_noisy(tmp_path_factory):
    """A smooth 8-bit gray test image (real gradients and edges) and a noisy copy."""
    yy, xx = np.mgrid[0:64, 0:80]
    clean = (128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 9.0)).astype(np.uint8)
    clean[20:40, 30:50] = 220
    rng = np.random.default_rng(7)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    folder = tmp_path_factory.mktemp("img")
    cv2.imwrite(str(folder / "noisy.png"), noisy)
    return clean, noisy, folder


def test_shipped_model_denoises_with_given_and_estimated_sigma(capsys, clean_and_noisy):
    clean, noisy, folder = clean_and_noisy
    for extra in (["--sigma", "25"], []):
        out = folder / "clean.png"
        code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model", *extra])
        assert code == 0, capsys.readouterr().err
        assert "model dn-gray on ort-cpu" in capsys.readouterr().out
        restored = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert restored.shape == clean.shape and restored.dtype == np.uint8
        assert _psnr(restored, clean) > _psnr(noisy, clean) + 3


def test_users_own_model_runs_from_its_metadata(capsys, clean_and_noisy, tmp_path):
    _, noisy, folder = clean_and_noisy
    model = tm.save(tm.affine_denoiser(), tmp_path / "mine.onnx")  # out = 0.5 x + sigma/255
    out = tmp_path / "out.png"
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--model", str(model),
                 "--sigma", "10", "--backend", "ort-cpu"])
    assert code == 0, capsys.readouterr().err
    expected = np.clip(np.rint((0.5 * noisy / 255 + 10 / 255) * 255), 0, 255)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float64)
    assert np.abs(got - expected).max() <= 1


def test_wrong_model_kind_and_bad_backend_are_refused(capsys, clean_and_noisy, tmp_path):
    _, _, folder = clean_and_noisy
    sr = tm.nearest_upscaler(scale=2)
    sr_path = tm.save(sr, tmp_path / "sr.onnx", tm.spec_for(sr, task="super_resolution", scale=2))
    out = tmp_path / "o.png"
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--model", str(sr_path)])
    err = capsys.readouterr().err
    assert code == 1 and "super_resolution model" in err and "edgerestore upscale" in err
    assert not out.exists()
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model",
                 "--backend", "warp-drive"])
    assert code == 1 and "Requested backend 'warp-drive'; available: auto" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a usage error: argparse's exit 2
        main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--model", str(sr_path),
              "--method", "nlm"])
    assert usage.value.code == 2 and "cannot be combined" in capsys.readouterr().err
    assert not out.exists()


def test_explicit_sigma_outside_the_trained_range_is_refused(capsys, clean_and_noisy, tmp_path):
    _, _, folder = clean_and_noisy
    out = tmp_path / "o.png"
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model", "--sigma", "100"])
    err = capsys.readouterr().err
    assert code == 1 and "--sigma 100 is outside the range model 'dn-gray' was trained for (sigma 0-75" in err
    assert "--method bm3d" in err and not out.exists()
    # the edge of the range is accepted
    assert main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model", "--sigma", "75"]) == 0
    assert out.exists()


def test_self_ensemble_averages_the_eight_turned_runs(capsys, clean_and_noisy, tmp_path):
    # Reference: the shipped model run by hand on the 8 flips/rotations, turned back, averaged.
    from edgerestore.restorer import ModelRestorer

    _, noisy, folder = clean_and_noisy
    x = noisy.astype(np.float32) / 255
    acc = np.zeros(x.shape, np.float64)
    with ModelRestorer.open("dn-gray", backend="ort-cpu", threads=1) as single:
        for k in range(4):
            for flip in (False, True):
                t = np.rot90(x, k)
                t = t[:, ::-1] if flip else t
                y = single(np.ascontiguousarray(t), sigma=25)
                acc += np.rot90(y[:, ::-1] if flip else y, -k)
    expected = np.clip(np.rint(acc / 8 * 255), 0, 255)
    out = tmp_path / "ens.png"
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model", "--sigma", "25",
                 "--self-ensemble", "--backend", "ort-cpu"])
    assert code == 0, capsys.readouterr().err
    assert "(self-ensemble x8)" in capsys.readouterr().out
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float64)
    assert np.abs(got - expected).max() <= 1  # float32 sums, then rounding to 8 bits

    with pytest.raises(SystemExit) as usage:
        main(["denoise", str(folder / "noisy.png"), "-o", str(tmp_path / "n.png"), "--method", "nlm",
              "--self-ensemble"])
    assert usage.value.code == 2 and "--self-ensemble averages a learned model's outputs" in capsys.readouterr().err


def test_the_registered_model_method_is_the_shipped_denoiser(clean_and_noisy, capsys, tmp_path):
    from edgerestore import denoise
    from edgerestore.errors import InputError

    _, noisy, folder = clean_and_noisy
    out = tmp_path / "cli.png"
    assert main(["denoise", str(folder / "noisy.png"), "-o", str(out), "--method", "model",
                 "--sigma", "25", "--backend", "ort-cpu"]) == 0
    from_cli = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(int)
    from_library = denoise.denoise_array(noisy, "model", 25.0).astype(int)
    assert np.abs(from_library - from_cli).max() <= 1  # auto backend vs ort-cpu
    with pytest.raises(InputError, match="sigma 100 is outside the range model 'dn-gray' was trained for"):
        denoise.denoise_array(noisy, "model", 100.0)


def test_sigma_with_a_model_without_a_noise_input_says_it_is_not_used(capsys, clean_and_noisy, tmp_path):
    _, _, folder = clean_and_noisy
    blur = tm.save(tm.box_blur(), tmp_path / "blur.onnx")
    code = main(["denoise", str(folder / "noisy.png"), "-o", str(tmp_path / "o.png"), "--model", str(blur),
                 "--sigma", "20", "--backend", "ort-cpu"])
    err = capsys.readouterr().err
    assert code == 0 and "has no noise-level input: the sigma given (20) is not used" in err
