"""The learned denoiser on the noise the runtime sees (8-bit, clipped, signal-dependent)
next to the bm3d package given the true noise level.

    nice -n 10 python benchmarks/bench_denoise_real_noise.py \
        --model old=/tmp/dn-gray-old.onnx --model new=edgerestore/zoo/dn-gray.onnx
    nice -n 10 python benchmarks/bench_denoise_real_noise.py --limit 4          # a quick run
    nice -n 19 python benchmarks/bench_denoise_real_noise.py --bm3d-only --sets Set12,BSD68
                                                     # fill the bm3d cache, no models

Noise, drawn here (seeded per seed, setting and image, so every method sees the same
noisy image), on the 0-255 scale, then clipped to [0, 255] and rounded to 8 bits:

* ``g15``/``g25``/``g50``: white Gaussian noise of sigma 15/25/50;
* three camera-like Poisson-Gaussian settings, ``a * Poisson(I / a) + N(0, b)`` (variance
  ``a*I + b``; :data:`PG_SETTINGS`): ``pg-low`` (a 0.3, b 9: sigma 3 at black to 9.3 at
  white), ``pg-mid`` (1.2, 25: 5 to 18.2), ``pg-high`` (3.3, 36: 6 to 29.6);
* ``f15``/``f25``/``f50`` (models only, BSD68 and Set12): the published tables' float
  Gaussian noise (not clipped, not rounded), to check that training for 8-bit noise did
  not cost the old convention.

Methods:

* each ``--model LABEL=PATH`` through :class:`~edgerestore.restorer.ModelRestorer` on
  ONNX Runtime (CPU), given the true sigma (Gaussian) or the true noise level function
  (``NoiseLevelFunction(a, b).sigma_map`` of the noisy image: what a user who calibrated
  the camera gives), and for PG also with nothing given (``auto``: the runtime's own
  estimate, :func:`~edgerestore.kernels.noise.estimate_noise_level_function`);
* the ``bm3d`` package (``bm3d.bm3d``, profile ``np``), given the true sigma; for PG,
  which it cannot take as a per-pixel level (its ``sigma_psd`` is a scalar or a PSD), the
  generalized Anscombe transform with the true (a, b) (variance ~1), bm3d at sigma 1,
  and the exact unbiased inverse (Makitalo & Foi 2013) computed here for this exact
  observation model (Poisson, Gaussian, rounding and clipping included), see
  :class:`ExactUnbiasedInverse`. bm3d PSNRs are cached by set, image, setting, seed
  and bm3d version (``--bm3d-cache``), since they do not depend on the models.

PSNR on [0, 1] against the 8-bit clean image, outputs clipped to [0, 1] (not rounded),
per image and mean. Writes ``benchmarks/results/denoise_real_noise.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script
from bench_denoiser import REPO, Bm3dCache, load_set

from edgerestore.kernels.noise import NoiseLevelFunction
from edgerestore.metrics import psnr


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "gauss8", "pg8" or "float"
    sigma: float = 0.0  # Gaussian
    a: float = 0.0  # Poisson-Gaussian: variance a*I + b, 0-255 scale
    b: float = 0.0

    def describe(self) -> str:
        if self.kind == "pg8":
            lo, hi = np.sqrt(self.b), np.sqrt(self.a * 255 + self.b)
            return f"PG a={self.a:g} b={self.b:g} (sigma {lo:.1f}-{hi:.1f}), 8-bit"
        return f"Gaussian sigma {self.sigma:g}, " + ("8-bit clipped" if self.kind == "gauss8" else "float")


GAUSS8 = [Setting(f"g{s}", "gauss8", sigma=float(s)) for s in (15, 25, 50)]
PG_SETTINGS = [Setting("pg-low", "pg8", a=0.3, b=9.0), Setting("pg-mid", "pg8", a=1.2, b=25.0),
               Setting("pg-high", "pg8", a=3.3, b=36.0)]
FLOAT = [Setting(f"f{s}", "float", sigma=float(s)) for s in (15, 25, 50)]


class PsnrCache:
    """PSNRs in a JSON file (or only in memory when ``path`` is None), keyed by tuples."""

    def __init__(self, path: Path | None) -> None:
        import json

        self.path = path
        self.data = json.loads(path.read_text()) if path and path.exists() else {}

    def get(self, key: tuple, compute) -> float:
        import json

        k = "|".join(str(x) for x in key)
        if k not in self.data:
            self.data[k] = float(compute())
            if self.path:
                self.path.write_text(json.dumps(self.data, indent=0, sort_keys=True))
        return float(self.data[k])


def noisy_of(clean: np.ndarray, setting: Setting, seed: int, index: int) -> np.ndarray:
    """The noisy image (float32 [0, 1]) of ``clean`` (float [0, 1], 8-bit levels)."""
    tag = sum(ord(c) * 31 ** i for i, c in enumerate(setting.name)) % (2 ** 31)
    rng = np.random.default_rng([seed, tag, index])
    x = clean.astype(np.float64) * 255.0
    if setting.kind == "pg8":
        z = setting.a * rng.poisson(x / setting.a) + rng.standard_normal(x.shape) * np.sqrt(setting.b)
    else:
        z = x + rng.standard_normal(x.shape) * setting.sigma
    if setting.kind != "float":
        z = np.clip(np.rint(z), 0, 255)
    return (z / 255.0).astype(np.float32)


class ExactUnbiasedInverse:
    """The generalized Anscombe transform ``f(z) = 2/a sqrt(max(a z + 3/8 a^2 + b, 0))``
    (0-255 scale; variance ~1 for Poisson-Gaussian noise of variance ``a*I + b``) and its
    exact unbiased inverse (Makitalo & Foi, IEEE TIP 2013): ``E[f(z) | I]`` is computed on
    a grid of I for the observation made here (``z = clip(rint(a P + G), 0, 255)``,
    ``P ~ Poisson(I / a)``, ``G ~ N(0, b)``) and inverted by interpolation."""

    def __init__(self, a: float, b: float) -> None:
        from scipy.stats import norm, poisson

        self.a, self.b = a, b
        levels = np.concatenate([np.linspace(0, 10, 101), np.linspace(10.5, 255, 490)])
        g = np.linspace(-6, 6, 241)
        gw = norm.pdf(g)
        gw /= gw.sum()
        expect = np.empty_like(levels)
        for i, level in enumerate(levels):
            lam = level / a
            k = np.arange(0, int(lam + 12 * np.sqrt(lam) + 25))
            pk = poisson.pmf(k, lam)
            z = np.clip(np.rint(a * k[:, None] + np.sqrt(b) * g[None, :]), 0, 255)
            expect[i] = float(pk @ self.forward(z) @ gw)
        self.levels, self.expect = levels, np.maximum.accumulate(expect)

    def forward(self, z255: np.ndarray) -> np.ndarray:
        return 2.0 / self.a * np.sqrt(np.maximum(self.a * z255 + 0.375 * self.a ** 2 + self.b, 0.0))

    def inverse(self, d: np.ndarray) -> np.ndarray:
        """Clean intensity (0-255) whose expected transform is ``d``."""
        keep = np.concatenate([[True], np.diff(self.expect) > 1e-9])
        return np.interp(d, self.expect[keep], self.levels[keep])


def bm3d_denoise(noisy: np.ndarray, setting: Setting, inverses: dict) -> np.ndarray:
    import bm3d

    if setting.kind != "pg8":
        return bm3d.bm3d(noisy.astype(np.float64), sigma_psd=setting.sigma / 255.0)
    t = inverses.get(setting.name)
    if t is None:
        t = inverses[setting.name] = ExactUnbiasedInverse(setting.a, setting.b)
    d = t.forward(noisy.astype(np.float64) * 255.0)
    return t.inverse(bm3d.bm3d(d, sigma_psd=1.0)) / 255.0


def model_sigma(noisy: np.ndarray, setting: Setting):
    """The level a model is given: sigma, or the true NLF's map of the noisy image."""
    if setting.kind == "pg8":
        return NoiseLevelFunction(setting.a, setting.b).sigma_map(noisy)
    return setting.sigma


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=None, metavar="LABEL=PATH",
                    help="a model to measure (repeatable; default: zoo=edgerestore/zoo/dn-gray.onnx)")
    ap.add_argument("--sets", default="BSD68,Set12")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set (all models)")
    ap.add_argument("--bm3d-limit", type=int, default=None,
                    help="bm3d on the first N images of each set only (the models are also "
                    "averaged over exactly those for the comparison)")
    ap.add_argument("--bm3d-only", action="store_true", help="only fill the bm3d cache")
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--no-float", action="store_true", help="skip the float Gaussian settings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bm3d-cache", default=str(REPO / "benchmarks" / "results" / "bm3d_real_noise_cache.json"))
    ap.add_argument("--model-cache", default="",
                    help="a JSON file of the models' PSNRs keyed by model file hash, set, image, "
                    "setting and seed, reused when present (e.g. to rerun with more bm3d images "
                    "cached without running the models again; default: none)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "denoise_real_noise.md"))
    args = ap.parse_args(argv)
    from edgerestore.restorer import ModelRestorer

    models = {}
    for item in args.model or ["zoo=" + str(REPO / "edgerestore" / "zoo" / "dn-gray.onnx")]:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).exists():
            print(f"--model wants LABEL=PATH of an existing file, got {item!r}", file=sys.stderr)
            return 2
        models[label] = path
    cache = Bm3dCache(Path(args.bm3d_cache) if args.bm3d_cache else None)
    inverses: dict = {}
    t0 = time.time()
    settings = GAUSS8 + PG_SETTINGS + ([] if args.no_float or args.bm3d_only else FLOAT)
    rows, per_image = [], []
    if args.bm3d_only:
        fill_bm3d_cache(args, settings, cache, inverses, t0)
        return 0
    restorers = {k: ModelRestorer.open(p, backend="ort-cpu", threads=args.threads) for k, p in models.items()}
    model_cache = PsnrCache(Path(args.model_cache) if args.model_cache else None)
    digests = {k: hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for k, p in models.items()}
    try:
        for set_name in args.sets.split(","):
            images = load_set(set_name, args.limit)
            nb = len(images) if args.bm3d_limit is None else min(args.bm3d_limit, len(images))
            for setting in settings:
                for i, (name, clean) in enumerate(images):
                    noisy = noisy_of(clean, setting, args.seed, i)
                    line = {"set": set_name, "setting": setting.name, "image": name,
                            "noisy": psnr(clean, noisy)}
                    if not args.no_bm3d and setting.kind != "float" and i < nb:
                        line["bm3d"] = cache.get(
                            (set_name, name, setting.name, args.seed, "real-noise"),
                            lambda: psnr(clean, np.clip(bm3d_denoise(noisy, setting, inverses), 0, 1)))
                        print(f"{set_name} {setting.name} {name} bm3d {line['bm3d']:.2f} "
                              f"({time.time() - t0:.0f} s)", flush=True)
                    for label, r in restorers.items():
                        key = (digests[label], set_name, name, setting.name, args.seed)
                        line[label] = model_cache.get(
                            key + ("given",), lambda: psnr(clean, r(noisy, sigma=model_sigma(noisy, setting))))
                        if setting.kind == "pg8":
                            line[label + " auto"] = model_cache.get(key + ("auto",), lambda: psnr(clean, r(noisy)))
                    per_image.append(line)
                lines = [d for d in per_image if d["set"] == set_name and d["setting"] == setting.name]
                cols = ["noisy"] + [k for k in lines[0] if k not in ("set", "setting", "image", "noisy", "bm3d")]
                row = {"set": set_name, "setting": setting, "n": len(lines)}
                row.update({c: statistics.mean(d[c] for d in lines) for c in cols})
                with_b = [d for d in lines if "bm3d" in d]
                row["nb"] = len(with_b)
                if with_b:
                    row["bm3d"] = statistics.mean(d["bm3d"] for d in with_b)
                    for label in models:
                        row[label + " (nb)"] = statistics.mean(d[label] for d in with_b)
                        row[label + " loses"] = [d["image"] for d in with_b if d[label] < d["bm3d"]]
                rows.append(row)
                print(set_name, setting.name, {k: (round(v, 2) if isinstance(v, float) else v)
                                               for k, v in row.items() if k != "setting"}, flush=True)
    finally:
        for r in restorers.values():
            r.close()
    report = render(args, models, rows, per_image, cache, time.time() - t0)
    Path(args.out).write_text(report)
    print(report)
    return 0


