"""``edgerestore upscale IN -o OUT --scale 3 [--model M.onnx]``: super-resolve one image.

Reads any image OpenCV reads (8- or 16-bit; gray, BGR, or either with alpha), upscales
it with the shipped super-resolution model for ``--scale`` (or ``--model``, which must
be a super-resolution model), and writes exactly ``scale`` times the input size with
the input's bit depth and channels (alpha is resized bicubically). Colour: the model
works on BT.601 luma, the chroma is resized bicubically. The output is written to a
temp file beside ``OUT`` and moved into place with ``os.replace``. All checks (input
readable, model of the right task and scale, output size within ``--max-output-mp``,
output writable) run before the model runs.

This module parses arguments and reports; the work is in :mod:`edgerestore.upscale`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from edgerestore.cli import Command, add_self_ensemble_argument

log = logging.getLogger("edgerestore.cli.upscale")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgerestore.upscale import DEFAULT_MAX_OUTPUT_MP

    p.add_argument("input", metavar="IN", help="image file (any format OpenCV reads; 8- or 16-bit)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="output image; its extension picks the format (bit depth and channels kept)")
    p.add_argument("--scale", type=int, default=None,
                   help="2, 3 or 4: picks the shipped model sr-x<scale> (with --model: optional, "
                   "must match the model's scale)")
    p.add_argument("--model", metavar="NAME_OR_ONNX", default=None,
                   help="a zoo model name or your own super-resolution .onnx (task super_resolution)")
    p.add_argument("--max-output-mp", type=float, default=DEFAULT_MAX_OUTPUT_MP,
                   help=f"refuse outputs larger than this many megapixels (default {DEFAULT_MAX_OUTPUT_MP:g}, "
                   "8K UHD fits; 0 = no limit)")
    p.add_argument("--backend", default="auto", help="auto (default), ort-cpu, ort-cuda, tensorrt")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    add_self_ensemble_argument(p)
    p.set_defaults(usage_error=p.error)  # argparse's: prints the usage line, exits 2


def run(args: argparse.Namespace) -> int:
    from edgerestore.denoise import check_channels
    from edgerestore.imageio import check_image_output, read_image, write_image_atomic
    from edgerestore.kernels.threads import CancelledWhileRunning, end_process_now, run_interruptibly
    from edgerestore.upscale import check_output_size, open_upscaler, upscale_array

    if args.scale is None and args.model is None:
        from edgerestore.upscale import shipped_scales

        shipped = ", ".join(f"x{s} ({n})" for s, n in shipped_scales().items())
        args.usage_error(f"give --scale (shipped models: {shipped}) or --model")
    if args.scale is not None and args.scale < 2:
        args.usage_error(f"--scale must be an integer >= 2, got {args.scale}")
    src, out = Path(args.input), Path(args.output)
    from edgerestore.imageio import image_header_size

    size = image_header_size(src)  # before decoding: a small PNG can hold 400 MP
    if size is not None and args.scale is not None:
        check_output_size(size[1], size[0], args.scale, args.max_output_mp)
    img = read_image(src)
    check_channels(img, str(src), job="upscale")
    check_image_output(out, sixteen_bit=img.dtype.name == "uint16")
    if args.scale is not None:  # refuse an oversize output before loading any model
        check_output_size(img.shape[0], img.shape[1], args.scale, args.max_output_mp)
    with open_upscaler(args.model, args.scale, backend=args.backend, threads=args.threads,
                       self_ensemble=args.self_ensemble) as r:
        t0 = time.perf_counter()
        log.info("upscaling %s (%dx%d) with model %s", src, img.shape[1], img.shape[0], r.spec.name)
        # in a worker thread, so that Ctrl-C ends the command at once (nothing is written)
        try:
            result = run_interruptibly(upscale_array, r, img, max_output_mp=args.max_output_mp,
                                       on_interrupt=r.cancel)
        except CancelledWhileRunning:  # a backend that cannot stop its run
            end_process_now(130, "edgerestore upscale: interrupted")
        elapsed = time.perf_counter() - t0
        name, backend = r.spec.name, r.backend_name
    write_image_atomic(out, result)
    channels = 1 if img.ndim == 2 else img.shape[2]
    print(f"{out}: {img.shape[1]}x{img.shape[0]} -> {result.shape[1]}x{result.shape[0]}x{channels} "
          f"{img.dtype}, model {name} (x{r.spec.scale}) on {backend}"
          f"{f' (self-ensemble x{args.self_ensemble})' if args.self_ensemble > 1 else ''}, {elapsed:.2f} s")
    return 0


COMMAND = Command(
    name="upscale",
    help="super-resolve an image file x2/x3/x4 (learned ESPCN-class model; 8/16-bit, gray or colour)",
    add_arguments=add_arguments,
    run=run,
    description="Upscale one image file by --scale with the shipped super-resolution model (or "
    "--model) and write exactly scale x the input size, same bit depth and channels.",
)
