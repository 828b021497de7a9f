"""``edgerestore denoise IN -o OUT [--method nlm|bm3d|model] [--model M] [--sigma S]``.

Denoise one image file.

Reads any image OpenCV reads (8- or 16-bit; gray, BGR, or either with alpha), denoises
it with a method of :data:`METHODS`, and writes ``OUT`` in the format its extension
names, with the input's bit depth and channels. The output is written to a temporary
file in ``OUT``'s folder and moved into place with ``os.replace``, so ``OUT`` is either
the old file or the complete new one, never half a file. Every check that can fail
(input readable, output folder writable, output format able to hold the bit depth,
sigma valid) runs before the denoising starts.

Adding a method is one entry in :data:`METHODS`: a function
``(img, sigma) -> denoised`` where ``img`` is float32 ``H x W`` or ``H x W x 3`` (BGR)
in [0, 1], ``sigma`` the noise level on the 0-255 scale or ``None`` (the method
estimates it), and the result float32 of the same shape. Import heavy modules inside
the function, not here.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from edgerestore.cli import Command, add_self_ensemble_argument
from edgerestore.errors import InputError

log = logging.getLogger(__name__)

DenoiseFn = Callable[[Any, Optional[float]], Any]


def _nlm(img, sigma):
    from edgerestore.kernels import nlm

    return nlm(img, sigma)


def _nlm_cuda(img, sigma):
    from edgerestore.kernels import nlm

    return nlm(img, sigma, device="cuda")


def _bm3d(img, sigma):
    from edgerestore.kernels import bm3d

    return bm3d(img, sigma)


def _bm3d_cuda(img, sigma):
    from edgerestore.kernels import bm3d

    return bm3d(img, sigma, device="cuda")


# name -> (img float32 in [0, 1], sigma on the 0-255 scale or None) -> float32 image
METHODS: dict[str, DenoiseFn] = {
    "nlm": _nlm,
    "nlm-cuda": _nlm_cuda,
    "bm3d": _bm3d,
    "bm3d-cuda": _bm3d_cuda,
}
# Methods that run a learned model; built in run() because they need --model/--backend.
MODEL_METHOD = "model"


def open_denoiser_model(model: str | None, backend: str, threads: int | None, self_ensemble: int = 1):
    """Open ``model`` (zoo name or .onnx path; None = the shipped default denoiser) and
    check that it is a denoiser. Returns a ModelRestorer (close it when done)."""
    from edgerestore.errors import ModelError
    from edgerestore.restorer import ModelRestorer
    from edgerestore.zoo import default_model

    restorer = ModelRestorer.open(model or default_model("denoise"), backend=backend,
                                  threads=threads, self_ensemble=self_ensemble)
    if restorer.spec.task != "denoise":
        restorer.close()
        raise ModelError(
            f"{restorer.spec.path} is a {restorer.spec.task} model ({restorer.spec.name!r}); "
            "`edgerestore denoise` needs a model whose metadata says task=denoise"
            + (" (use `edgerestore upscale` for it)" if restorer.spec.task == "super_resolution" else "")
        )
    log.info("model %s on %s (%s)", restorer.spec.name, restorer.backend_name, restorer.backend_reason)
    return restorer

_SCALE = {"uint8": 255.0, "uint16": 65535.0}
# Extensions (lower case) whose OpenCV writers keep 16-bit samples.
_SIXTEEN_BIT_FORMATS = {".png", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".jp2"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="image file (any format OpenCV reads; 8- or 16-bit)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="output image; its extension picks the format (bit depth and "
                        "channels are kept; IN may equal OUT)")
    p.add_argument("--method", choices=sorted([*METHODS, MODEL_METHOD]), default=None,
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
    add_self_ensemble_argument(p)


def _check_output(out: Path, *, sixteen_bit: bool) -> None:
    """Fail early when ``out`` cannot be written (before any denoising work)."""
    import cv2

    if out.is_dir():
        raise InputError(f"output {out} is a folder; give a file name such as {out / 'denoised.png'}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {out}: folder {folder} does not exist (create it first)")
    ext = out.suffix.lower()
    if not ext or not cv2.haveImageWriter(str(out)):
        raise InputError(f"cannot write {out}: OpenCV has no writer for the extension "
                         f"{ext or '(none)'!r}; use .png, .tif, .jpg or .bmp")
    if sixteen_bit and ext not in _SIXTEEN_BIT_FORMATS:
        raise InputError(f"the input is 16-bit but {ext} cannot store 16-bit samples; "
                         f"write {', '.join(sorted(_SIXTEEN_BIT_FORMATS))} instead")
    try:  # the only reliable test of write permission is to write
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc} in folder {folder}") from exc


def read_image(path: Path):
    """``(array, scale)``: the image as stored (uint8/uint16) and its full-scale value."""
    import cv2
    import numpy as np

    if not path.exists():
        raise InputError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise InputError(f"cannot read {path}: it is a folder, not an image file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # also works for non-ASCII paths
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"cannot read {path}: not an image OpenCV can decode "
                         "(PNG, JPEG, BMP, TIFF, WebP, PNM, ...)")
    if img.dtype.name not in _SCALE:
        raise InputError(f"{path} holds {img.dtype} samples; denoise reads 8- or 16-bit "
                         "images (convert float images with e.g. (img * 65535).astype(uint16))")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] not in (2, 3, 4):
        raise InputError(f"{path} has {img.shape[2]} channels; denoise handles 1 to 4")
    return img, _SCALE[img.dtype.name]


def denoise_array(img, method: str | DenoiseFn, sigma: float | None):
    """Denoise an 8/16-bit array with ``METHODS[method]`` (or a ``DenoiseFn``); same
    dtype and channels back.

    Alpha (the 2nd channel of gray+alpha, the 4th of BGRA) is passed through untouched.
    """
    import numpy as np

    scale = _SCALE[img.dtype.name]
    alpha = None
    color = img
    if img.ndim == 3 and img.shape[2] in (2, 4):
        color, alpha = img[:, :, :-1], img[:, :, -1:]
        if color.shape[2] == 1:
            color = color[:, :, 0]
    x = color.astype(np.float32) / np.float32(scale)
    fn = METHODS[method] if isinstance(method, str) else method
    y = fn(x, sigma)
    out = np.clip(np.rint(np.asarray(y, dtype=np.float64) * scale), 0, scale).astype(img.dtype)
    if alpha is not None:
        out = np.concatenate([out.reshape(*out.shape[:2], -1), alpha], axis=2)
    return out


def write_image_atomic(path: Path, img) -> None:
    """Encode ``img`` for ``path``'s extension, write a temp file beside it, ``os.replace``."""
    import cv2

    ok, buf = cv2.imencode(path.suffix, img)
    if not ok:
        raise InputError(f"OpenCV could not encode a {img.dtype} image with "
                         f"{1 if img.ndim == 2 else img.shape[2]} channel(s) as {path.suffix}")
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buf.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_sigma_in_trained_range(restorer, sigma: float | None) -> None:
    """An explicit --sigma outside the model's trained range is refused (a model asked
    for sigma 100 when trained to 75 silently under-denoises). Estimated sigmas and the
    library's ``ModelRestorer`` clip to the range with a warning instead, so that a
    stream never stops on a noisy estimate."""
    rng = restorer.spec.noise_level_range
    if sigma is None or rng is None:
        return
    lo, hi = rng
    if not lo <= sigma <= hi:
        restorer.close()
        raise InputError(
            f"--sigma {sigma:g} is outside the range model {restorer.spec.name!r} was trained for "
            f"(sigma {lo:g}-{hi:g}, 0-255 scale). Give a --sigma in that range, leave it out to "
            f"estimate it, or use --method bm3d / nlm, which take any sigma")


def run(args: argparse.Namespace) -> int:
    from edgerestore.kernels._checks import check_sigma

    sigma = None if args.sigma is None else check_sigma(args.sigma, what="--sigma")
    src, out = Path(args.input), Path(args.output)
    method = args.method or (MODEL_METHOD if args.model else "nlm")
    if args.model and method != MODEL_METHOD:
        raise InputError(f"--model runs a learned model; it cannot be combined with --method {method}")
    if args.self_ensemble > 1 and method != MODEL_METHOD:
        raise InputError(f"--self-ensemble averages a learned model's outputs; it needs --method model "
                         f"(or --model), not --method {method}")
    img, _ = read_image(src)
    _check_output(out, sixteen_bit=img.dtype.name == "uint16")
    restorer = None
    if method == MODEL_METHOD:  # open (and validate) the model before any work
        restorer = open_denoiser_model(args.model, args.backend, args.threads,
                                       self_ensemble=args.self_ensemble)
        _check_sigma_in_trained_range(restorer, sigma)
    try:
        t0 = time.perf_counter()
        fn = (lambda x, s: restorer(x, sigma=s)) if restorer else method
        result = denoise_array(img, fn, sigma)
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
