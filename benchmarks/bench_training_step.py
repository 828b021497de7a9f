"""Training step speed: bf16 autocast against fp32 (the anchor), same model, same run.

    python benchmarks/bench_training_step.py                  # the dn-gray recipe, CPU
    python benchmarks/bench_training_step.py --device cuda --batch 64

One step = forward + MSE loss + backward + Adam, on a fixed random batch of the
recipe's patches (64x64 gray, noise-level map), exactly what ``train_step`` in
``edgerestore/training/denoise.py`` does minus data sampling and EMA. The two
precisions are interleaved (``--rounds`` rounds of ``--steps`` steps each, after a
warm-up) so that load on a shared machine hits both; the table gives the median
ms per step and the fp32 / bf16 ratio. Needs torch (the train extra).
Writes ``benchmarks/results/training_step.md`` (or ``--out``) and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--features", type=int, default=48)
    ap.add_argument("--depth", type=int, default=15)
    ap.add_argument("--steps", type=int, default=5, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "training_step.md"))
    args = ap.parse_args(argv)

    import torch

    from edgerestore.models import ffdnet
    from edgerestore.training.device import autocast, resolve_device

    device = resolve_device(torch, args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ffdnet.build(channels=1, features=args.features, depth=args.depth).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    clean = torch.rand(args.batch, 1, args.patch, args.patch, generator=g)
    level = torch.rand(args.batch, 1, 1, 1, generator=g).expand_as(clean) * (75 / 255)
    noisy = clean + torch.randn(clean.shape, generator=g) * level
    clean, noisy, level = (t.contiguous().to(device) for t in (clean, noisy, level))

    def step(precision: str) -> None:
        with autocast(torch, device, precision):
            pred = model(noisy, level)
        loss = torch.nn.functional.mse_loss(pred.float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for precision in times:  # warm-up (oneDNN primitive creation, CUDA kernels)
        for _ in range(3):
            step(precision)
    sync()
    for _ in range(args.rounds):
        for precision in times:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(precision)
            sync()
            times[precision].append((time.perf_counter() - t0) / args.steps * 1000.0)

    med = {p: statistics.median(v) for p, v in times.items()}
    flags = _cpu_flags()
    lines = [
        "# Training step: bf16 autocast vs fp32",
        "",
        f"Command: `python benchmarks/bench_training_step.py {' '.join(argv or sys.argv[1:])}`  ",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} ({device}), "
        f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f}; "
        f"CPU avx512_bf16: {'avx512_bf16' in flags}, amx_bf16: {'amx_bf16' in flags}.",
        "",
        f"FFDNet-style {args.features} features x {args.depth} layers, batch {args.batch} of "
        f"{args.patch}x{args.patch} gray patches; forward + loss + backward + Adam; median of "
        f"{args.rounds} interleaved rounds of {args.steps} steps.",
        "",
        "| precision | ms / step (median) | rounds (ms) | patches / s | fp32 / this |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in ("fp32", "bf16"):
        lines.append(f"| {p} | {med[p]:.0f} | {', '.join(f'{t:.0f}' for t in times[p])} | "
                     f"{args.batch / med[p] * 1000:.0f} | {med['fp32'] / med[p]:.2f}x |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
