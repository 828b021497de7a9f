"""Cost of a per-pixel sigma in ``nlm()`` against one sigma (issue #22, step 1).

``nlm(img, sigma=<H x W map>)`` loads the map's two terms per pixel and offset, and
patchwise it computes both weights of a pair (two ``exp`` instead of one). This measures
that cost on a real frame: the pedestrians clip's first frame at 640x360 (colour:
pixelwise by default) and its luminance (gray: patchwise by default), 8-bit clipped
Gaussian noise of sigma 25 (seed 22); the map is a temporal-average-like residual level
(0.45 sigma with patches of full sigma). Runs alternate scalar / constant map / varying
map, ``--rounds`` times, after a warm-up; the ratio is the median over rounds of each
round's ratio to the scalar run. Also the largest difference between the scalar result
and the constant map's (the same result up to float32 rounding).

    python benchmarks/bench_temporal_sigma_map.py [--rounds 5]

Writes ``benchmarks/results/temporal_sigma_map.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_description  # noqa: E402

from edgerestore.kernels import nlm  # noqa: E402

DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "video"
SIGMA = 25.0


def first_frame() -> np.ndarray:
    import av

    path = sorted(DATA.glob("*pedestrian*"))[0]
    with av.open(str(path)) as box:
        frame = next(box.decode(video=0)).to_ndarray(format="bgr24")
    return cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)


def residual_like_map(shape, rng) -> np.ndarray:
    """0.45 sigma where 'neighbours matched', full sigma in 40x40 blocks that did not."""
    m = np.full(shape, 0.45 * SIGMA)
    H, W = shape
    for _ in range(12):
        y, x = rng.integers(0, H - 40), rng.integers(0, W - 40)
        m[y:y + 40, x:x + 40] = SIGMA
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "temporal_sigma_map.md")
    args = ap.parse_args()
    rng = np.random.default_rng(22)
    clean = first_frame()
    noisy_c = np.clip(clean + rng.normal(0, SIGMA, clean.shape).round(), 0, 255).astype(np.uint8)
    gray = cv2.cvtColor(noisy_c, cv2.COLOR_BGR2GRAY)
    cases = {"colour 640x360 (pixelwise)": noisy_c.astype(np.float32) / 255.0,
             "gray 640x360 (patchwise)": gray.astype(np.float32) / 255.0}
    vmap = residual_like_map(clean.shape[:2], rng)
    cmap = np.full(clean.shape[:2], SIGMA)
    lines = [
        "# A per-pixel sigma in nlm(): cost against one sigma",
        "",
        f"`python benchmarks/bench_temporal_sigma_map.py --rounds {args.rounds}`, "
        f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_description()} (shared with other jobs).",
        f"Pedestrians clip, first frame at 640x360, sigma {SIGMA:g}; the varying map is 0.45 sigma with twelve "
        "40x40 blocks at full sigma. ms per call; ratio: median over rounds of the round's ratio to one sigma.",
        "",
        "| image | one sigma ms | constant map ms (ratio) | varying map ms (ratio) | max diff scalar vs constant map |",
        "|---|---|---|---|---|",
    ]
    for name, img in cases.items():
        runs = {"scalar": (SIGMA,), "constant": (cmap,), "varying": (vmap,)}
        for sig in runs.values():
            nlm(img, sig[0])  # compile / warm up
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, (sig,) in runs.items():
                t0 = time.perf_counter()
                nlm(img, sig)
                times[k].append(time.perf_counter() - t0)
        diff = float(np.abs(nlm(img, SIGMA) - nlm(img, cmap)).max())
        ratio = {k: statistics.median(a / b for a, b in zip(times[k], times["scalar"])) for k in runs}
        ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
        lines.append(f"| {name} | {ms['scalar']:.0f} | {ms['constant']:.0f} ({ratio['constant']:.2f}) | "
                     f"{ms['varying']:.0f} ({ratio['varying']:.2f}) | {diff:.1e} |")
        print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
