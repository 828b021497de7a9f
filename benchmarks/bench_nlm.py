"""Non-local means: quality and speed against scikit-image and OpenCV.

    python benchmarks/bench_nlm.py            # full run (~30 min on 2 busy cores)
    python benchmarks/bench_nlm.py --quick    # a subset (~3 min), for a smoke test

Writes ``benchmarks/results/nlm.md`` (``--out`` to change) and prints the same tables.

Protocol
--------
* Noise: ``clip(round(clean + N(0, sigma)), 0, 255)`` as uint8, a fixed seed per image and
  sigma; every method gets the same noisy image (ours and scikit-image as ``/255``
  floats, OpenCV as uint8). PSNR is measured on outputs rounded to 8 bits, against the
  clean image, and averaged over a set.
* Ours: ``edgerestore.kernels.nlm(noisy, sigma)`` with its defaults (no tuning here;
  the defaults, aggregation included, were tuned on Set12 / Set5, see
  ``edgerestore/kernels/nonlocal_means.py``).
* scikit-image ``denoise_nl_means(fast_mode=True, sigma=sigma)``: h and the sizes tuned
  per sigma on Set12 over ``h = k sigma`` (``SK_GRID``) and two size pairs (its defaults,
  patch 7 and distance 11 = search 23, and ours), then applied to BSD68 (held out).
* OpenCV ``fastNlMeansDenoising``: h tuned per sigma on Set12 over ``CV_GRID`` with
  7/21 (its defaults) and our sizes; applied to BSD68. ``fastNlMeansDenoisingColored``:
  h and hColor tuned on Set5, applied to Set14.
* Every tuning ends with a refinement of k around the best grid value (``REFINE``,
  steps of 0.05 sigma: as fine as the tables our defaults come from).
* Speed: a 512x512 gray image (Set12 08), patch 7, search 21, after warm-up, with
  ``--threads`` threads for both (numba.set_num_threads, cv2.setNumThreads), ours in
  both aggregations; runs alternate between ours and OpenCV, the median is reported.
  The machine's load average is reported beside: on a shared machine, compare only
  figures from the same run.
* JIT: a fresh process with an empty ``NUMBA_CACHE_DIR`` (compile) and a second one with
  the cache filled (load), each timing import + first call on a 64x64 image.
* CUDA (only when numba.cuda sees a GPU): ms per 720p and 1080p frame, gray and colour,
  ``nlm(..., device="cuda")`` end to end (host to device and back), after warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script

from edgerestore.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "testsets"
SIGMAS = (15, 25, 50)
SK_GRID = (0.25, 0.35, 0.5, 0.65, 0.8, 0.95)
CV_GRID = (0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2, 1.35, 1.5)
CV_COLOR_GRID = (0.3, 0.45, 0.6, 0.75, 0.9)
CV_COLOR_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0)
REFINE = (-0.1, -0.05, 0.05, 0.1)  # h / sigma around the best grid value


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load(folder: str, *, color: bool, limit: int | None) -> list[tuple[str, np.ndarray]]:
    import cv2

    files = sorted(p for p in (DATA / folder).iterdir() if p.suffix.lower() in (".png", ".bmp"))
    files = files[:limit] if limit else files
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    return [(p.name, cv2.imread(str(p), flag)) for p in files]


def add_noise(clean: np.ndarray, sigma: float, idx: int) -> np.ndarray:
    rng = np.random.default_rng([int(sigma), idx, 6])
    return np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)


def psnr_8bit(clean, out) -> float:
    """PSNR (peak 255) of ``out`` on the 0-255 scale, stored as 8-bit (rounded; clipped by
    :func:`edgerestore.metrics.psnr`), against the 8-bit ``clean``."""
    return psnr(clean.astype(np.float64), np.rint(np.asarray(out, np.float64)), peak=255.0)


def ours(noisy8, sigma):
    from edgerestore.kernels import nlm

    return nlm(noisy8.astype(np.float32) / 255, sigma) * 255


def skimage_nlm(noisy8, sigma, k, sizes):
    from skimage.restoration import denoise_nl_means

    patch, search = sizes
    return denoise_nl_means(noisy8 / 255.0, patch_size=patch, patch_distance=search // 2,
                            h=k * sigma / 255, sigma=sigma / 255, fast_mode=True,
                            channel_axis=None) * 255


def cv_nlm(noisy8, sigma, k, sizes):
    import cv2

    patch, search = sizes
    return cv2.fastNlMeansDenoising(noisy8, None, float(k * sigma), patch, search)


def cv_nlm_color(noisy8, sigma, k, ratio, sizes):
    import cv2

    patch, search = sizes
    return cv2.fastNlMeansDenoisingColored(noisy8, None, float(k * sigma), float(k * ratio * sigma),
                                           patch, search)


def our_sizes(sigma, color):
    from edgerestore.kernels.nonlocal_means import default_params

    p, s, _, _ = default_params(sigma, color=color)
    return (p, s)


def tune(images, sigma, fn, configs):
    """Best config by mean PSNR over ``images`` (list of (clean, noisy)); returns (cfg, psnr).

    A config's first entry is the factor k of ``h = k sigma``. After the grid, k is
    refined around the best config in steps of ``REFINE`` (as fine as our own tables).
    """
    best = None
    seen = set()

    def run(cfg):
        nonlocal best
        seen.add(cfg)
        v = statistics.fmean(psnr_8bit(c, fn(n, sigma, *cfg)) for c, n in images)
        log(f"    tune sigma {sigma} {fn.__name__} {cfg}: {v:.3f}")
        if best is None or v > best[1]:
            best = (cfg, v)

    for cfg in configs:
        run(cfg)
    k0, rest = best[0][0], best[0][1:]
    for d in REFINE:
        cfg = (round(k0 + d, 3), *rest)
        if cfg[0] > 0 and cfg not in seen:
            run(cfg)
    return best


def quality_gray(quick: bool) -> tuple[list[str], dict]:
    tune_set = load("Set12", color=False, limit=4 if quick else None)
    test_set = load("BSD68", color=False, limit=6 if quick else None)
    rows, tuned = [], {}
    for sigma in SIGMAS:
        tn = [(c, add_noise(c, sigma, i)) for i, (_, c) in enumerate(tune_set)]
        te = [(c, add_noise(c, sigma, 100 + i)) for i, (_, c) in enumerate(test_set)]
        sizes = [(7, 23), our_sizes(sigma, False)]  # skimage's defaults: patch 7, distance 11
        sk_cfg, _ = tune(tn, sigma, skimage_nlm, [(k, s) for s in sizes for k in SK_GRID])
        cv_cfg, _ = tune(tn, sigma, cv_nlm, [(k, s) for s in [(7, 21), our_sizes(sigma, False)]
                                            for k in CV_GRID])
        tuned[sigma] = {"skimage": sk_cfg, "opencv": cv_cfg}
        for name, data in (("Set12", tn), ("BSD68", te)):
            t0 = time.perf_counter()
            o = statistics.fmean(psnr_8bit(c, ours(n, sigma)) for c, n in data)
            t1 = time.perf_counter()
            s = statistics.fmean(psnr_8bit(c, skimage_nlm(n, sigma, *sk_cfg)) for c, n in data)
            t2 = time.perf_counter()
            v = statistics.fmean(psnr_8bit(c, cv_nlm(n, sigma, *cv_cfg)) for c, n in data)
            t3 = time.perf_counter()
            noisy = statistics.fmean(psnr_8bit(c, n) for c, n in data)
            rows.append(f"| {name} ({len(data)}) | {sigma} | {noisy:.2f} | **{o:.2f}** | {s:.2f} | {v:.2f} "
                        f"| {o - s:+.2f} | {o - v:+.2f} | {t1 - t0:.1f} / {t2 - t1:.1f} / {t3 - t2:.1f} |")
            log(rows[-1])
    return rows, tuned


def quality_color(quick: bool) -> tuple[list[str], dict]:
    tune_set = load("Set5", color=True, limit=3 if quick else None)
    test_set = load("Set14", color=True, limit=4 if quick else None)
    rows, tuned = [], {}
    for sigma in SIGMAS:
        tn = [(c, add_noise(c, sigma, 200 + i)) for i, (_, c) in enumerate(tune_set)]
        te = [(c, add_noise(c, sigma, 300 + i)) for i, (_, c) in enumerate(test_set)]
        cfgs = [(k, r, s) for s in [(7, 21), our_sizes(sigma, True)]
                for k in CV_COLOR_GRID for r in CV_COLOR_RATIOS]
        cv_cfg, _ = tune(tn, sigma, cv_nlm_color, cfgs)
        tuned[sigma] = {"opencv_colored": cv_cfg}
        for name, data in (("Set5", tn), ("Set14", te)):
            t0 = time.perf_counter()
            o = statistics.fmean(psnr_8bit(c, ours(n, sigma)) for c, n in data)
            t1 = time.perf_counter()
            v = statistics.fmean(psnr_8bit(c, cv_nlm_color(n, sigma, *cv_cfg)) for c, n in data)
            t2 = time.perf_counter()
            noisy = statistics.fmean(psnr_8bit(c, n) for c, n in data)
            rows.append(f"| {name} ({len(data)}) | {sigma} | {noisy:.2f} | **{o:.2f}** | {v:.2f} | {o - v:+.2f} "
                        f"| {t1 - t0:.1f} / {t2 - t1:.1f} |")
            log(rows[-1])
    return rows, tuned


def _timeit_pair(fa, fb, reps):
    ta, tb = [], []
    for _ in range(reps):
        t = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb), min(ta), min(tb)


def speed(threads: int, quick: bool) -> list[str]:
    import cv2
    import numba

    from edgerestore.kernels import nlm
    from edgerestore.kernels.nonlocal_means import default_aggregation

    numba.set_num_threads(threads)
    cv2.setNumThreads(threads)
    clean = dict(load("Set12", color=False, limit=None))["08.png"]
    noisy = add_noise(clean, 25, 999)
    x = noisy.astype(np.float32) / 255
    reps = 3 if quick else 7
    rows = []
    g_agg = default_aggregation(color=False)
    c_agg = default_aggregation(color=True)
    cv77 = lambda: cv2.fastNlMeansDenoising(noisy, None, 15.0, 7, 21)  # noqa: E731
    cases = [(f"gray 512x512, patch 7, search 21, patchwise{' (default)' if g_agg == 'patch' else ''}",
              lambda: nlm(x, 25, patch_size=7, search_size=21, h=16.0, aggregation="patch"), cv77),
             (f"gray 512x512, patch 7, search 21, pixelwise{' (default)' if g_agg == 'pixel' else ''}",
              lambda: nlm(x, 25, patch_size=7, search_size=21, h=16.0, aggregation="pixel"), cv77)]
    if not quick:
        c8 = dict(load("Set14", color=True, limit=None))["lenna.bmp"]
        nc = add_noise(cv2.resize(c8, (512, 512)), 25, 998)
        xc = nc.astype(np.float32) / 255
        gp, gs = our_sizes(25, False)
        cases.append((f"gray 512x512, our defaults for sigma 25 ({g_agg}wise {gp}/{gs})", lambda: nlm(x, 25),
                      lambda: cv2.fastNlMeansDenoising(noisy, None, 15.0, gp, gs)))
        cases.append((f"colour 512x512, patch 7, search 21, {c_agg}wise (default)",
                      lambda: nlm(xc, 25, patch_size=7, search_size=21),
                      lambda: cv2.fastNlMeansDenoisingColored(nc, None, 10.0, 15.0, 7, 21)))
        big = cv2.resize(noisy, (1280, 720))
        xb = big.astype(np.float32) / 255
        for agg in ("patch", "pixel"):
            cases.append((f"gray 1280x720, patch 7, search 21, {agg}wise",
                          lambda agg=agg: nlm(xb, 25, patch_size=7, search_size=21, aggregation=agg),
                          lambda: cv2.fastNlMeansDenoising(big, None, 15.0, 7, 21)))
    for name, fa, fb in cases:
        fa(), fb()  # warm-up (JIT, caches)
        ma, mb, na, nb = _timeit_pair(fa, fb, reps)
        rows.append(f"| {name} | {ma * 1e3:.0f} ({na * 1e3:.0f}) | {mb * 1e3:.0f} ({nb * 1e3:.0f}) | **{ma / mb:.2f}** |")
        log(rows[-1])
    return rows


_JIT_SNIPPET = (
    "import time; t=time.perf_counter(); import numpy as np; from edgerestore.kernels import nlm; "
    "x=np.random.default_rng(0).random((64,64),dtype=np.float32); t1=time.perf_counter(); nlm(x,25); "
    "t2=time.perf_counter(); nlm(x,25); t3=time.perf_counter(); "
    "print(t1-t, t2-t1, t3-t2)"
)


def jit_cost() -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("first process, empty cache (compile)", "second process, cache filled (load)"):
            out = subprocess.run([sys.executable, "-c", _JIT_SNIPPET], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            imp, first, second = (float(v) for v in out)
            rows.append(f"| {label} | {imp:.2f} | {first:.2f} | {second * 1e3:.1f} ms |")
            log(rows[-1])
    return rows


def cuda_speed() -> list[str]:
    try:
        from numba import cuda

        if not cuda.is_available() or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            return []
    except Exception:
        return []
    from edgerestore.kernels import nlm

    rows = [f"GPU: {cuda.get_current_device().name.decode() if isinstance(cuda.get_current_device().name, bytes) else cuda.get_current_device().name}", "",
            "| frame | ms (median of 10), sigma 25 defaults | ms, patch 7 search 21 |", "|---|---|---|"]
    rng = np.random.default_rng(0)
    for h, w in ((720, 1280), (1080, 1920)):
        for shape in ((h, w), (h, w, 3)):
            x = rng.random(shape, dtype=np.float32)
            res = []
            for kw in ({}, {"patch_size": 7, "search_size": 21}):
                nlm(x, 25, device="cuda", **kw)
                ts = []
                for _ in range(10):
                    t = time.perf_counter()
                    nlm(x, 25, device="cuda", **kw)
                    ts.append(time.perf_counter() - t)
                res.append(statistics.median(ts) * 1e3)
            rows.append(f"| {w}x{h} {'gray' if len(shape) == 2 else 'colour'} | {res[0]:.1f} | {res[1]:.1f} |")
            log(rows[-1])
    return rows


def noise_accuracy() -> list[str]:
    """estimate_sigma vs scikit-image's on Set12 with known sigma (8-bit clipped noise)."""
    from skimage.restoration import estimate_sigma as sk_estimate

    from edgerestore.kernels import estimate_sigma

    clean = [c.astype(np.float64) for _, c in load("Set12", color=False, limit=None)]
    rows = ["| sigma | ours: mean error | ours: worst image | scikit-image: mean error | "
            "scikit-image: worst image |", "|---|---|---|---|---|"]
    for sigma in (5, 15, 25, 50):
        e, k = [], []
        for i, c in enumerate(clean):
            rng = np.random.default_rng(1000 + i)
            z = (np.clip(np.rint(c + rng.normal(0, sigma, c.shape)), 0, 255) / 255).astype(np.float32)
            e.append(estimate_sigma(z) - sigma)
            k.append(255 * sk_estimate(z.astype(np.float64)) - sigma)
        e, k = np.array(e), np.array(k)
        rows.append(f"| {sigma} | {e.mean():+.2f} | {np.abs(e).max():.2f} | {k.mean():+.2f} | {np.abs(k).max():.2f} |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset of images and repetitions")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for ours and OpenCV (default 2)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "nlm.md"))
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--noise-only", action="store_true",
                    help="only the estimate_sigma accuracy table (writes --out, default results/noise.md)")
    ap.add_argument("--color-only", action="store_true",
                    help="only the colour quality table (writes --out, default results/nlm_colour.md)")
    args = ap.parse_args(argv)
    if args.color_only:
        out = Path(args.out if args.out != ap.get_default("out") else REPO / "benchmarks" / "results" / "nlm_colour.md")
        crows, ctuned = quality_color(args.quick)
        text = ["# Non-local means, colour: PSNR (dB)", "",
                f"Command: `python benchmarks/bench_nlm.py --color-only{' --quick' if args.quick else ''}`. "
                "Same protocol as nlm.md; OpenCV `fastNlMeansDenoisingColored` with h, hColor and sizes tuned "
                f"per sigma on Set5 (h = k sigma, k in {CV_COLOR_GRID}; hColor / h in {CV_COLOR_RATIOS}; "
                "sizes 7/21 and ours), applied to Set14.", "",
                "| set | sigma | noisy | ours | OpenCV coloured | ours - OpenCV | time s (ours / cv) |",
                "|---|---|---|---|---|---|---|", *crows, "", "Tuned settings:", ""]
        for sg, t in ctuned.items():
            k, r, sz = t["opencv_colored"]
            text.append(f"* sigma {sg}: OpenCV h = {k} sigma, hColor = {r} h, sizes {sz}")
        out.write_text("\n".join(text) + "\n")
        print("\n".join(text))
        return 0
    if args.noise_only:
        out = Path(args.out if args.out != ap.get_default("out") else REPO / "benchmarks" / "results" / "noise.md")
        text = "\n".join(["# estimate_sigma accuracy on Set12", "",
                          "Command: `python benchmarks/bench_nlm.py --noise-only`. 8-bit clipped noise of known "
                          "sigma, seed 1000 + image index; error = estimate - sigma (0-255 scale).", "",
                          *noise_accuracy(), ""])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(text)
        return 0

    import cv2
    import numba
    import skimage

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()
    cpu = cpu_description()
    md = [
        "# Non-local means: quality and speed",
        "",
        f"Command: `python benchmarks/bench_nlm.py{' --quick' if args.quick else ''} --threads {args.threads}`, "
        f"{started}. CPU: {cpu}, {args.threads} threads used. "
        f"numba {numba.__version__}, OpenCV {cv2.__version__}, scikit-image {skimage.__version__}, "
        f"NumPy {np.__version__}. Load average at start: {load0[0]:.1f} (the machine is shared; "
        "ratios from the same run are what to compare).",
        "",
        "Protocol: see the docstring of `benchmarks/bench_nlm.py`. Noise is 8-bit, clipped; PSNR on "
        "8-bit outputs; mean over the set.",
        "",
    ]
    if not args.skip_quality:
        grows, gtuned = quality_gray(args.quick)
        md += ["## Gray: PSNR (dB)", "",
               "Ours: defaults for sigma. scikit-image fast mode and OpenCV: h and sizes tuned per sigma on "
               "Set12, the same values used on BSD68.", "",
               "| set | sigma | noisy | ours | skimage | OpenCV | ours - skimage | ours - OpenCV | time s (ours / sk / cv) |",
               "|---|---|---|---|---|---|---|---|---|", *grows, "",
               "Tuned settings (h as a multiple of sigma; sizes as patch, search):", ""]
        for s, t in gtuned.items():
            md.append(f"* sigma {s}: scikit-image h = {t['skimage'][0]} sigma, sizes {t['skimage'][1]}; "
                      f"OpenCV h = {t['opencv'][0]} sigma, sizes {t['opencv'][1]}")
        crows, ctuned = quality_color(args.quick)
        md += ["", "## Colour: PSNR (dB)", "",
               "OpenCV `fastNlMeansDenoisingColored`: h, hColor and sizes tuned per sigma on Set5, applied to "
               "Set14.", "",
               "| set | sigma | noisy | ours | OpenCV coloured | ours - OpenCV | time s (ours / cv) |",
               "|---|---|---|---|---|---|---|", *crows, "", "Tuned settings:", ""]
        for s, t in ctuned.items():
            k, r, sz = t["opencv_colored"]
            md.append(f"* sigma {s}: OpenCV h = {k} sigma, hColor = {r} h, sizes {sz}")
    srows = speed(args.threads, args.quick)
    md += ["", "## Speed on the CPU", "",
           f"Median (min) of {3 if args.quick else 7} alternating runs after warm-up, {args.threads} threads each. "
           "Ratio = ours / OpenCV (below 1: we are faster).", "",
           "| case | ours ms | OpenCV ms | ratio |", "|---|---|---|---|", *srows]
    jrows = jit_cost()
    md += ["", "## JIT cost (fresh processes)", "",
           "| process | import s | first call s (64x64) | second call |", "|---|---|---|---|", *jrows]
    crows = cuda_speed()
    md += ["", "## CUDA", ""]
    md += crows if crows else ["Not measured: no CUDA GPU on the machine that ran this benchmark. "
                               "Correctness of the CUDA kernel is checked under NUMBA_ENABLE_CUDASIM=1 in the tests."]
    md += ["", f"Load average at the end: {os.getloadavg()[0]:.1f}.", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(md)
    tmp = Path(args.out).with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(text)
    print(json.dumps({"written": args.out}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
