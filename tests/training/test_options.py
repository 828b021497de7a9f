"""Training options shared by the recipes: device choice, bf16 autocast, learning-rate
warm-up after a resume, the one learning-rate schedule. Tiny models on small synthetic
images (seconds on 2 cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerestore.metrics import psnr
from tests.tiny_models import tiny_recipe, write_training_images


def test_warmup_ramps_linearly_from_the_start_step_and_is_off_at_zero():
    from edgerestore.training.schedule import warmup_factor

    assert [warmup_factor(s, 100, 4) for s in range(100, 106)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(7, 7, 0) == 1.0
    assert warmup_factor(0, 0, 1) == 1.0


@pytest.mark.torch
def test_device_choice_is_checked_with_a_message_that_names_the_fix():
    import torch

    from edgerestore.errors import InputError
    from edgerestore.training.device import resolve_device

    assert resolve_device(torch, "cpu") == "cpu"
    assert resolve_device(torch, "auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="auto, cpu or cuda"):
        resolve_device(torch, "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="--device cpu"):
            resolve_device(torch, "cuda")


def test_an_unknown_precision_is_refused():
    from edgerestore.errors import InputError

    with pytest.raises(InputError, match="fp32, bf16"):
        tiny_recipe(precision="fp16")


@pytest.mark.torch
def test_bf16_is_called_emulated_unless_the_cpu_has_avx512_bf16_or_amx():
    import torch

    from edgerestore.training.device import precision_warning

    for flags in ({"avx2", "fma"}, {"avx512f", "avx512bw", "avx512_vnni"}):  # EPYC; Xeon without bf16
        assert "emulated" in precision_warning(torch, "cpu", "bf16", cpu_flags=flags)
    assert "emulated" in precision_warning(torch, "cpu", "bf16", cpu_flags={"fp", "asimd"})  # Arm without it
    for flags in ({"avx512f", "avx512_bf16"}, {"amx_bf16", "amx_tile"}, {"asimd", "bf16"}):
        assert precision_warning(torch, "cpu", "bf16", cpu_flags=flags) is None
    assert precision_warning(torch, "cpu", "fp32", cpu_flags={"avx2"}) is None
    assert precision_warning(torch, "cuda", "bf16", cpu_flags={"avx2"}) is None


@pytest.mark.torch
def test_bf16_autocast_forward_stays_close_to_fp32():
    import torch

    from edgerestore.models import ffdnet
    from edgerestore.training.device import autocast

    torch.manual_seed(3)
    model = ffdnet.build(channels=1, features=16, depth=5)
    for p in model.parameters():  # weights of a trained scale, not the near-zero init of the last layer
        torch.nn.init.normal_(p, std=0.05)
    image, level = ffdnet.example_inputs({"channels": 1}, 32, 48, batch=2, seed=4)
    with torch.no_grad():
        ref = model(image, level)
        with autocast(torch, "cpu", "bf16"):
            low = model(image, level)
        with autocast(torch, "cpu", "fp32"):
            same = model(image, level)
    assert torch.equal(same, ref)
    noise_ref = (image - ref).abs().max()
    err = float((low.float() - ref).abs().max())
    # bf16 keeps 8 mantissa bits: relative error of the predicted noise ~2^-8 per op;
    # measured ~1% of the noise's range through 5 layers
    assert 0 < err < 0.05 * float(noise_ref), (err, float(noise_ref))


@pytest.mark.torch
def test_a_bf16_run_learns_and_logs_its_precision(tmp_path):
    from edgerestore.training import data as D
    from edgerestore.training.denoise import train

    data = write_training_images(tmp_path / "data", n=9, size=48)
    recipe = tiny_recipe(features=16, depth=3, patch=32, batch=8, lr=3e-3, sigma_min=20.0,
                          sigma_max=30.0, val_every=40, log_every=20, precision="bf16")
    result = train(data, tmp_path / "ck", minutes=5, recipe=recipe, max_steps=40, handle_signals=False,
                   threads=1, device="cpu")
    held = [D.load_gray(f) for f in D.split_holdout(D.list_images(data), 3)[1]]
    noisy = D.noisy_validation_set(held, 25.0, recipe.seed)
    before = float(np.mean([psnr(c, n) for c, n in zip(held, noisy)]))
    # the fp32 twin (tests/training/test_denoiser.py) goes 20.5 -> 24.5 dB in these 40 steps
    assert result.last_val["psnr25"] > before + 2.5, (before, result.last_val)
    start = json.loads((tmp_path / "ck" / "log.jsonl").read_text().splitlines()[0])
    assert start["recipe"]["precision"] == "bf16" and start["device"] == "cpu"
    from edgerestore.cpuinfo import cpu_flags

    warned = any('"warning"' in line for line in (tmp_path / "ck" / "log.jsonl").read_text().splitlines())
    flags = cpu_flags()
    if flags:  # the log warns exactly when this CPU lacks native bf16
        assert warned == (not flags & {"avx512_bf16", "amx_bf16", "bf16"})


@pytest.mark.torch
def test_resume_cli_warms_the_learning_rate_up_and_takes_the_precision(tmp_path, capsys):
    from edgerestore.cli import main
    from edgerestore.models.checkpoint import load_checkpoint

    data = write_training_images(tmp_path / "data")
    out = tmp_path / "ck"
    common = ["train", "denoise", "--data", str(data), "--out", str(out), "--minutes", "2",
              "--threads", "1", "--device", "cpu"]
    assert main(common + ["--max-steps", "2", "--features", "8", "--depth", "3", "--patch", "16",
                          "--batch", "2", "--holdout-every", "3", "--log-every", "1", "--lr", "1e-3"]) == 0
    assert main(common + ["--resume", "--max-steps", "7", "--warmup", "4", "--precision", "bf16"]) == 0
    assert main(common + ["--resume", "--max-steps", "8", "--warmup", "-1"]) == 1
    assert "--warmup must be >= 0" in capsys.readouterr().err
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    lrs = [d["lr"] for d in lines if d["kind"] == "train"]
    assert lrs == pytest.approx([1e-3, 1e-3, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    starts = [d for d in lines if d["kind"] == "start"]
    assert [s["warmup_steps"] for s in starts] == [0, 4]
    assert load_checkpoint(out / "last.pt")["recipe"]["precision"] == "bf16"


# ------------------------------------------------- the one learning-rate schedule


def test_the_schedule_is_constant_then_a_half_cosine_that_ends_at_lr_min():
    from edgerestore.training.schedule import LearningRateSchedule

    s = LearningRateSchedule(lr=1e-3, lr_min=1e-5, decay_start=100, decay_steps=50)
    assert s.decays
    assert [s.at(k) for k in (0, 99, 100)] == [1e-3, 1e-3, 1e-3]  # the decay starts at step 100
    assert s.at(125) == pytest.approx((1e-3 + 1e-5) / 2)  # half way down the cosine
    assert s.at(101) < 1e-3 and s.at(149) > 1e-5
    rates = [s.at(k) for k in range(100, 151)]
    assert rates == sorted(rates, reverse=True)
    assert s.at(150) == pytest.approx(1e-5) and s.at(10_000) == pytest.approx(1e-5)  # then stays there


@pytest.mark.parametrize("never", [None, -1, -5])
def test_a_missing_or_negative_decay_start_means_never(never):
    from edgerestore.training.schedule import NEVER, LearningRateSchedule

    assert NEVER < 0
    s = LearningRateSchedule(lr=1e-3, lr_min=1e-5, decay_start=never, decay_steps=10)
    assert not s.decays
    assert {s.at(k) for k in (0, 1, 9, 10, 11, 10**6)} == {1e-3}


@pytest.mark.parametrize("decay_start", [None, -1, 0, 7])
def test_both_recipes_follow_the_one_schedule(decay_start):
    from edgerestore.training.denoise import Recipe
    from edgerestore.training.schedule import LearningRateSchedule
    from edgerestore.training.sr import SRRecipe

    fields = dict(lr=2e-3, lr_min=4e-5, decay_start=decay_start, decay_steps=20)
    want = LearningRateSchedule(**fields)
    for recipe in (Recipe(**fields), SRRecipe(**fields)):
        assert recipe.schedule == want
        assert [recipe.lr_at(k) for k in range(40)] == [want.at(k) for k in range(40)]
    if decay_start is not None and decay_start < 0:  # "never" in both (SR used to decay from -1)
        assert SRRecipe(**fields).lr_at(39) == Recipe(**fields).lr_at(39) == 2e-3


def test_warmup_multiplies_the_schedule_from_the_step_a_run_starts_at():
    from edgerestore.training.denoise import Recipe
    from edgerestore.training.schedule import NEVER, warmup_factor

    recipe = Recipe(lr=1e-3, decay_start=NEVER, decay_steps=10)
    rates = [recipe.lr_at(k) * warmup_factor(k, 50, 4) for k in range(50, 56)]
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_the_cli_takes_never_for_either_recipe_and_resume_keeps_the_stored_fields():
    from edgerestore.cli import build_parser
    from edgerestore.training.denoise import Recipe
    from edgerestore.training.sr import SRRecipe

    parser = build_parser()
    for task in ("denoise", "sr"):
        args = parser.parse_args(["train", task, "--data", "d", "--out", "o", "--minutes", "1",
                                  "--decay-start", "never"])
        assert args.decay_start == -1
        assert parser.parse_args(["train", task, "--data", "d", "--out", "o", "--minutes", "1",
                                  "--decay-start", "1200"]).decay_start == 1200
    stored = {"lr": 5e-4, "decay_start": 9481, "decay_steps": 5000, "features": 32, "depth": 8}
    resumed = SRRecipe.resume(stored, decay_start=-1, lr=None)
    assert (resumed.decay_start, resumed.lr, resumed.depth, resumed.precision) == (-1, 5e-4, 8, "fp32")
    assert Recipe.from_options(features=None, depth=5) == Recipe(depth=5)
