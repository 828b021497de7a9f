"""``edgerestore export``: a PyTorch training checkpoint -> ONNX with metadata (train extra).

Parses the arguments and calls :func:`edgerestore.export.export_checkpoint`.
"""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgerestore.export.parity import DEFAULT_ATOL
    from edgerestore.export.torch_to_onnx import DEFAULT_OPSET

    p.add_argument("target", metavar="ARCH:CHECKPOINT",
                   help="e.g. edgerestore.models.ffdnet:training/checkpoints/dn_gray/best.pt or "
                   "edgerestore.models.espcn:training/checkpoints/sr_luma/best.pt")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="ONNX file to write")
    p.add_argument("--name", default=None,
                   help="model name stored in the metadata (default dn-gray for a denoiser, "
                   "sr-x<scale> for super-resolution)")
    p.add_argument("--scale", type=int, default=None,
                   help="super-resolution checkpoints: which scale's head to export (a multi-scale "
                   "checkpoint has one per trained scale)")
    p.add_argument("--description", default="", help="one-line description stored in the metadata")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema",
                   help="EMA weights (default) or the raw optimiser weights (last.pt only)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset (default {DEFAULT_OPSET}: ORT and TensorRT)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"max |ONNX Runtime - PyTorch| allowed by the parity check (default {DEFAULT_ATOL:g})")


def run(args: argparse.Namespace) -> int:
    from edgerestore.export import export_checkpoint

    spec = export_checkpoint(args.target, args.output, name=args.name, weights=args.weights,
                             description=args.description, opset=args.opset, atol=args.atol,
                             scale=args.scale)
    print(json.dumps({"output": str(args.output), "name": spec.name,
                      "scale": spec.scale, "parity": spec.provenance.get("parity"),
                      "steps": spec.provenance.get("steps")}))
    return 0


COMMAND = Command("export", "export a trained PyTorch checkpoint to ONNX with metadata and a parity check",
                  add_arguments, run)
