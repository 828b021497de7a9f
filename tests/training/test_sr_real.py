"""The SR recipe's ``degradation: real``: aligned on-the-fly patches, resumable sampler
state, validation on the degraded held-out set, and ``--init-from`` for SR runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerestore.errors import InputError
from edgerestore.resize import downscale
from edgerestore.training.degrade import DegradationMix, Degrader


def sampler(seed=0, clean_share=1.0, n_images=3, size=132):
    from edgerestore.training.sr import RealPatchSampler

    r = np.random.default_rng(100)
    import cv2

    imgs = [cv2.GaussianBlur(r.random((size, size)).astype(np.float32), (0, 0), 1.0) for _ in range(n_images)]
    return RealPatchSampler(imgs, 12, 5, np.random.default_rng(seed),
                            Degrader(DegradationMix(clean_share=clean_share), seed=seed + 1))


@pytest.mark.parametrize("scale", [2, 3])
def test_real_patches_are_aligned_lr_hr_pairs(scale):
    lo, hi = sampler().next(scale)
    assert lo.shape == (5, 1, 12, 12) and hi.shape == (5, 1, 12 * scale, 12 * scale)
    assert lo.dtype == hi.dtype == np.float32
    for k in range(5):  # clean share 1: LR = MATLAB bicubic of the HR around it (interior)
        ref = downscale(hi[k, 0], scale)
        np.testing.assert_allclose(lo[k, 0, 3:-3, 3:-3], ref[3:-3, 3:-3], atol=1.5 / 255)


def test_real_sampler_state_resumes_the_same_batches():
    a = sampler(clean_share=0.3)
    a.next(2)
    saved = a.state()
    want = [a.next(s) for s in (2, 3)]
    b = sampler(seed=7, clean_share=0.3)
    b.set_state(saved)
    got = [b.next(s) for s in (2, 3)]
    for (lw, hw), (lg, hg) in zip(want, got):
        np.testing.assert_array_equal(lw, lg)
        np.testing.assert_array_equal(hw, hg)


def test_real_sampler_refuses_images_too_small_for_the_margin():
    s = sampler(size=60)
    with pytest.raises(InputError, match="too small"):
        s.check((2, 3))


def test_degradation_field_is_checked():
    from edgerestore.training.sr import SRRecipe

    with pytest.raises(InputError, match="degradation"):
        SRRecipe(degradation="gaussian")
    with pytest.raises(InputError, match="clean_share"):
        SRRecipe(degradation="real", clean_share=1.5)
    mix = SRRecipe(degradation="real", clean_share=0.2, degradation_mix={"noise_p": 0.1, "jpeg_quality": [50, 60]}).mix()
    assert (mix.clean_share, mix.noise_p, mix.jpeg_quality, mix.h264_p) == (0.2, 0.1, (50, 60), DegradationMix().h264_p)
    for bad in ({"noise": 0.1}, {"clean_share": 0.5}):
        with pytest.raises(InputError, match="degradation_mix"):
            SRRecipe(degradation="real", degradation_mix=bad)
    with pytest.raises(InputError, match="kernel_weights"):
        SRRecipe(degradation="real", degradation_mix={"kernel_weights": [1, 0]})


@pytest.fixture
def train_dir(tmp_path):
    import cv2

    d = tmp_path / "imgs"
    d.mkdir()
    r = np.random.default_rng(3)
    for i in range(6):  # 72x72: room for (12 + 2 x 6) x 3 HR patches
        img = cv2.GaussianBlur(r.random((72, 72)).astype(np.float32), (0, 0), 2.0)
        img = (img - img.min()) / (img.max() - img.min())
        cv2.imwrite(str(d / f"im{i}.png"), (img * 255).astype(np.uint8))
    return d


@pytest.mark.torch
def test_real_run_validates_both_sets_and_init_from_starts_a_new_run(tmp_path, train_dir, capsys):
    from edgerestore.cli import main
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.sr import SRRecipe, train

    recipe = SRRecipe(scales=(2, 3), features=8, depth=2, lr_patch=12, batch=3, val_every=2, log_every=2,
                      holdout_every=3, degradation="real")
    src = tmp_path / "src"
    r = train(train_dir, src, minutes=2, recipe=recipe, max_steps=2, threads=1, handle_signals=False)
    assert {"real_gain_x2", "real_gain_x3", "real_gain_mean", "gain_mean", "gain_both"} <= set(r.last_val)
    assert r.best_gain == pytest.approx(0.5 * (r.last_val["gain_mean"] + r.last_val["real_gain_mean"]))
    ck = load_checkpoint(src / "last.pt")
    assert "degrade" in ck["rng"] and "edgerestore.training.degrade" in ck["lr_generation"]

    out = tmp_path / "ft"
    code = main(["train", "sr", "--data", str(train_dir), "--out", str(out), "--minutes", "2", "--max-steps", "2",
                 "--threads", "1", "--init-from", str(src / "best.pt"), "--batch", "2", "--warmup", "0"])
    assert code == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["step"] == 2 and "real_gain_x3" in res["last_val"]  # the source's recipe: degradation real
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    init = [x for x in lines if x["kind"] == "init"]
    assert init and init[0]["source_step"] == 2
    assert load_checkpoint(out / "last.pt")["init_from"]["path"] == str(src / "best.pt")

    with pytest.raises(InputError, match="features"):
        train(train_dir, tmp_path / "bad", minutes=1, recipe=SRRecipe(scales=(2, 3), features=4, depth=2,
              lr_patch=12, batch=2, holdout_every=3), max_steps=1, threads=1, handle_signals=False,
              init_from=src / "best.pt")
    with pytest.raises(InputError, match="cannot be combined with resume"):
        train(train_dir, src, minutes=1, resume=True, max_steps=3, threads=1, handle_signals=False,
              init_from=src / "best.pt")
