"""Quality and speed of the learned denoiser next to the bm3d package and the published table.

    python benchmarks/bench_denoiser.py                      # zoo dn-gray, BSD68 + Set12, sigma 15/25/50
    python benchmarks/bench_denoiser.py --limit 8 --bm3d-limit 4   # a quick run
    python benchmarks/bench_denoiser.py --model my.onnx --no-bm3d
    python benchmarks/bench_denoiser.py --bm3d-limit 12 --repeat 3 --self-ensemble \
        --card edgerestore/zoo/dn-gray.md           # what the model card shows

Conventions (the published tables' own):
* clean images are 8-bit gray read as float in [0, 1];
* noisy = clean + N(0, (sigma/255)^2) in float, NOT clipped and NOT quantised, seeded
  per (seed, sigma, image index), so every method in one run sees the same noisy image;
* outputs are clipped to [0, 1] (not quantised) before PSNR, PSNR peak 1.0, mean over images;
* odd-sized images (BSD68 is 481x321) are padded by reflection to even size for the
  model (size_multiple=2) and cropped back; the noise-level map is sigma/255 everywhere;
* bm3d is the ``bm3d`` package (``bm3d.bm3d(noisy, sigma_psd=sigma/255)``), run on the
  first ``--bm3d-limit`` images of each set (it takes seconds per image); the model's
  PSNR on exactly those images is reported next to it.

Speed: ONNX Runtime CPU, ``--threads`` intra-op threads (default 2), one 720p frame
(1 x 1 x 720 x 1280), median of ``--repeat`` runs after 2 warm-ups. On a CPU shared with
other jobs the timing is an upper bound.

Writes a Markdown report (default ``benchmarks/results/denoiser.md``) and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script

from edgerestore.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))

# ../shared/data/SOURCES.md (DnCNN TIP 2017 Tables II/III, FFDNet TIP 2018 Table II)
PUBLISHED = {
    ("BSD68", 15): {"BM3D": 31.07, "DnCNN-S": 31.73, "FFDNet": 31.63},
    ("BSD68", 25): {"BM3D": 28.57, "DnCNN-S": 29.23, "FFDNet": 29.19},
    ("BSD68", 50): {"BM3D": 25.62, "DnCNN-S": 26.23, "FFDNet": 26.29},
    ("Set12", 25): {"BM3D": 29.97, "DnCNN-S": 30.44, "FFDNet": 30.43},
}


CARD_HEADING = "## Measured quality and speed"


def load_set(name: str, limit: int | None) -> list[tuple[str, np.ndarray]]:
    import cv2

    folder = DATA / "testsets" / name
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg", ".tif"))
    if limit:
        files = files[:limit]
    return [(f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0) for f in files]


def noisy_of(clean: np.ndarray, sigma: float, seed: int, index: int) -> np.ndarray:
    rng = np.random.default_rng([seed, int(sigma), index])
    return (clean.astype(np.float64) + rng.standard_normal(clean.shape) * sigma / 255.0).astype(np.float32)


def _bm3d_gray(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return bm3d.bm3d(noisy.astype(np.float64), sigma_psd=sigma / 255.0)


def _bm3d_rgb(noisy_bgr: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return bm3d.bm3d_rgb(noisy_bgr[..., ::-1].astype(np.float64), sigma / 255.0)[..., ::-1]


class Bm3dCache:
    """bm3d PSNRs stored in a JSON file, keyed by what they depend on."""

    def __init__(self, path: Path | None) -> None:
        import json
        from importlib.metadata import PackageNotFoundError, version

        try:
            self.version = version("bm3d")
        except PackageNotFoundError:  # fine with --no-bm3d (e.g. on a GPU lease without it)
            self.version = "not installed"
        self.path = path
        self.data = json.loads(path.read_text()) if path and path.exists() else {}
        self.hits = self.misses = 0

    def get(self, key: tuple, compute) -> float:
        import json

        k = "|".join(str(x) for x in (*key, f"bm3d={self.version}"))
        if k in self.data:
            self.hits += 1
            return float(self.data[k])
        self.misses += 1
        value = float(compute())
        self.data[k] = value
        if self.path:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(self.data, indent=0, sort_keys=True))
            tmp.replace(self.path)
        return value


class OrtDenoiser:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        from edgerestore.model_spec import read_spec

        self.spec = read_spec(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.image = self.spec.input_for("image")
        self.level = self.spec.input_for("noise_level")
        self.m = self.spec.size_multiple

    def ensembles(self, noisy: np.ndarray, sigma: float) -> dict[int, np.ndarray]:
        """The self-ensembles of 2, 4 and 8 copies (ModelRestorer's transforms), from one
        run per transform."""
        from edgerestore.restorer import SELF_ENSEMBLE_TRANSFORMS, dihedral, dihedral_inverse

        turned = [dihedral_inverse(self(np.ascontiguousarray(dihedral(noisy, k)), sigma), k).astype(np.float64)
                  for k in range(8)]
        return {n: np.mean([turned[k] for k in ks], axis=0)
                for n, ks in SELF_ENSEMBLE_TRANSFORMS.items() if n > 1}

    def __call__(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        h, w = noisy.shape
        ph, pw = (-h) % self.m, (-w) % self.m
        x = np.pad(noisy, ((0, ph), (0, pw)), mode="reflect") if (ph or pw) else noisy
        x = np.ascontiguousarray(x, np.float32)[None, None]
        feed = {self.image: x}
        if self.level:
            feed[self.level] = np.full_like(x, sigma / 255.0)
        return self.sess.run(None, feed)[0][0, 0, :h, :w]


def write_card(card: Path, report: str) -> None:
    """Replace everything after ``CARD_HEADING`` in ``card`` with ``report`` (its own
    ``#`` title dropped), so the card's figures are always a whole benchmark run."""
    text = card.read_text(encoding="utf-8")
    if CARD_HEADING not in text:
        raise SystemExit(f"{card} has no {CARD_HEADING!r} heading to put the report under")
    body = report.split("\n", 1)[1].lstrip("\n")  # drop "# Denoiser benchmark"
    new = text.split(CARD_HEADING, 1)[0] + CARD_HEADING + "\n\n" + body
    tmp = card.with_name(f".{card.name}.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(card)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "edgerestore" / "zoo" / "dn-gray.onnx"))
    ap.add_argument("--sets", default="BSD68,Set12")
    ap.add_argument("--sigmas", default="15,25,50")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set (default all)")
    ap.add_argument("--bm3d", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--bm3d-limit", type=int, default=None,
                    help="bm3d on the first N images of each set only (default: all of --limit)")
    ap.add_argument("--bm3d-sigmas", default=None, help="sigmas to run bm3d at (default: all of --sigmas)")
    ap.add_argument("--bm3d-cache", default=str(REPO / "benchmarks" / "results" / "bm3d_cache.json"),
                    help="PSNRs of the bm3d package per (set, image, sigma, seed, bm3d version); "
                    "reused when present since they do not depend on the model ('' = no cache)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--color-sets", default="Set5,Set14",
                    help="colour sets for the gray model on decorrelated channels ('' to skip)")
    ap.add_argument("--color-sigmas", default="25")
    ap.add_argument("--color-bm3d-limit", type=int, default=3,
                    help="bm3d_rgb on the first N images of each colour set (default 3; it is slow)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "denoiser.md"))
    ap.add_argument("--self-ensemble", action="store_true",
                    help="also report the model averaged over the 8 flips/rotations (gray sets)")
    ap.add_argument("--card", default=None, metavar="MD",
                    help="also put the report into this model card, replacing everything after "
                         f"its {CARD_HEADING!r} heading")
    args = ap.parse_args(argv)

    sigmas = [float(s) for s in args.sigmas.split(",")]
    bm3d_sigmas = sigmas if args.bm3d_sigmas is None else [float(s) for s in args.bm3d_sigmas.split(",")]
    cache = Bm3dCache(Path(args.bm3d_cache) if args.bm3d_cache else None)
    model = OrtDenoiser(Path(args.model), args.threads)
    prov = model.spec.provenance
    rows = []
    t_all = time.time()
    for set_name in [s for s in args.sets.split(",") if s]:
        images = load_set(set_name, args.limit)
        nb = len(images) if args.bm3d_limit is None else min(args.bm3d_limit, len(images))
        for sigma in sigmas:
            noisy_p, model_p, model_sub, bm3d_p, ens_p, ens_sub = [], [], [], [], [], []
            ens_small = {2: [], 4: []}
            for i, (_, clean) in enumerate(images):
                noisy = noisy_of(clean, sigma, args.seed, i)
                out = model(noisy, sigma)
                noisy_p.append(psnr(clean, noisy))
                model_p.append(psnr(clean, out))
                if args.self_ensemble:
                    ens = model.ensembles(noisy, sigma)
                    ens_p.append(psnr(clean, ens[8]))
                    for n in ens_small:
                        ens_small[n].append(psnr(clean, ens[n]))
                if args.bm3d and i < nb and sigma in bm3d_sigmas:
                    model_sub.append(model_p[-1])
                    ens_sub.extend(ens_p[-1:])
                    bm3d_p.append(cache.get((set_name, images[i][0], sigma, args.seed, "gray"),
                                            lambda: psnr(clean, _bm3d_gray(noisy, sigma))))
            row = {"set": set_name, "sigma": sigma, "n": len(images),
                   "noisy": statistics.mean(noisy_p), "model": statistics.mean(model_p),
                   "nb": len(bm3d_p), "bm3d": statistics.mean(bm3d_p) if bm3d_p else None,
                   "model_on_bm3d_subset": statistics.mean(model_sub) if model_sub else None,
                   "ensemble": statistics.mean(ens_p) if ens_p else None,
                   **{f"ensemble{n}": statistics.mean(v) if v else None for n, v in ens_small.items()},
                   "ensemble_on_bm3d_subset": statistics.mean(ens_sub) if ens_sub else None,
                   "published": PUBLISHED.get((set_name, int(sigma)), {})}
            rows.append(row)
            print(f"{set_name} sigma {sigma:g}: noisy {row['noisy']:.2f}  model {row['model']:.2f}"
                  + (f"  bm3d {row['bm3d']:.2f} vs model {row['model_on_bm3d_subset']:.2f} on {nb}"
                     if bm3d_p else "")
                  + (f"  model x8 {row['ensemble']:.2f}" if ens_p else ""), file=sys.stderr, flush=True)

    # colour: the gray model on the opponent (decorrelated) channels, via ModelRestorer
    color_rows = []
    for set_name in [c for c in args.color_sets.split(",") if c]:
        import cv2

        from edgerestore.restorer import ModelRestorer

        folder = DATA / "testsets" / set_name
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg"))
        if args.limit:
            files = files[:args.limit]
        nb = min(args.color_bm3d_limit, len(files))
        with ModelRestorer.open(args.model, backend="ort-cpu", threads=args.threads) as restorer:
            for sigma in [float(x) for x in args.color_sigmas.split(",")]:
                noisy_p, model_p, model_sub, bm3d_p = [], [], [], []
                for i, f in enumerate(files):
                    clean = cv2.imread(str(f), cv2.IMREAD_COLOR).astype(np.float32) / 255.0
                    # clipped: ModelRestorer takes images in [0, 1], as a camera delivers them
                    noisy = np.clip(noisy_of(clean, sigma, args.seed, i), 0.0, 1.0)
                    out = restorer(noisy, sigma=sigma)
                    noisy_p.append(psnr(clean, noisy))
                    model_p.append(psnr(clean, out))
                    if args.bm3d and i < nb:
                        model_sub.append(model_p[-1])
                        bm3d_p.append(cache.get((set_name, f.name, sigma, args.seed, "rgb-clipped"),
                                                lambda: psnr(clean, _bm3d_rgb(noisy, sigma))))
                row = {"set": set_name, "sigma": sigma, "n": len(files), "noisy": statistics.mean(noisy_p),
                       "model": statistics.mean(model_p), "nb": len(bm3d_p),
                       "bm3d": statistics.mean(bm3d_p) if bm3d_p else None,
                       "model_on_bm3d_subset": statistics.mean(model_sub) if model_sub else None}
                color_rows.append(row)
                print(f"{set_name} colour sigma {sigma:g}: noisy {row['noisy']:.2f} model {row['model']:.2f}",
                      file=sys.stderr, flush=True)

    # speed: one 720p frame
    frame = np.random.default_rng(1).random((720, 1280), dtype=np.float32)
    for _ in range(2):
        model(frame, 25.0)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        model(frame, 25.0)
        times.append((time.perf_counter() - t0) * 1000.0)
    ms720 = statistics.median(times)

    lines = [
        "# Denoiser benchmark",
        "",
        f"Model: `{Path(args.model).name}` (name `{model.spec.name}`), "
        f"{prov.get('architecture', '?')} {prov.get('config', '')}, "
        f"{prov.get('params', '?')} parameters, {prov.get('mflops_per_megapixel', '?')} MFLOPs per megapixel, "
        f"trained {prov.get('steps', '?')} steps ({prov.get('patches_seen', '?')} patches) on "
        f"{prov.get('training_data', '?')}.",
        "",
        f"Command: `python benchmarks/bench_denoiser.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} "
        f"({cpu_description()}), {time.time() - t_all:.0f} s.",
        "",
        "Noise: float, unclipped, unquantised, seeded per image (`--seed "
        f"{args.seed}`); outputs clipped to [0, 1]; mean PSNR in dB. `bm3d pkg` is the `bm3d` "
        "package run here on the same noisy images (first `nb` images); `model (same nb)` is the "
        "model on exactly those images. Published figures: ../shared/data/SOURCES.md."
        + (" `model x8` is the model's self-ensemble (mean over the 8 flips/rotations, 8x the "
           "time; `--self-ensemble` in the CLI), `x2` and `x4` its smaller ones (`--self-ensemble 2|4`: "
           "the half turn; the half turn and both flips); the other columns are the plain model."
           if args.self_ensemble else ""),
        "",
        "| set | sigma | images | noisy | **model** | bm3d pkg | model (same nb) | nb | model - bm3d | "
        "BM3D (paper) | DnCNN-S (paper) | FFDNet (paper) | model - FFDNet |"
        + (" x2 | x4 | model x8 | x8 - bm3d | x8 - FFDNet |" if args.self_ensemble else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        + (" --- | --- | --- | --- | --- |" if args.self_ensemble else ""),
    ]

    def f(v):
        return "" if v is None else f"{v:.2f}"

    for r in rows:
        pub = r["published"]
        d_bm3d = (r["model_on_bm3d_subset"] - r["bm3d"]) if r["bm3d"] is not None else None
        full_set = "FFDNet" in pub and r["n"] == (68 if r["set"] == "BSD68" else 12)
        d_ffd = (r["model"] - pub["FFDNet"]) if full_set else None
        e, e_sub = r["ensemble"], r["ensemble_on_bm3d_subset"]
        e_bm3d = (e_sub - r["bm3d"]) if e_sub is not None and r["bm3d"] is not None else None
        e_ffd = (e - pub["FFDNet"]) if e is not None and full_set else None
        lines.append(
            f"| {r['set']} | {r['sigma']:g} | {r['n']} | {r['noisy']:.2f} | **{r['model']:.2f}** | "
            f"{f(r['bm3d'])} | {f(r['model_on_bm3d_subset'])} | {r['nb']} | "
            f"{'' if d_bm3d is None else f'{d_bm3d:+.2f}'} | {f(pub.get('BM3D'))} | {f(pub.get('DnCNN-S'))} | "
            f"{f(pub.get('FFDNet'))} | {'' if d_ffd is None else f'{d_ffd:+.2f}'} |"
            + (f" {f(r['ensemble2'])} | {f(r['ensemble4'])} | {f(e)} | {'' if e_bm3d is None else f'{e_bm3d:+.2f}'} | "
               f"{'' if e_ffd is None else f'{e_ffd:+.2f}'} |" if args.self_ensemble else ""))
    if color_rows:
        lines += [
            "",
            "Colour (BGR, noise i.i.d. per channel then CLIPPED to [0, 1] as a camera delivers it, "
            "PSNR over all three channels): the gray model "
            "applied to the orthonormal opponent channels by `ModelRestorer` (the way the runtime "
            "serves colour with a gray model; there is no colour model yet). `bm3d pkg` is "
            "`bm3d.bm3d_rgb` (its own opponent transform) on the first `nb` images.",
            "",
            "| set | sigma | images | noisy | **model (gray on opponent)** | bm3d_rgb pkg | model (same nb) | nb |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in color_rows:
            lines.append(f"| {r['set']} | {r['sigma']:g} | {r['n']} | {r['noisy']:.2f} | **{r['model']:.2f}** | "
                         f"{f(r['bm3d'])} | {f(r['model_on_bm3d_subset'])} | {r['nb']} |")
    lines += [
        "",
        f"bm3d package {cache.version}: {cache.misses} runs computed in this run, {cache.hits} "
        f"PSNRs reused from `{Path(args.bm3d_cache).name if args.bm3d_cache else ''}` (same noisy "
        "images: the noise is seeded, so a cached PSNR is what a fresh run gives).",
        "",
        f"Speed: {ms720:.0f} ms per 720p gray frame (1x1x720x1280), ONNX Runtime CPU, "
        f"{args.threads} threads, median of {args.repeat} (min {min(times):.0f} ms).",
        "",
    ]
    report = "\n".join(lines)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(report, encoding="utf-8")
    tmp.replace(out)
    if args.card:
        write_card(Path(args.card), report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
