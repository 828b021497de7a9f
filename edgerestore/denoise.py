"""Denoising of whole images, stored as integers: the library behind ``edgerestore denoise``.

* :data:`METHODS`: the denoise methods by name (a :class:`~edgerestore.registry.Registry`,
  so ``denoise --method`` lists exactly what is registered). A method is a function
  ``(img, sigma) -> denoised``: ``img`` float32 ``H x W`` or ``H x W x 3`` (BGR) in
  [0, 1], ``sigma`` the noise level on the 0-255 scale or ``None`` (the method
  estimates it), the result float32 of the same shape. Adding one is
  ``@METHODS.register("name", description=...)``; import heavy modules inside the
  function, not at the top of its module.
* :func:`denoise_array`: an 8- or 16-bit image (gray, BGR, either with alpha) through a
  method; same dtype and channels back, alpha untouched.
* :func:`open_denoiser_model` and :func:`check_sigma_in_trained_range`: a learned
  denoiser (``--method model``), opened and checked before any work.
* :func:`check_input_size` (with :func:`edgerestore.imageio.image_header_size`): refuse an image too large for
  memory before it is decoded (:data:`DEFAULT_MAX_INPUT_MP`).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import numpy as np

from edgerestore.errors import InputError, ModelError
from edgerestore.registry import Registry

log = logging.getLogger(__name__)

DenoiseFn = Callable[[np.ndarray, Optional[float]], np.ndarray]
"""``(img float32 in [0, 1], sigma on the 0-255 scale or None) -> float32 image``."""

METHODS: Registry[DenoiseFn] = Registry("denoise method")
"""Denoise methods by name, in the order ``denoise --help`` lists them."""

MODEL_METHOD = "model"
"""The method that runs a learned denoiser; the CLI opens it with :func:`open_denoiser_model`
(``--model``, ``--backend``, ...) instead of calling the registered default."""

DEFAULT_METHOD = "nlm"
"""The method used when none is given and no model is named."""


DEFAULT_MAX_INPUT_MP = 100.0
"""Largest input (megapixels) ``denoise`` takes unless raised (``--max-input-mp``): a
100 MP photo fits; the kernels hold several float32 copies of the image (a 400 MP PNG
of 389 KB drove the process to 4.7 GB), so a bigger one is refused before decoding."""
WORKING_COPIES = 3
"""Float32 copies of the image a denoise call holds at least (input, padded, output):
the lower bound the size message quotes."""


def check_input_size(width: int, height: int, max_input_mp: float | None, *, channels: int = 3,
                     option: str = "--max-input-mp") -> None:
    """Refuse an image of more than ``max_input_mp`` megapixels (None or <= 0: no limit),
    naming its size, the memory its float32 copies need and ``option``, which raises it."""
    if max_input_mp is None or max_input_mp <= 0:
        return
    mp = width * height / 1e6
    if mp > max_input_mp:
        gb = mp * 1e6 * channels * 4 * WORKING_COPIES / 1e9
        raise InputError(
            f"the image is {width}x{height} = {mp:.3g} megapixels, above the limit of "
            f"{max_input_mp:g} MP (denoising it needs more than {gb:.1f} GB of memory); raise "
            f"it with {option} N (0 = no limit) or denoise a smaller crop")


@METHODS.register("nlm", description="non-local means on the CPU (Numba; the default)")
def denoise_nlm(img: np.ndarray, sigma: float | None) -> np.ndarray:
    from edgerestore.kernels import nlm

    return nlm(img, sigma)


@METHODS.register("nlm-cuda", description="non-local means on an NVIDIA GPU (numba.cuda)")
def denoise_nlm_cuda(img: np.ndarray, sigma: float | None) -> np.ndarray:
    from edgerestore.kernels import nlm

    return nlm(img, sigma, device="cuda")


@METHODS.register("bm3d", description="BM3D (CBM3D for colour) on the CPU (Numba)")
def denoise_bm3d(img: np.ndarray, sigma: float | None) -> np.ndarray:
    from edgerestore.kernels import bm3d

    return bm3d(img, sigma)


@METHODS.register("bm3d-cuda", description="BM3D on an NVIDIA GPU (numba.cuda)")
def denoise_bm3d_cuda(img: np.ndarray, sigma: float | None) -> np.ndarray:
    from edgerestore.kernels import bm3d

    return bm3d(img, sigma, device="cuda")


@METHODS.register(MODEL_METHOD, description="a learned denoiser (the shipped default, or --model)")
def denoise_with_default_model(img: np.ndarray, sigma: float | None) -> np.ndarray:
    """The shipped default denoiser on the automatic backend, opened for this one call
    (an explicit sigma outside its trained range is refused)."""
    restorer = open_denoiser_model(None)
    try:
        check_sigma_in_trained_range(restorer.spec, sigma, what="sigma")
        return restorer(img, sigma=sigma)
    finally:
        restorer.close()


def open_denoiser_model(model: str | None, backend: str = "auto", threads: int | None = None,
                        self_ensemble: int = 1):
    """Open ``model`` (zoo name or .onnx path; None: the shipped default denoiser) and
    check that it is a denoiser. Returns a :class:`~edgerestore.restorer.ModelRestorer`
    (close it when done); raises :class:`ModelError` for a model of another task."""
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


def check_sigma_in_trained_range(spec, sigma: float | None, *, what: str = "--sigma") -> None:
    """Refuse an explicit ``sigma`` (0-255 scale) outside the range the model of ``spec``
    (a :class:`~edgerestore.model_spec.ModelSpec`) was trained for: a model asked for
    sigma 100 when trained to 75 silently under-denoises. ``None`` (estimated) and
    models without a range pass; :class:`~edgerestore.restorer.ModelRestorer` clips
    estimated sigmas to the range with a warning instead, so that a stream never stops
    on a noisy estimate. ``what`` names the value in the message."""
    rng = spec.noise_level_range
    if sigma is None or rng is None:
        return
    lo, hi = rng
    if not lo <= sigma <= hi:
        raise InputError(
            f"{what} {sigma:g} is outside the range model {spec.name!r} was trained for "
            f"(sigma {lo:g}-{hi:g}, 0-255 scale). Give a {what} in that range, leave it out to "
            f"estimate it, or use --method bm3d / nlm, which take any sigma")


def split_alpha(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour, alpha)`` of an ``H x W [x C]`` image: gray+alpha (2 channels) and BGRA
    (4) give ``H x W`` / ``H x W x 3`` and the ``H x W`` alpha plane; gray and BGR give
    themselves and ``None``."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        color = img[:, :, :-1]
        return (color[:, :, 0] if color.shape[2] == 1 else color), img[:, :, -1]
    return img, None


def check_channels(img: np.ndarray, what: str = "the image", *, job: str = "denoise") -> None:
    """Refuse an image whose channels are not gray, gray+alpha, BGR or BGRA (1 to 4);
    ``what`` names the image and ``job`` the work in the message."""
    if img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{what} has {img.shape[2]} channels; {job} handles 1 to 4")


def denoise_array(img: np.ndarray, method: str | DenoiseFn, sigma: float | None) -> np.ndarray:
    """Denoise an 8- or 16-bit array with ``METHODS[method]`` (or a :data:`DenoiseFn`);
    same dtype and channels back.

    Samples are converted with :func:`edgerestore.imageio.to_float` /
    :func:`~edgerestore.imageio.from_float` (the package's one rule). ``sigma`` is on the
    0-255 scale whatever the bit depth. Alpha (the 2nd channel of gray+alpha, the 4th of
    BGRA) is passed through untouched.
    """
    from edgerestore.imageio import from_float, to_float

    check_channels(img)
    fn = METHODS.get(method) if isinstance(method, str) else method
    color, alpha = split_alpha(img)
    # float64 in: from_float then scales and rounds without a float32 rounding first
    out = from_float(np.asarray(fn(to_float(color), sigma), dtype=np.float64), img.dtype)
    if alpha is not None:
        out = np.concatenate([out.reshape(*out.shape[:2], -1), alpha[:, :, None]], axis=2)
    return out


__all__ = ["DEFAULT_MAX_INPUT_MP", "check_input_size", "METHODS", "MODEL_METHOD", "DEFAULT_METHOD", "DenoiseFn", "denoise_array",
           "open_denoiser_model", "check_sigma_in_trained_range", "check_channels", "split_alpha"]
