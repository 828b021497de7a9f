"""INT8 denoisers against their FP32 model on 8-bit clipped noise: per image, per sigma.

    python benchmarks/bench_qat.py --int8 ptq-cpu=a.onnx qat-cpu=b.onnx qat-trt=c.onnx
    python benchmarks/bench_qat.py --fp32 other.onnx --int8 ... --quick

The question #23 asks of a QAT model: at most 0.1 dB below FP32 on BSD68 at sigma
15/25/50 with 8-bit clipped noise (what the runtime feeds), and at least 2x FP32's speed
at 720p in ONNX Runtime on 2 CPU threads. For each sigma, every image of BSD68 and Set12
gets Gaussian noise drawn here (seed per image and sigma, the same for every model),
clipped to [0, 255] and rounded to 8-bit levels, and the true sigma as its noise-level
map; each model's PSNR against the clean image. Reported: mean per set and sigma, the
mean drop against the FP32 model, the worst image's drop and how many images lose more
than 0.1 dB. Speed: milliseconds per 720x1280 frame, models interleaved (load from other
processes hits all alike), median of the repetitions and the ratio to FP32.

Results go to ``benchmarks/results/qat.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script
from bench_quantization import DATA, load_gray, session, sha256, speed, write_atomic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.metrics import psnr  # noqa: E402

SIGMAS = (15.0, 25.0, 50.0)
TOLERANCE_DB = 0.1


def test_sets(quick: bool) -> dict[str, list[tuple[str, np.ndarray]]]:
    out = {}
    for name in ("BSD68", "Set12"):
        files = sorted((DATA / "testsets" / name).glob("*.png"))
        if quick:
            files = files[::6]
        out[name] = [(f.stem, load_gray(f)) for f in files]
    return out


def clipped_noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, int(sigma * 100)])
    noisy = clean + rng.standard_normal(clean.shape) * (sigma / 255.0)
    return (np.rint(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def per_image_psnr(path: str, sets, threads: int) -> dict[tuple[str, float], list[float]]:
    sess = session(path, threads)
    names = [i.name for i in sess.get_inputs()]
    out = {}
    for set_name, images in sets.items():
        for sigma in SIGMAS:
            vals = []
            for k, (_, clean) in enumerate(images):
                noisy = clipped_noisy(clean, sigma, 1000 + k)
                feed = {names[0]: noisy[None, None], names[1]: np.full((1, 1, *clean.shape), sigma / 255, np.float32)}
                vals.append(psnr(clean, sess.run(None, feed)[0][0, 0]))
            out[(set_name, sigma)] = vals
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fp32", default=str(REPO / "edgerestore" / "zoo" / "dn-gray.onnx"))
    p.add_argument("--int8", nargs="+", required=True, metavar="NAME=PATH")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="every 6th image, 3 speed repetitions")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "qat.md"))
    args = p.parse_args(argv)
    models = {"fp32": args.fp32}
    for item in args.int8:
        name, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            p.error(f"--int8 wants NAME=PATH of an existing file, got {item!r}")
        models[name] = path
    sets = test_sets(args.quick)
    t0 = time.perf_counter()
    scores = {name: per_image_psnr(path, sets, args.threads) for name, path in models.items()}
    reps = 3 if args.quick else args.reps
    times = speed(models, (720, 1280), args.threads, reps, ("image", "noise_level"))
    lines = ["# INT8 denoisers vs FP32 on 8-bit clipped noise", "",
             f"Command: `python benchmarks/bench_qat.py {' '.join(argv or sys.argv[1:])}`", "",
             f"Machine: {cpu_description()}; ONNX Runtime CPU provider, {args.threads} threads. "
             f"Noise: Gaussian, clipped to [0, 255] and rounded to 8 bits, true sigma as the map; "
             f"seed per image and sigma, the same for every model. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "", "| model | file sha256 |", "|---|---|"]
    lines += [f"| {n} | `{sha256(pth)[:16]}` ({Path(pth).name}) |" for n, pth in models.items()]
    lines += ["", "## PSNR (dB), mean per set; drop = FP32 - INT8 (positive: INT8 worse)", "",
              "| set | sigma | " + " | ".join(models) + " | " + " | ".join(
                  f"{n}: mean drop / worst image / images > {TOLERANCE_DB} dB" for n in models if n != "fp32") + " |",
              "|---|---|" + "---|" * (2 * len(models) - 1)]
    for set_name, images in sets.items():
        for sigma in SIGMAS:
            ref = np.array(scores["fp32"][(set_name, sigma)])
            row = [f"{np.mean(scores[n][(set_name, sigma)]):.3f}" for n in models]
            drops = []
            for n in models:
                if n == "fp32":
                    continue
                d = ref - np.array(scores[n][(set_name, sigma)])
                worst = int(np.argmax(d))
                drops.append(f"{d.mean():+.3f} / {d[worst]:+.3f} ({images[worst][0]}) / {int((d > TOLERANCE_DB).sum())} of {len(d)}")
            lines.append(f"| {set_name} | {sigma:g} | " + " | ".join(row) + " | " + " | ".join(drops) + " |")
    lines += ["", "## Speed at 720x1280 (ms per frame, median; ratio = FP32 time / model time)", "",
              "| model | median ms | speed vs fp32 |", "|---|---|---|"]
    base = statistics.median(times["fp32"])
    for n, t in times.items():
        lines.append(f"| {n} | {statistics.median(t):.1f} | {base / statistics.median(t):.2f}x |")
    lines += ["", "## Per image (BSD68 and Set12), drop against FP32 in dB at sigma 15 / 25 / 50", ""]
    for n in models:
        if n == "fp32":
            continue
        lines += [f"### {n}", "", "| set | image | " + " | ".join(f"sigma {s:g}" for s in SIGMAS) + " |",
                  "|---|---|" + "---|" * len(SIGMAS)]
        for set_name, images in sets.items():
            for k, (stem, _) in enumerate(images):
                d = [scores["fp32"][(set_name, s)][k] - scores[n][(set_name, s)][k] for s in SIGMAS]
                lines.append(f"| {set_name} | {stem} | " + " | ".join(f"{x:+.3f}" for x in d) + " |")
        lines.append("")
    lines.append(f"Ran in {time.perf_counter() - t0:.0f} s.")
    write_atomic(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines[: 12 + 2 * len(SIGMAS) * len(sets) + 8 + len(models)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
