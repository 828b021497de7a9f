"""Growing a trained denoiser into a wider/deeper one (ffdnet.grow, train(init_from=...))."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tiny_models import tiny_recipe, write_training_images

pytestmark = pytest.mark.torch


def _random_model(config, seed):
    import torch

    from edgerestore.models import ffdnet

    torch.manual_seed(seed)
    model = ffdnet.build(**config).double()
    for p in model.parameters():  # weights of a trained net's size, biases non-zero
        p.data.normal_(0.0, 0.15)
    return model


@pytest.mark.parametrize("src,dst", [((8, 4), (13, 4)), ((8, 4), (8, 7)), ((6, 5), (11, 9))])
def test_a_grown_model_computes_the_same_function(src, dst):
    import torch

    from edgerestore.models import ffdnet

    s = {"channels": 1, "features": src[0], "depth": src[1]}
    d = {"channels": 1, "features": dst[0], "depth": dst[1]}
    small = _random_model(s, seed=3)
    big = ffdnet.build(**d).double()
    big.load_state_dict(ffdnet.grow(small.state_dict(), s, d, seed=1))
    g = torch.Generator().manual_seed(11)
    x = torch.rand(2, 1, 22, 30, generator=g, dtype=torch.float64)
    level = torch.rand(2, 1, 22, 30, generator=g, dtype=torch.float64) * 0.3
    with torch.no_grad():
        want, got = small(x, level), big(x, level)
    assert float((want - x).abs().max()) > 0.05  # the net does something to compare
    # grow() works in float32: relative error ~1e-7 per layer
    assert float((got - want).abs().max()) < 1e-5 * float((want - x).abs().max())


def test_copied_units_get_different_gradients_so_they_can_diverge():
    import torch

    from edgerestore.models import ffdnet

    s = {"channels": 1, "features": 4, "depth": 3}
    d = {"channels": 1, "features": 8, "depth": 3}
    small = _random_model(s, seed=5)
    state = ffdnet.grow(small.state_dict(), s, d, seed=2)
    big = ffdnet.build(**d).double()
    big.load_state_dict(state)
    w0 = state["body.0.weight"]
    # every new unit's incoming weights are an exact copy of an old unit's
    originals = [next(i for i in range(4) if torch.equal(w0[j], w0[i])) for j in range(4, 8)]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)
    loss = big(x, torch.full_like(x, 0.1)).square().mean()
    loss.backward()
    grad = big.body[0].weight.grad
    for j, i in zip(range(4, 8), originals):
        assert not torch.allclose(grad[j], grad[i]), (i, j)


def test_grow_refuses_to_shrink_or_change_channels():
    from edgerestore.models import ffdnet

    s = {"channels": 1, "features": 8, "depth": 4}
    state = _random_model(s, seed=0).float().state_dict()
    for d in ({"channels": 1, "features": 6, "depth": 4}, {"channels": 1, "features": 8, "depth": 3},
              {"channels": 3, "features": 8, "depth": 4}):
        with pytest.raises(ValueError, match="can only grow"):
            ffdnet.grow(state, s, d)


def test_a_run_started_from_a_smaller_checkpoint_starts_at_its_quality(tmp_path, capsys):
    import torch

    from edgerestore.cli import main
    from edgerestore.models import ffdnet
    from edgerestore.models.checkpoint import load_checkpoint
    from edgerestore.training.denoise import train

    data = write_training_images(tmp_path / "data")
    train(data, tmp_path / "small", minutes=2, recipe=tiny_recipe(lr=3e-3), max_steps=15,
          handle_signals=False, threads=1, device="cpu")
    src = load_checkpoint(tmp_path / "small" / "last.pt")
    common = ["train", "denoise", "--data", str(data), "--minutes", "2", "--threads", "1", "--device", "cpu",
              "--init-from", str(tmp_path / "small" / "last.pt")]
    assert main(common + ["--out", str(tmp_path / "big"), "--features", "12", "--depth", "5", "--patch", "16",
                          "--batch", "4", "--holdout-every", "3", "--lr", "1e-9", "--max-steps", "1"]) == 0
    grown = load_checkpoint(tmp_path / "big" / "last.pt")
    assert grown["config"] == {"channels": 1, "features": 12, "depth": 5}
    assert grown["init_from"]["source_step"] == 15 and grown["init_from"]["config"]["features"] == 8
    lines = [json.loads(x) for x in (tmp_path / "big" / "log.jsonl").read_text().splitlines()]
    starts = [d for d in lines if d["kind"] in ("start", "init")]
    assert [d["kind"] for d in starts] == ["start", "init"] and starts[0]["warmup_steps"] == 300

    small_net = ffdnet.build(**src["config"])
    small_net.load_state_dict(src["ema"])
    big_net = ffdnet.build(**grown["config"])
    big_net.load_state_dict(grown["ema"])  # one step at lr 1e-9: still the grown weights
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 1, 24, 24, generator=g)
    level = torch.full_like(x, 25 / 255)
    with torch.no_grad():
        want, got = small_net(x, level), big_net(x, level)
    assert float((want - x).abs().max()) > 1e-3
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)

    # smaller than the checkpoint, or together with --resume: refused with the fix named
    assert main(common + ["--out", str(tmp_path / "narrow"), "--features", "6", "--depth", "4",
                          "--patch", "16", "--batch", "4", "--holdout-every", "3", "--max-steps", "1"]) == 1
    assert "at least those of the checkpoint" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "big"), "--resume", "--max-steps", "2"]) == 1
    assert "cannot be combined with resume" in capsys.readouterr().err
