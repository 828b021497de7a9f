"""Training checkpoints: one module saves and loads them (edgerestore.models.checkpoint),
the recipes and the exporter both use it, and the checkpoints in training/checkpoints/
still load and resume with the recipe they store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgerestore.errors import InputError

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / "training" / "checkpoints"


def test_a_checkpoint_round_trips_atomically_and_a_foreign_file_is_refused(tmp_path):
    import torch

    from edgerestore.models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint

    ckpt = {"format": CHECKPOINT_FORMAT, "arch": "edgerestore.models.ffdnet", "step": 7,
            "recipe": {"scales": (2, 3), "decay_start": None}, "last_val": {"psnr25": 20.5},
            "ema": {"w": torch.arange(6.0).reshape(2, 3)}}
    path = tmp_path / "last.pt"
    save_checkpoint(ckpt, path)
    old_mode = 0o640
    os.chmod(path, old_mode)
    ckpt["step"] = 8
    save_checkpoint(ckpt, path)  # replaces the file whole, keeping its mode
    back = load_checkpoint(path)
    assert back["step"] == 8 and back["recipe"] == {"scales": (2, 3), "decay_start": None}
    assert torch.equal(back["ema"]["w"], ckpt["ema"]["w"]) and back["last_val"] == {"psnr25": 20.5}
    assert os.stat(path).st_mode & 0o777 == old_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left

    torch.save({"format": CHECKPOINT_FORMAT + 1}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not an edgerestore training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_training_run_writes_what_the_checkpoint_module_describes(tmp_path):
    from edgerestore.models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
    from edgerestore.training.denoise import Recipe, train
    from tests.tiny_models import tiny_recipe, write_training_images

    data = write_training_images(tmp_path / "data")
    recipe = tiny_recipe(val_every=2)
    train(data, tmp_path / "ck", minutes=2, recipe=recipe, max_steps=2, handle_signals=False,
          threads=1, device="cpu")
    last, best = load_checkpoint(tmp_path / "ck" / "last.pt"), load_checkpoint(tmp_path / "ck" / "best.pt")
    header = {"format", "arch", "config", "recipe", "step", "patches_seen", "train_seconds", "best_psnr25",
              "last_val", "commit", "lr_scale", "training_data", "training_files", "heldout_files", "ema"}
    assert set(last) == header | {"model", "optimizer", "rng"}
    assert set(best) == header
    assert last["format"] == CHECKPOINT_FORMAT and last["step"] == 2
    assert Recipe.resume(last["recipe"]) == recipe


@pytest.mark.parametrize("run,task", [("dn_gray", "denoise"), ("sr_luma", "sr"), ("sr_real", "sr")])
def test_the_stored_checkpoints_load_and_resume_with_their_recipe(run, task):
    from edgerestore.models import load_arch
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.denoise import Recipe
    from edgerestore.training.sr import SRRecipe

    path = STORED / run / "last.pt"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    ckpt = load_checkpoint(path)
    recipe = (Recipe if task == "denoise" else SRRecipe).resume(ckpt["recipe"])
    assert recipe.model_config() == dict(ckpt["config"])
    # the stored runs were annealing: a real decay_start, where both recipes always agreed
    start, steps = recipe.decay_start, recipe.decay_steps
    assert recipe.schedule.decays and 0 < start <= ckpt["step"]
    assert recipe.lr_at(start) == recipe.lr and recipe.lr_at(start + steps) == pytest.approx(recipe.lr_min)
    model = load_arch(ckpt["arch"]).build(**ckpt["config"])
    model.load_state_dict(ckpt["model"])
    model.load_state_dict(ckpt["ema"])
