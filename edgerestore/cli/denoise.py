"""``edgerestore denoise IN -o OUT [--method M] [--model M] [--sigma S]``.

Denoise one image file.

Reads any image OpenCV reads (8- or 16-bit; gray, BGR, or either with alpha), denoises
it with a method of :data:`edgerestore.denoise.METHODS`, and writes ``OUT`` in the
format its extension names, with the input's bit depth and channels. The output is
written atomically (:func:`edgerestore.imageio.write_image_atomic`), so ``OUT`` is
either the old file or the complete new one, never half a file. Every check that can
fail (input readable, output folder writable, output format able to hold the bit depth,
sigma valid, model of the right task) runs before the denoising starts.

This module parses arguments and reports; the work is in :mod:`edgerestore.denoise`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from edgerestore.cli import Command, add_self_ensemble_argument

log = logging.getLogger("edgerestore.cli.denoise")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgerestore import denoise as denoise_lib
    from edgerestore.denoise import METHODS

    p.add_argument("input", metavar="IN", help="image file (any format OpenCV reads; 8- or 16-bit)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="output image; its extension picks the format (bit depth and "
                        "channels are kept; IN may equal OUT)")
    p.add_argument("--method", choices=sorted(METHODS.names()), default=None,
                   help="denoiser: nlm (non-local means, the default), bm3d, or model (a "
                        "learned denoiser: the shipped default, or --model)")
    p.add_argument("--model", metavar="M", default=None,
                   help="zoo model name or path to a denoiser .onnx (implies --method model)")
    p.add_argument("--backend", default="auto",
                   help="inference backend for --method model: auto, ort-cpu, ort-cuda, "
                        "tensorrt (default: auto)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for --method model (default: all usable cores)")
    p.add_argument("--sigma", type=float, metavar="S", default=None,
                   help="noise standard deviation on the 0-255 scale, whatever the bit depth "
                        "(default: estimated from the image); with a model it must lie in the "
                        "model's trained range (dn-gray: 0-75)")
    p.add_argument("--max-input-mp", type=float, default=denoise_lib.DEFAULT_MAX_INPUT_MP, metavar="MP",
                   help=f"refuse inputs larger than this many megapixels, before decoding them "
                        f"(default {denoise_lib.DEFAULT_MAX_INPUT_MP:g}; 0 = no limit)")
    add_self_ensemble_argument(p)
    p.set_defaults(usage_error=p.error)  # argparse's: prints the usage line, exits 2


def run(args: argparse.Namespace) -> int:
    from edgerestore import denoise
    from edgerestore.imageio import check_image_output, image_header_size, read_image, write_image_atomic
    from edgerestore.kernels.checks import check_sigma
    from edgerestore.kernels.threads import CancelledWhileRunning, end_process_now, run_interruptibly

    sigma = None if args.sigma is None else check_sigma(args.sigma, what="--sigma")
    src, out = Path(args.input), Path(args.output)
    model_method = denoise.MODEL_METHOD
    method = args.method or (model_method if args.model else denoise.DEFAULT_METHOD)
    if args.model and method != model_method:
        args.usage_error(f"--model runs a learned model; it cannot be combined with --method {method}")
    if args.self_ensemble > 1 and method != model_method:
        args.usage_error(f"--self-ensemble averages a learned model's outputs; it needs --method model "
                         f"(or --model), not --method {method}")
    size = image_header_size(src)  # before decoding: a small PNG can hold 400 MP
    if size is not None:
        denoise.check_input_size(*size, args.max_input_mp)
    img = read_image(src)
    denoise.check_channels(img, str(src))
    denoise.check_input_size(img.shape[1], img.shape[0], args.max_input_mp,
                             channels=1 if img.ndim == 2 else img.shape[2])
    check_image_output(out, sixteen_bit=img.dtype.name == "uint16")
    restorer = None
    if method == model_method:  # open (and validate) the model before any work
        restorer = denoise.open_denoiser_model(args.model, args.backend, args.threads,
                                               self_ensemble=args.self_ensemble)
    try:
        if restorer is not None:
            denoise.check_sigma_in_trained_range(restorer.spec, sigma, what="--sigma")
        t0 = time.perf_counter()
        fn = (lambda x, s: restorer(x, sigma=s)) if restorer else method
        log.info("denoising %s (%dx%d) with %s", src, img.shape[1], img.shape[0],
                 f"model {restorer.spec.name}" if restorer else f"method {method}")
        # in a worker thread, so that Ctrl-C ends the command at once (nothing is written)
        try:
            result = run_interruptibly(denoise.denoise_array, img, fn, sigma,
                                       on_interrupt=restorer.cancel if restorer else None)
        except CancelledWhileRunning:
            end_process_now(130, "edgerestore denoise: interrupted")
        elapsed = time.perf_counter() - t0
    finally:
        if restorer is not None:
            restorer.close()
    write_image_atomic(out, result)
    channels = 1 if img.ndim == 2 else img.shape[2]
    shown = "auto" if sigma is None else f"{sigma:g}"
    what = f"model {restorer.spec.name} on {restorer.backend_name}" if restorer else f"method {method}"
    if restorer and restorer.self_ensemble > 1:
        what += f" (self-ensemble x{restorer.self_ensemble})"
    print(f"{out}: {img.shape[1]}x{img.shape[0]}x{channels} {img.dtype}, {what}, "
          f"sigma {shown}, {elapsed:.2f} s")
    return 0


COMMAND = Command(
    name="denoise",
    help="denoise an image file (NLM, BM3D or a learned model; 8/16-bit, gray or colour)",
    add_arguments=add_arguments,
    run=run,
    description="Denoise one image file and write it with the same bit depth and channels. "
    "Sigma is on the 0-255 scale for every bit depth; without --sigma it is estimated.",
)
