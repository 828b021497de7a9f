"""``edgerestore calibrate``: an INT8 or FP16 model from an FP32 one, behind an accuracy gate."""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command

EPILOG = """\
examples:
  edgerestore calibrate dn-gray --frames clips/street.mp4 -o dn-gray-int8.onnx
  edgerestore calibrate dn-gray --frames photos/ -o dn-gray-trt-int8.onnx --target tensorrt
  edgerestore calibrate dn-gray --precision fp16 -o dn-gray-fp16.onnx
  edgerestore calibrate my.onnx --frames photos/ -o my-int8.onnx --method entropy --keep-float first,last

The frames should look like what the model will restore, before degradation: the command
adds the degradation itself (noise over the model's trained sigma range, downscaling for
super-resolution, lost blocks for repair). The converted model is written only if its
PSNR against clean held-apart frames is within --max-drop-db of the FP32 model's at every
gated noise level. When the fully quantized model fails, the layers that lose the most are
kept in float, one at a time by measured sensitivity, until it passes (--no-fallback: refuse).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("model", help="zoo model name or path to an FP32 .onnx file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="converted model to write")
    p.add_argument("--frames", metavar="DIR_OR_VIDEO",
                   help="folder of images or a video file (required for int8; fp16 uses "
                        "synthetic frames for its gate when absent)")
    p.add_argument("--precision", choices=("int8", "fp16"), default="int8", help="default: int8")
    p.add_argument("--target", choices=("cpu", "tensorrt"), default="cpu",
                   help="int8 only: cpu = fastest in ONNX Runtime (U8 activations, S8 "
                        "per-channel weights); tensorrt = symmetric INT8, zero points 0, Q/DQ "
                        "where TensorRT fuses them (default: cpu)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile", "qat"), default=None,
                   help="int8 calibration method (default: entropy, the most accurate measured "
                        "for both targets; minmax calibrates ~5x faster; qat: the ranges "
                        "a model made by 'edgerestore train qat' learned)")
    p.add_argument("--max-drop-db", type=float, default=0.3, metavar="DB",
                   help="refuse (exit 1, nothing written) when PSNR against clean frames drops "
                        "by more than this (default: 0.3)")
    p.add_argument("--count", type=int, default=32, metavar="N",
                   help="frames to sample evenly from --frames; a quarter (at least 2) is kept "
                        "apart for the gate (default: 32)")
    p.add_argument("--crop", type=int, default=192, metavar="PX",
                   help="random PX x PX window per frame; bounds calibration memory (ONNX "
                        "Runtime keeps every activation of every frame); 0 = whole frames "
                        "(default: 192)")
    p.add_argument("--crops", choices=("mixed", "any"), default="mixed",
                   help="calibration windows: mixed = the most textured and the flattest of 8 "
                        "random windows in turn, so both edges and flat areas are calibrated "
                        "(default); any = one random window per frame")
    p.add_argument("--sigma", type=float, action="append", metavar="S",
                   help="denoisers: noise level(s) on the 0-255 scale to calibrate and gate at "
                        "(repeatable; default: spread over the model's trained range)")
    p.add_argument("--gate-sigma", type=float, action="append", metavar="S",
                   help="denoisers: noise level(s) the gate measures at, e.g. your camera's "
                        "(repeatable; default: as --sigma)")
    p.add_argument("--noise", choices=("clipped", "unclipped"), default="clipped",
                   help="denoisers, int8: calibrate on noisy frames clipped to [0, 1] as the "
                        "runtime feeds them (default), or on unclipped float noise, the published "
                        "tables' convention (keeps headroom for values outside [0, 1]; on "
                        "dn-gray 0.19 dB loss unclipped and 0.17 clipped, against 0.47 and 0.15). "
                        "The gate always measures clipped frames")
    p.add_argument("--keep-float", default="", metavar="NODES",
                   help="int8: comma-separated layers to leave in float: first, last or node names")
    p.add_argument("--no-fallback", action="store_true",
                   help="int8: refuse as soon as the fully quantized model fails the gate, "
                        "instead of searching for layers to keep in float (the default)")
    p.add_argument("--fallback-seconds", type=float, default=300.0, metavar="S",
                   help="int8: time allowed for that search; it stops and says so when spent "
                        "(default: 300)")
    p.add_argument("--per-tensor", action="store_true",
                   help="int8: one weight scale per layer instead of per output channel")
    p.add_argument("--fp16-io", action="store_true",
                   help="fp16: make the graph's inputs/outputs float16 too (default: float32)")
    p.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for crops and noise (default: 0)")
    p.add_argument("--json", action="store_true", help="print the gate report as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    import sys

    from edgerestore.calibration.convert import CalibrationJob, calibrate, describe_result
    from edgerestore.calibration.gate import GateError
    from edgerestore.calibration.quantize import Int8Settings

    settings = Int8Settings(
        target=args.target,
        method=args.method,
        per_channel=not args.per_tensor,
        keep_float=tuple(k.strip() for k in args.keep_float.split(",") if k.strip()),
    )
    job = CalibrationJob(
        model=args.model, output=args.output, precision=args.precision, frames=args.frames,
        count=args.count, crop=args.crop, sigmas=tuple(args.sigma) if args.sigma else None,
        gate_sigmas=tuple(args.gate_sigma) if args.gate_sigma else None, noise=args.noise,
        max_drop_db=args.max_drop_db, int8=settings, keep_io_types=not args.fp16_io,
        threads=args.threads, seed=args.seed, fallback=not args.no_fallback, crops=args.crops,
        fallback_seconds=args.fallback_seconds,
    )
    try:
        result = calibrate(job)
    except GateError as exc:
        print(exc.report.to_json() if args.json else exc.report.format())
        sys.stdout.flush()
        raise
    print(json.dumps({**result.report.to_dict(), "output": result.output,
                      "name": result.spec.name, "qdq": result.qdq,
                      "fallback": result.fallback})
          if args.json else describe_result(result))
    return 0


COMMAND = Command(
    name="calibrate",
    help="make an INT8 or FP16 model from an FP32 one, checked by an accuracy gate",
    add_arguments=add_arguments,
    run=run,
)
