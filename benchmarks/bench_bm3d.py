"""BM3D: quality and speed against the ``bm3d`` package (the Tampere reference).

    python benchmarks/bench_bm3d.py                  # Set12 + BSD68 at sigma 15/25/50, speed
    python benchmarks/bench_bm3d.py --limit 4        # first 4 images of each set (smoke)
    python benchmarks/bench_bm3d.py --no-quality     # speed only
    python benchmarks/bench_bm3d.py --no-speed       # quality only

Writes ``benchmarks/results/bm3d.md`` (``--out`` to change) and prints the same tables.

Protocol
--------
* Noise: the literature's protocol (the published BM3D figures use it): ``clean/255 +
  N(0, sigma/255)`` in float, not clipped, not quantised; a fixed seed per image and
  sigma; both methods get the same noisy array. Ours runs through
  ``edgerestore.kernels.bm3d_filter.run_stages`` (the kernel behind ``bm3d()``; the
  public wrapper accepts [0, 1] inputs only), the package through ``bm3d.bm3d(z, sigma/255)``
  (default profile, both stages). PSNR of outputs clipped to [0, 1] against the clean
  image, averaged over the set.
* Speed: Set12 01 (256x256) and Set12 08 (512x512), sigma 25, both stages, after warm-up;
  ``--threads`` threads for both (``numba.set_num_threads``; the package's
  ``profile.num_threads``). Runs alternate between the two and the median is reported
  with the machine's load average: on a shared machine compare only figures of one run.
  Wall and CPU time (``time.process_time``, all threads of the process) are both
  reported: on a loaded machine the CPU-time ratio is the steadier one. Our time is split
  into matching / 3D transforms + shrinkage / aggregation by running the stage with
  parts switched off (``match_blocks``, ``run_stage_without_aggregation``).
* CUDA (only when numba.cuda sees a real GPU): ms per 512x512, 720p and 1080p gray frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script

import edgerestore.kernels.bm3d_filter as B
from edgerestore.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "testsets"
SIGMAS = (15, 25, 50)
PUBLISHED = {("BSD68", 15): 31.07, ("BSD68", 25): 28.57, ("BSD68", 50): 25.62, ("Set12", 25): 29.97}


def load_set(name: str, limit: int | None, start: int = 0) -> list[tuple[str, np.ndarray]]:
    import cv2

    files = sorted((DATA / name).glob("*.png"))[start:][: limit or None]
    return [(f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255) for f in files]


def ours(z: np.ndarray, sigma: float, stage: str = "final") -> np.ndarray:
    return B.run_stages(np.ascontiguousarray(z[None], dtype=np.float32), sigma,
                        B.BM3DProfile.for_sigma(sigma), stage, "cpu")[0]


def package(z: np.ndarray, sigma: float, threads: int = 0) -> np.ndarray:
    import bm3d

    prof = bm3d.BM3DProfile()
    prof.num_threads = threads
    return bm3d.bm3d(z, sigma / 255, profile=prof)


def quality(limit: int | None, sets=("Set12", "BSD68"), start: int = 0) -> list[str]:
    rows = ["| set | sigma | images | ours (dB) | bm3d package (dB) | ours - package | published BM3D |",
            "|---|---|---|---|---|---|---|"]
    for set_name in sets:
        images = load_set(set_name, limit, start)
        for sigma in SIGMAS:
            a, b = [], []
            for idx, (_, clean) in enumerate(images):
                rng = np.random.default_rng(1000 * sigma + start + idx)
                z = clean + rng.normal(0, sigma / 255, clean.shape)
                a.append(psnr(clean, ours(z, sigma)))
                b.append(psnr(clean, package(z, sigma)))
                print(f"    {set_name} {images[idx][0]} sigma {sigma}: ours {a[-1]:.3f} "
                      f"package {b[-1]:.3f} noisy {psnr(clean, z):.2f}", file=sys.stderr, flush=True)
            pub = PUBLISHED.get((set_name, sigma))
            row = (f"| {set_name} | {sigma} | {len(images)} | {np.mean(a):.2f} | {np.mean(b):.2f} | "
                   f"{np.mean(a) - np.mean(b):+.3f} | {pub if pub else '-'} |")
            print(row, flush=True)
            rows.append(row)
            worst = int(np.argmin(np.array(a) - np.array(b)))
            print(f"    worst image {images[worst][0]}: {a[worst] - b[worst]:+.3f} dB", flush=True)
    return rows


def _time(fn, repeat: int) -> float:
    """Median CPU seconds of the process (all threads): steadier than wall time under load."""
    ts = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return statistics.median(ts)


def _wall(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def speed(threads: int, repeat: int) -> list[str]:
    import numba

    numba.set_num_threads(threads)
    rows = [f"threads: {threads}; load average before: {os.getloadavg()[0]:.1f}", "",
            "| image | ours wall (s) | package wall (s) | ratio wall | ours CPU (s) | package CPU (s) | ratio CPU | ours stage 1 only, wall (s) |",
            "|---|---|---|---|---|---|---|---|"]
    parts = ["| image | stage | matching (s) | 3D transforms + shrinkage (s) | aggregation + inverse (s) |",
             "|---|---|---|---|---|"]
    sigma = 25
    for name in ("01.png", "08.png"):
        import cv2

        clean = cv2.imread(str(DATA / "Set12" / name), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255
        z = clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape)
        ours(z, sigma)  # warm-up (JIT)
        ta, tb, th, ca, cb = [], [], [], [], []
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            ours(z, sigma)
            ta.append(time.perf_counter() - t); ca.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            package(z, sigma, threads)
            tb.append(time.perf_counter() - t); cb.append(time.process_time() - c)
            t = time.perf_counter(); ours(z, sigma, "hard"); th.append(time.perf_counter() - t)
        a, b = statistics.median(ta), statistics.median(tb)
        c1, c2 = statistics.median(ca), statistics.median(cb)
        size = f"{clean.shape[0]}x{clean.shape[1]}"
        row = (f"| {size} ({name}) | {a:.3f} | {b:.3f} | {a / b:.2f} | {c1:.3f} | {c2:.3f} | "
               f"{c1 / c2:.2f} | {statistics.median(th):.3f} |")
        print(row, flush=True)
        rows.append(row)
        # where the time goes
        z32 = np.ascontiguousarray(z[None], dtype=np.float32)
        basic = B.run_stages(z32, sigma, B.BM3DProfile.for_sigma(sigma), "hard", "cpu")
        for wiener, pilot in ((False, z32), (True, np.ascontiguousarray(basic))):
            p = B.stage_params(B.BM3DProfile.for_sigma(sigma), sigma, wiener)
            B.run_stage_without_aggregation(z32, pilot, p)  # compile the timing variant outside the clock
            B.match_blocks(pilot[0], p)
            tm = _time(lambda: B.match_blocks(pilot[0], p), repeat)
            tf = _time(lambda: B.run_stage_without_aggregation(z32, pilot, p), repeat)
            tt = _time(lambda: B.run_stage(z32, pilot, p), repeat)
            prow = (f"| {size} | {'2 (Wiener)' if wiener else '1 (hard thr.)'} | {tm:.3f} | "
                    f"{max(tf - tm, 0):.3f} | {max(tt - tf, 0):.3f} |")
            print(prow, flush=True)
            parts.append(prow)
    rows.append(f"load average after: {os.getloadavg()[0]:.1f}")
    return rows + ["", "Where our time goes (same run, median CPU seconds over both threads):", ""] + parts


def cuda_speed(repeat: int) -> list[str]:
    try:
        from numba import cuda

        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not cuda.is_available():
            return ["no CUDA GPU here: not measured"]
    except Exception as exc:  # pragma: no cover
        return [f"numba.cuda unusable: {exc}"]
    from edgerestore.kernels import bm3d
    rows = ["| frame | ms (both stages) | ms (stage 1) |", "|---|---|---|"]
    for h, w in ((512, 512), (720, 1280), (1080, 1920)):
        img = np.random.default_rng(0).random((h, w), dtype=np.float32)
        bm3d(img, 25, device="cuda")
        tf = _wall(lambda: bm3d(img, 25, device="cuda"), repeat)
        th = _wall(lambda: bm3d(img, 25, device="cuda", stage="hard"), repeat)
        rows.append(f"| {h}x{w} | {1000 * tf:.1f} | {1000 * th:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--start", type=int, default=0, help="skip the first N images of each set")
    ap.add_argument("--sets", nargs="+", default=["Set12", "BSD68"], choices=["Set12", "BSD68"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bm3d.md")
    args = ap.parse_args(argv)
    cmd = "python benchmarks/bench_bm3d.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = ["# BM3D benchmark", "", f"Command: `{cmd.strip()}`  ", f"Machine: {cpu_description()}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    if not args.no_quality:
        lines += ["## Quality (mean PSNR, dB)", ""] + quality(args.limit, args.sets, args.start) + [""]
    if not args.no_speed:
        lines += ["## CPU speed (sigma 25, both stages, after JIT warm-up)", ""] + speed(args.threads, args.repeat) + [""]
        lines += ["## CUDA", ""] + cuda_speed(args.repeat) + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
