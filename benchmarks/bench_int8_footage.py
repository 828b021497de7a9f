"""INT8 from real footage: `calibrate dn-gray` on each clip / folder, for both targets.

    nice -n 10 python benchmarks/bench_int8_footage.py
    python benchmarks/bench_int8_footage.py --sources dashcam --targets cpu --quick

For every source (the two real clips in ../shared/data/video and the Set14 folder) and
target (cpu, tensorrt), in one process:

1. ``edgerestore calibrate`` as a user runs it (``calibrate()`` with the CLI defaults,
   ``--max-drop-db 0.2``, 2 threads): the gate on held-apart frames of the source at
   sigma 15/25/50, the automatic per-layer fallback when it fails; records the verdict,
   the per-sigma drops, the layers left in float and the time taken;
2. the written model on BSD68 (gray, cropped to even sizes) at sigma 15, 25 and 50 with
   8-bit clipped noise (what a camera delivers), against the FP32 model on the same noisy
   images (seeds fixed per image), straight through ONNX Runtime;
3. speed at 720x1280 on ONNX Runtime's CPU provider, 2 threads, FP32 and every written
   model interleaved in the same run (median of ``--reps``), and the ratio to FP32.

Writes ``benchmarks/results/quantization_footage.md`` (atomically) and prints it.
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
from bench_quantization import load_gray, session, write_atomic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.metrics import psnr  # noqa: E402

DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCES = {"dashcam": DATA / "video" / "dashcam_solidWhiteRight.mp4",
           "pedestrians": DATA / "video" / "pedestrians_vtest.avi",
           "Set14": DATA / "testsets" / "Set14"}
SIGMAS = (15.0, 25.0, 50.0)


def bsd68_psnr(path: str, images, names, threads: int) -> dict[float, list[float]]:
    """PSNR per image at each sigma, clipped noise, seeds fixed per image and sigma."""
    sess = session(path, threads)
    out = {}
    for sigma in SIGMAS:
        scores = []
        for i, clean in enumerate(images):
            rng = np.random.default_rng(2000 + 100 * int(sigma) + i)
            noisy = np.clip(clean + rng.standard_normal(clean.shape).astype(np.float32)
                            * np.float32(sigma / 255), 0, 1).astype(np.float32)
            level = np.full((1, 1, *clean.shape), sigma / 255, np.float32)
            res = sess.run(None, {names[0]: noisy[None, None], names[1]: level})[0][0, 0]
            scores.append(psnr(clean, res))
        out[sigma] = scores
    return out


def speed(paths: dict[str, str], names, threads: int, reps: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    feed = {names[0]: rng.random((1, 1, 720, 1280), dtype=np.float32),
            names[1]: np.full((1, 1, 720, 1280), 25 / 255, np.float32)}
    sessions = {k: session(p, threads) for k, p in paths.items()}
    for s in sessions.values():
        s.run(None, feed)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(reps):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feed)
            times[k].append((time.perf_counter() - t) * 1000)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--targets", default="cpu,tensorrt")
    p.add_argument("--max-drop-db", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="every 4th BSD68 image, 3 speed runs")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "quantization_footage.md"))
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the layer search's steps
    import onnxruntime as ort

    from edgerestore.calibration.convert import CalibrationJob, calibrate
    from edgerestore.calibration.gate import GateError
    from edgerestore.calibration.quantize import Int8Settings
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import resolve

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    src = str(resolve("dn-gray"))
    spec = read_spec(src)
    names = (spec.image_input, spec.input_for("noise_level"))
    bsd = sorted((DATA / "testsets" / "BSD68").glob("*.png"))[:: 4 if args.quick else 1]
    images = [load_gray(f) for f in bsd]
    reps = 3 if args.quick else args.reps
    runs, paths = {}, {"fp32": src}
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for source in args.sources.split(","):
            for target in args.targets.split(","):
                key = f"{source} / {target}"
                out = str(Path(tmp) / f"{source}-{target}.onnx")
                t0 = time.perf_counter()
                try:
                    res = calibrate(CalibrationJob(
                        model="dn-gray", output=out, frames=str(SOURCES[source]),
                        max_drop_db=args.max_drop_db, int8=Int8Settings(target=target),
                        threads=args.threads))
                    report, fb, qdq = res.report, res.fallback, res.qdq
                    paths[key] = out
                except GateError as exc:
                    report, fb, qdq = exc.report, None, None
                runs[key] = (report, fb, qdq, time.perf_counter() - t0)
                print(f"{key}: worst gate drop {report.worst_drop_db:+.3f} dB "
                      f"({'written' if key in paths else 'refused'}) in {runs[key][3]:.0f} s",
                      file=sys.stderr, flush=True)
        quality = {k: bsd68_psnr(p, images, names, args.threads) for k, p in paths.items()}
        timing = speed(paths, names, args.threads, reps)
    base = quality["fp32"]
    f32 = statistics.median(timing["fp32"])
    lines = [
        "# INT8 dn-gray calibrated on real footage, both targets",
        "",
        f"Run {started} with `python benchmarks/bench_int8_footage.py "
        + " ".join(argv if argv is not None else sys.argv[1:]) + "`; "
        f"{cpu_description()}; onnxruntime {ort.__version__}, CPU provider, {args.threads} threads; "
        f"load average at the end {os.getloadavg()[0]:.1f} (shared machine).",
        "",
        f"Calibration: `edgerestore calibrate dn-gray --frames SOURCE --target T --max-drop-db "
        f"{args.max_drop_db:g}` defaults (32 frames evenly over the source, 8 held apart for the gate, "
        "mixed flat/textured 192-px crops, noise over the trained range, automatic per-layer "
        "fallback). BSD68: all images" + (" (every 4th: --quick)" if args.quick else "")
        + ", gray, clipped noise, the FP32 model on the same noisy images. Speed: 720x1280, "
        f"interleaved, median of {reps}.",
        "",
        "| source / target | gate: drop at sigma 15 / 25 / 50 (held-apart frames) | verdict | "
        "layers in float | BSD68 drop at sigma 15 / 25 / 50 | ms per 720p frame | speed vs FP32 | calibration s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| FP32 | | | | {' / '.join(f'{np.mean(base[s]):.3f}' for s in SIGMAS)} dB (PSNR) | "
        f"{f32:.0f} | 1.00x | |",
    ]
    for key, (rep, fb, qdq, secs) in runs.items():
        gd = " / ".join(f"{rep.group_drops.get(f'sigma {s:g}', float('nan')):+.3f}" for s in SIGMAS)
        floats = (", ".join(x.rsplit("/", 2)[-2] for x in fb["float_layers"]) or "none") if fb else (
            "none" if key in paths else "-")
        if key in paths:
            q = quality[key]
            bd = " / ".join(f"{np.mean(base[s]) - np.mean(q[s]):+.3f}" for s in SIGMAS)
            ms = statistics.median(timing[key])
            sp = f"{ms:.0f} | {f32 / ms:.2f}x"
        else:
            bd, sp = "(refused, not written)", "- | -"
        lines.append(f"| {key} | {gd} | {'written' if key in paths else 'refused'} | {floats} | "
                     f"{bd} | {sp} | {secs:.0f} |")
    lines += ["", "Per-image BSD68 PSNR (dB) is in the log of the run; per-frame gate figures "
              "are in each model's provenance (`calibration.gate.per_frame`)."]
    text = "\n".join(lines) + "\n"
    write_atomic(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
