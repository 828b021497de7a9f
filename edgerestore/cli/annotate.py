"""``edgerestore annotate PLAIN.onnx -o MODEL.onnx --task denoise --color gray --input NAME
[--noise-map NAME] [--scale N] ...``: bring your own model.

Parses the arguments and calls :func:`edgerestore.export.annotate.annotate`, which checks
the plain ONNX file against the model contract (docs/model-contract.md), probes it with
ONNX Runtime, writes it with the metadata and runs it once on a test frame; this prints
what it found.
"""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'lo,hi', got {text!r}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"expected lo < hi, got {text!r}")
    return lo, hi


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgerestore.model_spec import COLORS, TASKS

    p.add_argument("model", metavar="PLAIN.onnx", help="an ONNX file without edgerestore metadata "
                   "(e.g. exported with torch.onnx.export)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx",
                   help="where to write the model with its metadata (PLAIN.onnx is not changed)")
    p.add_argument("--task", required=True, choices=TASKS, help="what the model does")
    p.add_argument("--color", required=True, choices=tuple(COLORS),
                   help="what the image input's channels hold: gray or luma (1 channel), bgr or rgb (3)")
    p.add_argument("--input", dest="image_input", metavar="NAME", default=None,
                   help="the graph input that takes the image, N x C x H x W (default: the only input)")
    p.add_argument("--noise-map", metavar="NAME", default=None,
                   help="the graph input that takes the noise level, N x 1 x H x W, sigma/255 per pixel")
    p.add_argument("--mask", metavar="NAME", default=None,
                   help="the graph input that takes a damage mask, N x 1 x H x W, 1 where damaged")
    p.add_argument("--scale", type=int, default=None,
                   help="super-resolution: output/input size ratio (default: measured; checked if given)")
    p.add_argument("--name", default=None, help="model name in the metadata (default: the output's stem)")
    p.add_argument("--description", default="", help="one line for `edgerestore models`")
    p.add_argument("--value-range", type=_pair, default=(0.0, 1.0), metavar="LO,HI",
                   help="image values the model was trained on (default 0,1; 0,255 for 8-bit values)")
    p.add_argument("--noise-level-range", type=_pair, default=None, metavar="LO,HI",
                   help="with --noise-map: sigma range (0-255 scale) it was trained for (default 0,75)")
    p.add_argument("--size-multiple", type=int, default=None, metavar="M",
                   help="height and width must be multiples of M (default: found by probing the model)")
    p.add_argument("--tile-size", type=int, default=0, metavar="PX",
                   help="suggested tile edge for large frames (default 0: whole frames; a model with "
                        "a fixed input size is always tiled to that size)")
    p.add_argument("--tile-overlap", type=int, default=None, metavar="PX",
                   help="context pixels around each tile (default 16 for a fixed input size, else 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    from edgerestore.export.annotate import annotate

    if args.noise_level_range is not None and args.noise_map is None:
        args.usage_error("--noise-level-range describes the --noise-map input; give --noise-map NAME")
    if args.scale is not None and args.task != "super_resolution" and args.scale != 1:
        args.usage_error(f"--scale {args.scale} is for --task super_resolution")
    report = annotate(
        args.model, args.output, task=args.task, color=args.color, image_input=args.image_input,
        noise_map=args.noise_map, mask=args.mask, scale=args.scale, name=args.name,
        description=args.description, value_range=args.value_range,
        noise_level_range=args.noise_level_range, size_multiple=args.size_multiple,
        tile_size=args.tile_size, tile_overlap=args.tile_overlap)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


COMMAND = Command(
    name="annotate",
    help="check your own plain ONNX model against the contract and write it with edgerestore's metadata",
    add_arguments=add_arguments,
    run=run,
    description="Bring your own model: check a plain ONNX file (dynamic or fixed input size, "
    "the inputs' roles, its scale and size multiple), write it with the metadata that "
    "`denoise --model`, `upscale --model` and `run` need, and test it once on a synthetic frame.",
)
