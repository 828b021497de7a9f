"""The time-boxed annealed cycle (``train denoise --anneal-in-budget``): a constant-rate
phase, a step rate measured from it, and a cosine decay fitted into the time left that
ends validated at ``lr_min``. A tiny model on small synthetic images (~20 s)."""

from __future__ import annotations

import json

import pytest

from tests.tiny_models import tiny_recipe, write_training_images

pytestmark = pytest.mark.torch


def _small_checkpoint(tmp_path):
    from edgerestore.training.denoise import train

    data = write_training_images(tmp_path / "data")
    train(data, tmp_path / "small", minutes=1, recipe=tiny_recipe(features=8, depth=3), max_steps=3,
          handle_signals=False, threads=1, device="cpu")
    return data, tmp_path / "small" / "last.pt"


def test_a_cycle_grows_a_checkpoint_and_ends_annealed_and_validated(tmp_path):
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.cycle import annealed_cycle
    from edgerestore.training.denoise import Recipe

    data, small = _small_checkpoint(tmp_path)
    out = tmp_path / "cycle"
    # margin 0.75 (default 0.9): the test must not depend on this machine's timing noise
    summary = annealed_cycle(data, out, minutes=0.25, init_from=small, validations=4, warmup_steps=10,
                             recipe=tiny_recipe(features=12, depth=4, lr=1e-3, lr_min=2e-5, log_every=5),
                             device="cpu", threads=1, margin=0.75)
    p1, p2 = summary["phase1"], summary["phase2"]
    assert p1["stopped_by"] == "time_budget" and p1["steps_per_s"] > 0
    assert set(p1["heldout"]) == {"psnr15", "psnr25", "psnr50"}
    assert p2["start"] == p1["step"] and p2["end"] > p2["start"] and p2["end"] % p2["val_every"] == 0
    assert summary["stopped_by"] == "max_steps", summary  # ended on its own step, not cut off by time

    last = load_checkpoint(out / "last.pt")
    recipe = Recipe(**last["recipe"])
    assert last["step"] == p2["end"] and last["config"]["features"] == 12
    assert (recipe.decay_start, recipe.decay_start + recipe.decay_steps) == (p2["start"], p2["end"])
    assert recipe.lr_at(last["step"]) == pytest.approx(2e-5)
    assert last["init_from"]["config"]["features"] == 8

    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    starts = [i for i, d in enumerate(lines) if d["kind"] == "start"]
    assert len(starts) == 2
    phase1 = [d for d in lines[:starts[1]] if d["kind"] == "train"]
    phase2 = [d for d in lines[starts[1]:] if d["kind"] == "train"]
    assert all(d["lr"] == pytest.approx(1e-3) for d in phase1 if d["step"] > 10)  # after the warm-up
    lrs = [d["lr"] for d in phase2]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0.9e-3 and lrs[-1] < 1e-4
    vals = [d for d in lines if d["kind"] == "val"]
    assert all(d["step"] > p2["start"] for d in vals)  # phase 1 does not validate
    assert vals[-1]["step"] == p2["end"] and 3 <= len(vals) <= 5
    assert (out / "best.pt").exists()
    assert summary["best_psnr25"] == pytest.approx(max(d["psnr25"] for d in vals))


def test_the_cli_runs_a_cycle_and_refuses_options_that_fix_where_it_ends(tmp_path, capsys):
    from edgerestore.cli import main

    data, small = _small_checkpoint(tmp_path)
    common = ["train", "denoise", "--data", str(data), "--threads", "1", "--device", "cpu", "--patch", "16",
              "--batch", "4", "--holdout-every", "3", "--features", "8", "--depth", "3"]
    assert main(common + ["--out", str(tmp_path / "cycle"), "--minutes", "0.1", "--anneal-in-budget",
                          "--init-from", str(small), "--constant-fraction", "0.4", "--validations", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["phase2"]["start"] == summary["phase1"]["step"] > 0
    assert (tmp_path / "cycle" / "best.pt").exists()
    assert main(common + ["--out", str(tmp_path / "ck"), "--minutes", "1", "--anneal-in-budget",
                          "--max-steps", "10"]) == 1
    assert "--max-steps cannot be combined with --anneal-in-budget" in capsys.readouterr().err
    assert not (tmp_path / "ck" / "last.pt").exists()
