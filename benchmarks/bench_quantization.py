"""INT8 / FP16 versus FP32 for the shipped denoiser: quality and ONNX Runtime CPU speed.

    python benchmarks/bench_quantization.py                      # dn-gray from the zoo
    python benchmarks/bench_quantization.py --model path/to/dn-gray.onnx --quick

What it does, in one run on one machine:

1. makes each variant with ``edgerestore.calibration`` (the code behind ``edgerestore
   calibrate``), calibrated on evenly sampled Train400 images (the training set's
   distribution, disjoint from the test sets), noise spread over the model's trained
   sigma range; the gate is run at the default 0.3 dB and its verdict recorded, but
   every variant is kept so it can be measured;
2. PSNR against clean images on BSD68 (cropped to even sizes, 480x320) and Set12 at
   sigma 25, white Gaussian noise *not* clipped (the convention of the published
   tables; the same noisy images for every variant), fed straight to ONNX Runtime;
3. milliseconds per frame on ONNX Runtime's CPU provider with 2 threads at 480x512 and
   720x1280 (720p), FP32 and INT8 runs interleaved so that load from other processes
   hits both alike; median of the repetitions, and the ratio.

Results go to ``benchmarks/results/quantization.md`` (written atomically).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.metrics import psnr  # noqa: E402

DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))

# name -> (precision, Int8Settings keyword arguments, CalibrationJob keyword arguments)
VARIANTS = {
    # "int8-cpu" and "int8-tensorrt" are the defaults of `edgerestore calibrate` (entropy)
    "int8-cpu": ("int8", {}, {}),
    "int8-cpu-minmax": ("int8", {"method": "minmax"}, {}),
    "int8-cpu-percentile": ("int8", {"method": "percentile"}, {}),
    "int8-cpu-float-first-last": ("int8", {"keep_float": ("first", "last")}, {}),
    "int8-cpu-per-tensor": ("int8", {"per_channel": False}, {}),
    "int8-cpu-s8s8": ("int8", {"activations": "s8"}, {}),
    "int8-cpu-calib-sigma25": ("int8", {}, {"sigmas": (25.0,)}),
    "int8-cpu-minmax-calib-sigma25": ("int8", {"method": "minmax"}, {"sigmas": (25.0,)}),
    "int8-tensorrt": ("int8", {"target": "tensorrt"}, {}),
    "int8-tensorrt-minmax": ("int8", {"target": "tensorrt", "method": "minmax"}, {}),
    "int8-tensorrt-percentile": ("int8", {"target": "tensorrt", "method": "percentile"}, {}),
    "int8-tensorrt-float-first-last": ("int8", {"target": "tensorrt",
                                                "keep_float": ("first", "last")}, {}),
    "fp16": ("fp16", {}, {}),
}
SPEED_VARIANTS = ("int8-cpu", "int8-cpu-s8s8", "int8-cpu-float-first-last")


def load_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    h, w = img.shape
    return np.ascontiguousarray(img[: h // 2 * 2, : w // 2 * 2]).astype(np.float32) / 255.0


def test_images(quick: bool) -> dict[str, list[np.ndarray]]:
    bsd = sorted((DATA / "testsets" / "BSD68").glob("*.png"))
    s12 = sorted((DATA / "testsets" / "Set12").glob("*.png"))
    if quick:
        bsd = bsd[::4]
    return {"BSD68": [load_gray(p) for p in bsd], "Set12": [load_gray(p) for p in s12]}


def session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def quality(path: str, sets: dict, sigma: float, threads: int, names: tuple[str, str]) -> dict[str, float]:
    """Mean PSNR per set with unclipped noise (the literature's convention), and on BSD68
    also with the noisy image clipped to [0, 1] (what a camera delivers and the runtime
    feeds: key ``BSD68 clipped``)."""
    sess = session(path, threads)
    img_name, nl_name = names
    out = {}
    for set_name, images in sets.items():
        scores, clipped = [], []
        for i, clean in enumerate(images):
            rng = np.random.default_rng(1000 + i)
            noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * np.float32(sigma / 255)
            level = np.full((1, 1, *clean.shape), sigma / 255, np.float32)
            scores.append(psnr(clean, sess.run(None, {img_name: noisy[None, None].astype(np.float32),
                                                      nl_name: level})[0][0, 0]))
            if set_name == "BSD68":
                c = np.clip(noisy, 0, 1)[None, None].astype(np.float32)
                clipped.append(psnr(clean, sess.run(None, {img_name: c, nl_name: level})[0][0, 0]))
        out[set_name] = float(np.mean(scores))
        if clipped:
            out[f"{set_name} clipped"] = float(np.mean(clipped))
    return out


def speed(paths: dict[str, str], size: tuple[int, int], threads: int, reps: int,
          names: tuple[str, str]) -> dict[str, list[float]]:
    h, w = size
    rng = np.random.default_rng(0)
    feed = {names[0]: rng.random((1, 1, h, w), dtype=np.float32),
            names[1]: np.full((1, 1, h, w), 25 / 255, np.float32)}
    sessions = {k: session(p, threads) for k, p in paths.items()}
    for s in sessions.values():
        s.run(None, feed)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(reps):
        for k, s in sessions.items():  # interleaved
            t = time.perf_counter()
            s.run(None, feed)
            times[k].append((time.perf_counter() - t) * 1000)
    return times


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="dn-gray", help="zoo name or FP32 .onnx path")
    p.add_argument("--calib-frames", default=str(DATA / "train" / "Train400"))
    p.add_argument("--count", type=int, default=32)
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--quick", action="store_true", help="a quarter of BSD68, 3 speed repetitions")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "quantization.md"))
    args = p.parse_args(argv)

    import onnxruntime as ort

    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.quantize import Int8Settings, cpu_has_vnni
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import resolve

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    src = str(resolve(args.model))
    spec = read_spec(src)
    names = (spec.image_input, spec.input_for("noise_level"))
    reps = 3 if args.quick else args.reps
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    sets = test_images(args.quick)

    rows, gates, paths = {}, {}, {"fp32": src}
    with tempfile.TemporaryDirectory(prefix="bench-quant-") as tmp:
        for name in wanted:
            precision, kw, job_kw = VARIANTS[name]
            out = str(Path(tmp) / f"{name}.onnx")
            t0 = time.perf_counter()
            res = calibrate(CalibrationJob(
                model=src, output=out, precision=precision, frames=args.calib_frames,
                count=args.count, int8=Int8Settings(**kw), max_drop_db=1e9, threads=args.threads,
                **job_kw))
            gates[name] = (res.report, time.perf_counter() - t0, res.qdq)
            paths[name] = out
            print(f"{name}: calibrated in {gates[name][1]:.0f} s; gate drop {res.report.drop_db:+.3f} dB",
                  file=sys.stderr)
        for name, path in paths.items():
            rows[name] = quality(path, sets, args.sigma, args.threads, names)
            print(f"{name}: {rows[name]}", file=sys.stderr)
        speed_paths = {k: paths[k] for k in ("fp32", *SPEED_VARIANTS) if k in paths}
        timing = {size: speed(speed_paths, size, args.threads, reps, names)
                  for size in ((480, 512), (720, 1280))}
    load_after = os.getloadavg()

    cpu = cpu_description()
    prov = spec.provenance
    lines = [
        "# Quantization: INT8 / FP16 vs FP32 (shipped denoiser)",
        "",
        f"Run {started} with `python benchmarks/bench_quantization.py "
        + " ".join(a for a in (argv if argv is not None else sys.argv[1:])) + "`.",
        "",
        f"* model: `{Path(src).name}` ({spec.name}, sha256 {sha256(src)[:16]}…, "
        f"config {prov.get('config')}, {prov.get('steps')} training steps)",
        f"* machine: {cpu}, VNNI: {cpu_has_vnni()}; "
        f"onnxruntime {ort.__version__}; ORT CPU provider, {args.threads} threads",
        f"* load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (the machine is "
        "shared; timings are interleaved FP32/INT8 so that load hits both)",
        f"* calibration: {args.count} frames evenly sampled from `{Path(args.calib_frames).name}` "
        "(a quarter held apart for the gate), noise spread over the trained sigma range "
        "(`calib-sigma25`: all at sigma 25, which the gate then uses too); the gate measures held-apart frames at sigma "
        "15, 25 and 50 (clipped noise), the default of `edgerestore calibrate`",
        f"* quality: sigma {args.sigma:g}, Gaussian noise not clipped (the published tables' "
        "convention) and, for BSD68, also clipped to [0, 1] (what cameras deliver and the "
        "runtime feeds), seeds fixed per image; "
        f"BSD68 {len(sets['BSD68'])} images (cropped to even sizes), Set12 {len(sets['Set12'])} images",
        "",
        "## Quality (PSNR vs clean, dB) and the gate",
        "",
        "| variant | BSD68 | drop | Set12 | drop | BSD68 clipped noise | drop | gate drop (held-apart Train400) | gate at 0.3 dB | calibration s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base = rows["fp32"]
    for name, r in rows.items():
        if name == "fp32":
            lines.append(f"| fp32 | {r['BSD68']:.3f} | | {r['Set12']:.3f} | | {r['BSD68 clipped']:.3f} "
                         "| | | | |")
            continue
        rep, secs, _ = gates[name]
        lines.append(
            f"| {name} | {r['BSD68']:.3f} | {base['BSD68'] - r['BSD68']:+.3f} | {r['Set12']:.3f} | "
            f"{base['Set12'] - r['Set12']:+.3f} | {r['BSD68 clipped']:.3f} | "
            f"{base['BSD68 clipped'] - r['BSD68 clipped']:+.3f} | {rep.drop_db:+.3f} | "
            f"{'pass' if rep.drop_db <= 0.3 else 'refused'} | {secs:.0f} |")
    lines += ["", "## Speed (ONNX Runtime CPU, "
              f"{args.threads} threads, median of {reps} interleaved runs)", "",
              "| frame | variant | ms / frame (median) | all runs (ms) | FP32 / variant |",
              "| --- | --- | --- | --- | --- |"]
    for (h, w), times in timing.items():
        f32 = statistics.median(times["fp32"])
        for name, ts in times.items():
            med = statistics.median(ts)
            lines.append(f"| {h}x{w} | {name} | {med:.0f} | {', '.join(f'{t:.0f}' for t in ts)} | "
                         f"{f32 / med:.2f}x |")
    lines += ["", "## Settings of each INT8 variant", ""]
    for name in rows:
        if name in gates and gates[name][2]:
            q = gates[name][2]
            lines.append(f"* {name}: {q['quantize_nodes']} Q / {q['dequantize_nodes']} DQ nodes, "
                         f"{q['int8_layers']} conv layers INT8"
                         + (f", float: {', '.join(q['float_layers'])}" if q["float_layers"] else ""))
    write_atomic(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
