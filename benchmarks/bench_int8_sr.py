"""INT8 super-resolution (sr-x2/x3/x4) for both targets: Y-PSNR drop and speed vs FP32.

    nice -n 10 python benchmarks/bench_int8_sr.py
    python benchmarks/bench_int8_sr.py --scales 2 --targets cpu
    python benchmarks/bench_int8_sr.py --scales 2 --targets cpu --int8 x2-cpu=sr-x2-qat-int8.onnx \
        --out benchmarks/results/quantization_sr_qat.md

For every scale and target, in one process: ``edgerestore calibrate sr-xS --target T``
with the CLI defaults (``--max-drop-db 0.1``, the automatic per-layer fallback) on
``--frames`` (default: Train400, disjoint from the test sets); then the written model and
the FP32 model through ``ModelRestorer`` on Set5 and Set14 with ``bench_sr.py``'s
protocol (MATLAB-style bicubic LR rounded to 8 bits, MATLAB Y, ``scale`` border pixels
shaved); then the bare ONNX Runtime session on a 1080p output's Y plane, FP32 and INT8
interleaved, 2 threads, median of ``--reps``. ``--int8 xS-T[:LABEL]=PATH`` (repeatable)
measures a given INT8 file for scale S and target T instead of calibrating one (e.g. one made by
``calibrate --method qat`` from a ``train qat`` export); its gate figures and float
layers are read from its provenance, and the drop is still against the zoo's FP32 model.

Writes ``benchmarks/results/quantization_sr.md`` (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script
from bench_quantization import session, write_atomic
from bench_sr import load_set, make_lr, psnr_y, to_u8

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))


def set_psnr(path: str, sets: dict, scale: int, threads: int) -> dict[str, list[float]]:
    from edgerestore.restorer import ModelRestorer

    out = {}
    with ModelRestorer.open(path, backend="ort-cpu", threads=threads) as restorer:
        for name, images in sets.items():
            scores = []
            for _, hr in images:
                hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
                lr = make_lr(hr, scale)
                sr = to_u8(restorer(lr.astype(np.float32) / 255.0))
                scores.append(psnr_y(hr, sr, scale))
            out[name] = scores
    return out


def speed(paths: dict[str, str], scale: int, threads: int, reps: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.random((1, 1, 1080 // scale, 1920 // scale), dtype=np.float32)
    sessions = {k: session(p, threads) for k, p in paths.items()}
    name = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    for k, s in sessions.items():
        s.run(None, {name[k]: x})
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(reps):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {name[k]: x})
            times[k].append((time.perf_counter() - t) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def parse_given(items: list[str], parser: argparse.ArgumentParser) -> dict[tuple[int, str], dict[str, str]]:
    """``["x2-cpu=PATH", "x2-cpu:qat=PATH2", ...]`` -> {(2, "cpu"): {"cpu": PATH, "cpu:qat": PATH2}};
    a usage error names the bad item."""
    out: dict[tuple[int, str], dict[str, str]] = {}
    for item in items:
        key, sep, path = item.partition("=")
        key, _, label = key.partition(":")
        scale, dash, target = key.partition("-")
        if not (sep and dash and scale[:1] == "x" and scale[1:].isdigit() and target in ("cpu", "tensorrt")
                and Path(path).is_file()):
            parser.error(f"--int8 {item!r}: expected xS-T[:LABEL]=PATH with T cpu or tensorrt and an "
                         "existing file")
        variants = out.setdefault((int(scale[1:]), target), {})
        name = f"{target}:{label}" if label else target
        if name in variants:
            parser.error(f"--int8 {item!r}: x{scale[1:]} {name} given twice; label them (xS-T:LABEL=PATH)")
        variants[name] = path
    return out


def from_provenance(path: str):
    """(gate figures, fallback, calibration seconds) as ``calibrate`` stored them in ``path``."""
    from edgerestore.model_spec import read_spec

    cal = read_spec(path).provenance.get("calibration") or {}
    floats = cal.get("fallback") or {"float_layers": (cal.get("qdq") or {}).get("float_layers") or []}
    return cal.get("gate") or {}, floats if floats["float_layers"] else None, float(cal.get("seconds") or 0.0)


def describe_given(label: str, path: str) -> str:
    """One line on how a given INT8 file was made, from its provenance."""
    from edgerestore.model_spec import read_spec

    cal = read_spec(path).provenance.get("calibration") or {}
    st = cal.get("settings") or {}
    keep = ",".join(st.get("keep_float") or []) or "none"
    path_note = f", image path {st['image_path']}" if "image_path" in st else ""
    return (f"* {label}: `{Path(path).name}`, `calibrate --method {st.get('method')} --target {st.get('target')} "
            f"--keep-float {keep}`{path_note} on {cal.get('frames')}, from `{cal.get('source_model')}` "
            f"(sha256 {str(cal.get('source_sha256'))[:12]}...)")


def worst_drop(report) -> float:
    """The gate's worst drop of a live report or of one read back from a provenance."""
    return report["worst_drop_db"] if isinstance(report, dict) else report.worst_drop_db


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--targets", default="cpu,tensorrt")
    p.add_argument("--frames", default=str(DATA / "train" / "Train400"))
    p.add_argument("--max-drop-db", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--int8", action="append", default=[], metavar="xS-T[:LABEL]=PATH",
                   help="measure this INT8 file for scale S and target T instead of calibrating one "
                   "(repeatable; several for one scale and target need a LABEL each)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "quantization_sr.md"))
    args = p.parse_args(argv)
    given = parse_given(args.int8, p)

    import onnxruntime as ort

    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.gate import GateError
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.zoo import resolve

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sets = {"Set5": load_set("Set5"), "Set14": load_set("Set14")}
    rows = []
    per_image: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-int8-sr-") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            src = str(resolve(f"sr-x{scale}"))
            paths = {"fp32": src}
            results = {}
            for target in args.targets.split(","):
                if (scale, target) in given:
                    for name, path in given[scale, target].items():
                        paths[name] = path
                        results[name] = from_provenance(path)
                    continue
                out = str(Path(tmp) / f"sr-x{scale}-{target}.onnx")
                t0 = time.perf_counter()
                try:
                    res = calibrate(CalibrationJob(
                        model=src, output=out, frames=args.frames, max_drop_db=args.max_drop_db,
                        int8=Int8Settings(target=target), threads=args.threads))
                    paths[target] = out
                    results[target] = (res.report, res.fallback, time.perf_counter() - t0)
                except GateError as exc:
                    results[target] = (exc.report, None, time.perf_counter() - t0)
                print(f"sr-x{scale} {target}: gate drop {worst_drop(results[target][0]):+.3f} dB",
                      file=sys.stderr, flush=True)
            quality = {k: set_psnr(pth, sets, scale, args.threads) for k, pth in paths.items()}
            ms = speed(paths, scale, args.threads, args.reps)
            for target, (rep, fb, secs) in results.items():
                if target not in paths:
                    rows.append(f"| x{scale} | {target} | {worst_drop(rep):+.3f} | refused | | | | | {secs:.0f} |")
                    continue
                drops = {n: np.mean(quality["fp32"][n]) - np.mean(quality[target][n]) for n in sets}
                for n in sets:
                    pairs = zip(sets[n], quality["fp32"][n], quality[target][n])
                    per_image[f"x{scale} {target} {n}"] = [f"{name} {a - b:+.3f}" for (name, _), a, b in pairs]
                floats = ", ".join(fb["float_layers"]) if fb else "none"
                label = target if (scale, target.split(":")[0]) not in given else \
                    f"{target} (given: {Path(paths[target]).name})"
                rows.append(
                    f"| x{scale} | {label} | {worst_drop(rep):+.3f} | {floats} | "
                    f"{np.mean(quality['fp32']['Set5']):.3f} / {drops['Set5']:+.3f} | "
                    f"{np.mean(quality['fp32']['Set14']):.3f} / {drops['Set14']:+.3f} | "
                    f"{ms['fp32']:.1f} / {ms[target]:.1f} | {ms['fp32'] / ms[target]:.2f}x | {secs:.0f} |")
    text = "\n".join([
        "# INT8 super-resolution vs FP32 (sr-x2/x3/x4, both targets)", "",
        f"Run {started} with `python benchmarks/bench_int8_sr.py "
        + " ".join(argv if argv is not None else sys.argv[1:]) + "`; "
        f"{cpu_description()}; onnxruntime {ort.__version__}, CPU provider, {args.threads} threads; "
        f"load average at the end {os.getloadavg()[0]:.1f} (shared machine).", "",
        f"Calibrated on `{Path(args.frames).name}` (32 images evenly sampled, 8 held apart), "
        f"gate at {args.max_drop_db:g} dB. Y-PSNR per bench_sr.py's protocol; speed: bare ORT "
        f"session on the Y plane of a 1080p output, interleaved, median of {args.reps}.", "",
        "| scale | target | gate drop (held-apart) | layers in float | Set5 FP32 / drop | "
        "Set14 FP32 / drop | ms FP32 / INT8 | speed vs FP32 | calibration s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        *(["Given INT8 files (their gate drop is against their own FP32 source, for a QAT file the "
           "fine-tuned weights in float; the Set5/Set14 drops are against the zoo's FP32 model):", "",
           *[describe_given(f"x{sc} {name}", path) for (sc, _), variants in given.items()
             for name, path in variants.items()], ""] if given else []),
        "Drop per image (FP32 minus INT8 Y-PSNR, dB):", "",
        *[f"* {k}: " + ", ".join(v) for k, v in per_image.items()]]) + "\n"
    write_atomic(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
