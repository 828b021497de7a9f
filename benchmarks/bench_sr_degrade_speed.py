"""Speed of the SR training degradations (``edgerestore.training.degrade``) inside the
real-degradation patch sampler, with and without H.264, against one training step.

    python benchmarks/bench_sr_degrade_speed.py [--batches 30]

Patches/s of ``RealPatchSampler.next`` (batch 16, 32-pixel LR patches, x2/x3/x4 in turn,
Train400 images) for: the default mix; the same without H.264 (``h264_p`` 0); every
patch H.264 (``h264_p`` 1, no JPEG); clean MATLAB bicubic only. Then ms per training
step of the shipped config (32 features, depth 8) in bf16 and fp32 autocast on 1 torch
thread, interleaved, so the sampler's share of a step is a ratio measured in this one
process (the CPU is shared: absolute figures vary). Writes
``benchmarks/results/sr_degrade_speed.md``.

OpenBLAS runs on ``$OPENBLAS_NUM_THREADS`` threads (1 unless set, as the training should: the
MATLAB-style resize is a small matrix product, and on a 2-core machine shared with other
jobs 2 OpenBLAS threads made it 20-30x slower; see ``training/README.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read once, when numpy is first imported

import numpy as np  # noqa: E402
from _machine import cpu_description  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sr_degrade_speed.md"))
    args = ap.parse_args(argv)

    import torch

    from edgerestore.models import load_arch
    from edgerestore.training import data as D
    from edgerestore.training.degrade import DegradationMix, Degrader
    from edgerestore.training.device import autocast
    from edgerestore.training.sr import RealPatchSampler

    torch.set_num_threads(1)
    imgs = [D.load_gray(f) for f in D.list_images(DATA / "train" / "Train400")[:100]]
    mixes = {"default mix": DegradationMix(), "default mix without H.264": DegradationMix(h264_p=0.0),
             "every patch H.264": DegradationMix(clean_share=0.0, jpeg_p=0.0, h264_p=1.0),
             "clean MATLAB bicubic only": DegradationMix(clean_share=1.0)}
    rates = {}
    for name, mix in mixes.items():
        s = RealPatchSampler(imgs, 32, 16, np.random.default_rng(0), Degrader(mix, seed=1))
        s.next(2)
        t0 = time.perf_counter()
        for i in range(args.batches):
            s.next((2, 3, 4)[i % 3])
        rates[name] = 16 * args.batches / (time.perf_counter() - t0)

    model = load_arch("edgerestore.models.espcn").build(scales=(2, 3, 4), features=32, depth=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    s = RealPatchSampler(imgs, 32, 16, np.random.default_rng(0), Degrader(DegradationMix(clean_share=1.0), seed=1))
    batches = {sc: [torch.from_numpy(a) for a in s.next(sc)] for sc in (2, 3, 4)}
    step_ms = {"bf16": [], "fp32": []}
    for i in range(2 * args.batches):
        for prec in step_ms:
            sc = (2, 3, 4)[i % 3]
            lo, hi = batches[sc]
            t0 = time.perf_counter()
            with autocast(torch, "cpu", prec):
                pred = model(lo, sc)
            loss = torch.nn.functional.l1_loss(pred.float(), hi)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 3:
                step_ms[prec].append(1000 * (time.perf_counter() - t0))
    ms = {k: float(np.median(v)) for k, v in step_ms.items()}

    lines = ["# SR training degradations: sampler speed (`benchmarks/bench_sr_degrade_speed.py`)", "",
             f"Command: `python benchmarks/bench_sr_degrade_speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip() + "  ",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_description()}; shared CPU, one process, "
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}.", "",
             "| sampler (batch 16, 32 px LR, x2/x3/x4 in turn) | patches/s | ms per batch | share of a bf16 step |",
             "| --- | --- | --- | --- |"]
    for name, r in rates.items():
        lines.append(f"| {name} | {r:.0f} | {16000 / r:.1f} | {16000 / r / (16000 / r + ms['bf16']):.0%} |")
    lines += ["", f"Training step (forward + backward + Adam, 32 features, depth 8, 1 thread, median): "
              f"bf16 {ms['bf16']:.0f} ms, fp32 {ms['fp32']:.0f} ms (bf16/fp32 = {ms['bf16'] / ms['fp32']:.2f}).", ""]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