def fill_bm3d_cache(args, settings, cache, inverses, t0) -> None:
    """Compute the missing bm3d PSNRs image by image (all settings of image i of every set
    before image i + 1), so that a run cut short covers the first images of each set."""
    sets = {name: load_set(name, args.limit) for name in args.sets.split(",")}
    for i in range(max(len(v) for v in sets.values())):
        for set_name, images in sets.items():
            if i >= len(images):
                continue
            name, clean = images[i]
            for setting in settings:
                noisy = noisy_of(clean, setting, args.seed, i)
                value = cache.get((set_name, name, setting.name, args.seed, "real-noise"),
                                  lambda: psnr(clean, np.clip(bm3d_denoise(noisy, setting, inverses), 0, 1)))
                print(f"{set_name} {setting.name} {name} bm3d {value:.2f} ({time.time() - t0:.0f} s)", flush=True)
    print(f"bm3d cache: {cache.misses} computed, {cache.hits} reused, {time.time() - t0:.0f} s")


def render(args, models, rows, per_image, cache, seconds) -> str:
    cmd = "python benchmarks/bench_denoise_real_noise.py " + " ".join(sys.argv[1:])
    out = ["# The denoiser on 8-bit and Poisson-Gaussian noise, next to the bm3d package", "",
           f"Command: `{cmd.strip()}`  ",
           f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_description()}, {seconds:.0f} s.",
           "", "Models: " + ", ".join(f"`{k}` = `{v}`" for k, v in models.items()) + ".", "",
           "Settings: " + "; ".join(f"`{s.name}`: {s.describe()}" for s in GAUSS8 + PG_SETTINGS + FLOAT) + ".",
           "", "Mean PSNR (dB). A model column is the model given the true sigma (Gaussian) or the "
           "true noise level function's map (PG); `auto` is the runtime's own estimate (no sigma "
           "given). `bm3d` is the bm3d package given the true sigma, for PG the generalized "
           "Anscombe transform with the true (a, b), bm3d at sigma 1 and the exact unbiased "
           "inverse; it ran on the first `nb` images of each set, and `LABEL (nb)` is the model "
           "on exactly those; `- bm3d` is that difference.", ""]
    labels = list(models)
    head = ["set", "setting", "images", "noisy"] + labels + [f"{k} auto" for k in labels] + ["nb", "bm3d"]
    head += [f"{k} (nb) - bm3d" for k in labels]
    out += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["set"], r["setting"].name, str(r["n"]), f"{r['noisy']:.2f}"]
        cells += [f"{r[k]:.2f}" for k in labels]
        cells += [f"{r[k + ' auto']:.2f}" if k + " auto" in r else "" for k in labels]
        cells += [str(r["nb"]), f"{r['bm3d']:.2f}" if "bm3d" in r else ""]
        cells += [f"{r[k + ' (nb)'] - r['bm3d']:+.2f}" if "bm3d" in r else "" for k in labels]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Images where a model is below bm3d (same noisy image):", ""]
    for r in rows:
        if "bm3d" not in r:
            continue
        for k in labels:
            lost = r[k + " loses"]
            out.append(f"* {r['set']} {r['setting'].name}, `{k}`: {len(lost)} of {r['nb']}"
                       + (": " + ", ".join(lost) if lost else ""))
    out += ["", f"bm3d package {cache.version}: {cache.misses} runs computed, {cache.hits} reused from "
            f"`{Path(args.bm3d_cache).name}`.", "", "## Per image", ""]
    cols = ["noisy", "bm3d"] + labels + [f"{k} auto" for k in labels]
    out += ["| set | setting | image | " + " | ".join(cols) + " |", "|" + " --- |" * (3 + len(cols))]
    for d in per_image:
        out.append(f"| {d['set']} | {d['setting']} | {d['image']} | "
                   + " | ".join(f"{d[c]:.2f}" if c in d else "" for c in cols) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
