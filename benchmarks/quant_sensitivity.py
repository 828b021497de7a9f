"""Why INT8 loses accuracy on footage: per-node sensitivity and activation ranges.

    python benchmarks/quant_sensitivity.py --frames ../shared/data/video/dashcam_solidWhiteRight.mp4
    python benchmarks/quant_sensitivity.py --frames ../shared/data/train/Train400 --target tensorrt

Frames, samples, feeds and gate exactly as ``edgerestore calibrate`` makes them (the
same public functions, same seeds, same split). Ranges are computed once
(``Int8Quantizer``); then, each measured on the held-apart gate frames at sigma 15/25/50:

* the fully quantized model;
* **keep one in float**: every quantized node (weighted layers and the element-wise /
  reshaping ops ORT also quantizes) left in float alone;
* **quantize one**: only that node quantized (``nodes_to_quantize``);
* all weighted layers in float (what remains is the quantization of the other ops);
* the calibrated activation range of the graph input, the noise-level map, the
  concatenated input, every ReLU and the residual (output of the last layer).

Appends a section to ``benchmarks/results/quantization_sensitivity.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.backends import RunnerOptions, open_runner  # noqa: E402
from edgerestore.calibration.convert import default_gate_sigmas, split_frames  # noqa: E402
from edgerestore.calibration.frames import load_frames  # noqa: E402
from edgerestore.calibration.gate import evaluate  # noqa: E402
from edgerestore.calibration.quantize import Int8Quantizer, Int8Settings  # noqa: E402
from edgerestore.calibration.samples import make_samples, record_feeds, run_restorer  # noqa: E402
from edgerestore.errors import ModelError  # noqa: E402
from edgerestore.model_spec import read_spec  # noqa: E402
from edgerestore.restorer import ModelRestorer  # noqa: E402
from edgerestore.zoo import resolve  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "quantization_sensitivity.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dn-gray")
    ap.add_argument("--frames", required=True)
    ap.add_argument("--target", default="cpu", choices=("cpu", "tensorrt"))
    ap.add_argument("--method", default="entropy")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--crops", default="mixed", choices=("mixed", "any"),
                    help="calibration windows as `calibrate --crops` (any: what it did before #23)")
    ap.add_argument("--quick", action="store_true", help="only the whole-model rows and ranges")
    args = ap.parse_args()
    import onnx

    t0 = time.perf_counter()
    path = str(resolve(args.model))
    spec = read_spec(path)
    frames = load_frames(args.frames, args.count, minimum=4, allow_mixed=spec.channels == 1)
    calib_frames, gate_frames = split_frames(frames, 0.25)
    calib = make_samples(calib_frames, spec, crop=args.crop, seed=0, crops=args.crops)
    gate_samples = make_samples(gate_frames, spec, crop=args.crop, seed=1,
                                sigmas=default_gate_sigmas(spec))
    labels = [f"sigma {s.sigma:g}" for s in gate_samples]
    runner, reason = open_runner(path, "ort-cpu", RunnerOptions(threads=args.threads))
    with runner:
        feeds = record_feeds(spec, runner, reason, calib)
        fp32 = run_restorer(ModelRestorer(spec, runner, reason), gate_samples)
    tmp = Path(f"/tmp/quant_sens_{os.getpid()}.onnx")

    def gate(model, name=""):
        from edgerestore.model_spec import write_spec
        from dataclasses import replace

        write_spec(model, replace(spec, precision="int8", path=None, size_bytes=None))
        onnx.save(model, str(tmp))
        r, why = open_runner(str(tmp), "ort-cpu", RunnerOptions(threads=args.threads))
        with r:
            out = run_restorer(ModelRestorer(read_spec(tmp), r, why), gate_samples)
        rep = evaluate([s.clean for s in gate_samples], fp32, out, precision="int8", labels=labels)
        print(f"{rep.worst_drop_db:+.3f} {rep.group_drops}", file=sys.stderr, flush=True)
        return rep

    settings = Int8Settings(target=args.target, method=args.method)
    rows = []
    with Int8Quantizer(onnx.load(path), feeds, settings) as q:
        full_model = q.quantize()
        full = gate(full_model)
        rows.append(("all quantized", full))
        weighted = q.weighted_layers()
        groups = q.layer_groups()
        rows.append(("all weighted layers in float", gate(q.quantize(weighted))))
        for layer, members in groups.items():
            rows.append((f"keep layer in float: {layer} (+{len(members) - 1} nodes)",
                         gate(q.quantize(members))))
        first, last = groups[weighted[0]], groups[weighted[-1]]
        rows.append(("keep first + last layers in float", gate(q.quantize(first + last))))
        quantized_nodes = q.quantized_nodes(full_model)
        if not args.quick:
            for node in quantized_nodes:
                rows.append((f"keep node in float: {node}", gate(q.quantize([node]))))
            for node in quantized_nodes:
                try:
                    rows.append((f"quantize only: {node}", gate(q.quantize(only=[node]))))
                except ModelError:  # ORT leaves a lone ReLU / reshape unquantized
                    print(f"quantize only {node}: nothing to quantize", file=sys.stderr)
        ranges = q.ranges()
    tmp.unlink(missing_ok=True)

    groups = list(full.group_drops)
    lines = [f"\n## {args.model}, target {args.target}, {args.method}, frames "
             f"{Path(args.frames).name} ({len(calib_frames)} calibration + {len(gate_frames)} gate "
             f"frames, crop {args.crop}, crops {args.crops})\n",
             f"FP32 PSNR on the gate frames: {full.psnr_fp32:.3f} dB; INT8 vs FP32 output "
             f"{full.psnr_vs_fp32:.2f} dB; {time.perf_counter() - t0:.0f} s.\n",
             "| variant | " + " | ".join(f"drop {g}" for g in groups) + " | worst | INT8 vs FP32 dB |",
             "| --- | " + " | ".join("---" for _ in groups) + " | --- | --- |"]
    for name, rep in rows:
        d = rep.group_drops
        lines.append(f"| {name} | " + " | ".join(f"{d.get(g, float('nan')):+.3f}" for g in groups)
                     + f" | {rep.worst_drop_db:+.3f} | {rep.psnr_vs_fp32:.2f} |")
    lines += ["", "Calibrated ranges (min, max) of selected tensors:", "",
              "| tensor | min | max |", "| --- | --- | --- |"]
    for name, (lo, hi) in ranges.items():
        if any(k in name for k in ("image", "noise_level", "Concat", "AveragePool", "Relu",
                                   "body.28", "DepthToSpace")):
            lines.append(f"| {name} | {lo:.4f} | {hi:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# INT8 sensitivity of the shipped models (benchmarks/quant_sensitivity.py)\n")
    with open(RESULTS, "a") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
