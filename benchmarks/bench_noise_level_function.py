"""Accuracy of ``estimate_noise_level_function`` against synthetic ground truth.

    nice -n 10 python benchmarks/bench_noise_level_function.py      # Set12 + BSD68

Noise drawn here: Poisson-Gaussian ``a * Poisson(I / a) + N(0, b)`` (variance ``a*I + b``,
0-255 scale; ``a = 0``: white Gaussian of sigma ``sqrt(b)``), clipped to [0, 255] and
rounded to 8 bits, seeded per setting and image. Per image, the relative error
``|sigma_est(I) - sigma_true(I)| / sigma_true(I)`` at 12 intensities between the image's
10th and 90th intensity percentile (where it has pixels to measure); reported: its mean
over images and levels, the median and the worst over images of the per-image worst
level, the mean estimated ``a`` and ``b``, and how often the estimate is flat.
Writes ``benchmarks/results/noise_level_function.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script
from bench_denoiser import REPO, load_set

from edgerestore.kernels.noise import estimate_noise_level_function

SETTINGS = [(0.0, 25.0), (0.0, 100.0), (0.0, 625.0), (0.3, 9.0), (1.2, 25.0), (3.3, 36.0),
            (0.2, 16.0), (1.0, 36.0), (3.0, 64.0), (0.5, 4.0), (2.0, 1.0)]


def noisy_pg(clean255: np.ndarray, a: float, b: float, seed: int, index: int) -> np.ndarray:
    rng = np.random.default_rng([seed, int(a * 1000), int(b * 100), index])
    z = a * rng.poisson(clean255 / a) if a > 0 else clean255.copy()
    z = z + rng.standard_normal(clean255.shape) * np.sqrt(b)
    return (np.clip(np.rint(z), 0, 255) / 255.0).astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="Set12,BSD68")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "noise_level_function.md"))
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = []
    for set_name in args.sets.split(","):
        images = load_set(set_name, args.limit)
        for a, b in SETTINGS:
            errs, worst, est_a, est_b, flat, secs = [], [], [], [], 0, []
            for i, (_, clean) in enumerate(images):
                c255 = clean.astype(np.float64) * 255.0
                noisy = noisy_pg(c255, a, b, args.seed, i)
                t = time.perf_counter()
                nlf = estimate_noise_level_function(noisy)
                secs.append(time.perf_counter() - t)
                lo, hi = np.percentile(c255, [10, 90])
                levels = np.linspace(lo, hi, 12)
                truth = np.sqrt(a * levels + b)
                e = np.abs(nlf.sigma(levels) - truth) / truth
                errs.append(float(e.mean()))
                worst.append(float(e.max()))
                est_a.append(nlf.a)
                est_b.append(nlf.b)
                flat += nlf.flat
            rows.append((set_name, a, b, len(images), statistics.mean(errs), statistics.median(worst),
                         max(worst), statistics.mean(est_a), statistics.mean(est_b), flat,
                         1000 * statistics.median(secs)))
            print(rows[-1], flush=True)
    cmd = "python benchmarks/bench_noise_level_function.py " + " ".join(sys.argv[1:])
    out = ["# Noise level function: estimation error against synthetic ground truth", "",
           f"Command: `{cmd.strip()}`  ",
           f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_description()}, "
           f"{time.time() - t0:.0f} s.", "",
           "Noise: `a * Poisson(I / a) + N(0, b)` on the 0-255 scale, 8-bit clipped and rounded. "
           "Relative error of sigma(I) at 12 levels between each image's 10th and 90th intensity "
           "percentile; `worst` is an image's worst level. `flat`: images whose estimate has a = 0. "
           "`ms`: median time per image (one process, shared CPU).", "",
           "| set | a | b | sigma range | images | mean rel. error | median worst | max worst | mean est. a "
           "| mean est. b | flat | ms |",
           "|" + " --- |" * 12]
    for s, a, b, n, me, mw, xw, ea, eb, fl, ms in rows:
        out.append(f"| {s} | {a:g} | {b:g} | {np.sqrt(b):.1f}-{np.sqrt(a * 255 + b):.1f} | {n} | {me:.3f} | "
                   f"{mw:.3f} | {xw:.3f} | {ea:.3f} | {eb:.1f} | {fl}/{n} | {ms:.0f} |")
    Path(args.out).write_text("\n".join(out) + "\n")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
