"""INT8 super-resolution (sr-x2/x3/x4) for both targets: Y-PSNR drop and speed vs FP32.

    nice -n 10 python benchmarks/bench_int8_sr.py
    python benchmarks/bench_int8_sr.py --scales 2 --targets cpu

For every scale and target, in one process: ``edgerestore calibrate sr-xS --target T``
with the CLI defaults (``--max-drop-db 0.1``, the automatic per-layer fallback) on
``--frames`` (default: Train400, disjoint from the test sets); then the written model and
the FP32 model through ``ModelRestorer`` on Set5 and Set14 with ``bench_sr.py``'s
protocol (MATLAB-style bicubic LR rounded to 8 bits, MATLAB Y, ``scale`` border pixels
shaved); then the bare ONNX Runtime session on a 1080p output's Y plane, FP32 and INT8
interleaved, 2 threads, median of ``--reps``.

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--targets", default="cpu,tensorrt")
    p.add_argument("--frames", default=str(DATA / "train" / "Train400"))
    p.add_argument("--max-drop-db", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "quantization_sr.md"))
    args = p.parse_args(argv)

    import onnxruntime as ort

    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.gate import GateError
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.zoo import resolve

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sets = {"Set5": load_set("Set5"), "Set14": load_set("Set14")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-sr-") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            src = str(resolve(f"sr-x{scale}"))
            paths = {"fp32": src}
            results = {}
            for target in args.targets.split(","):
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
                print(f"sr-x{scale} {target}: gate drop {results[target][0].worst_drop_db:+.3f} dB",
                      file=sys.stderr, flush=True)
            quality = {k: set_psnr(pth, sets, scale, args.threads) for k, pth in paths.items()}
            ms = speed(paths, scale, args.threads, args.reps)
            for target, (rep, fb, secs) in results.items():
                if target not in paths:
                    rows.append(f"| x{scale} | {target} | {rep.worst_drop_db:+.3f} | refused | | | | | {secs:.0f} |")
                    continue
                drops = {n: np.mean(quality["fp32"][n]) - np.mean(quality[target][n]) for n in sets}
                floats = ", ".join(fb["float_layers"]) if fb else "none"
                rows.append(
                    f"| x{scale} | {target} | {rep.worst_drop_db:+.3f} | {floats} | "
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
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows]) + "\n"
    write_atomic(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
