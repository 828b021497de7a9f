"""Super-resolution with a model of the zoo or a user's own: used by ``edgerestore
upscale`` and by the runtime's ``upscale`` stage.

:func:`open_upscaler` picks the model (the shipped default for ``scale``, or the one
given), refuses a model that is not a super-resolution model or whose scale differs
from the one asked for, and opens it on a backend. :func:`upscale_image` runs it on a
float image with the output-size limit checked first; :func:`upscale_array` does the
same for an 8- or 16-bit image as stored (alpha resized bicubically). Colour: shipped models work on
luma (BT.601 Y); :class:`~edgerestore.restorer.ModelRestorer` converts BGR to YCrCb,
runs Y through the model and resizes the chroma bicubically, so output size is
exactly ``scale`` times the input size.
"""

from __future__ import annotations

import os

import numpy as np

from edgerestore.errors import InputError, ModelError

TASK = "super_resolution"
# Largest output a single call produces unless the caller raises it: 40 megapixels holds
# 8K UHD (7680 x 4320 = 33.2 MP); an x4 upscale of a 4K frame (133 MP, 1.6 GB as
# float32 BGR) is refused rather than silently eating the memory of an edge device.
DEFAULT_MAX_OUTPUT_MP = 40.0


def shipped_scales() -> dict[int, str]:
    """``{scale: model name}`` of the shipped default super-resolution models."""
    from edgerestore.zoo import DEFAULTS

    return {s: name for (task, s), name in sorted(DEFAULTS.items()) if task == TASK}


def _scales_text() -> str:
    sc = shipped_scales()
    return ", ".join(f"x{s} ({n})" for s, n in sc.items()) or "(none)"


def check_output_size(height: int, width: int, scale: float, max_output_mp: float | None, *,
                      option: str = "--max-output-mp") -> None:
    """Refuse an output larger than ``max_output_mp`` megapixels (None or <= 0: no limit).
    ``option`` names the setting that raises the limit in the message."""
    if max_output_mp is None or max_output_mp <= 0:
        return
    out_w, out_h = round(width * scale), round(height * scale)
    mp = out_w * out_h / 1e6
    if mp > max_output_mp:
        raise InputError(
            f"x{scale:g} of a {width}x{height} image would be {out_w}x{out_h} = {mp:.1f} "
            f"megapixels ({mp * 12 / 1e3:.1f} GB as float32 BGR), above the limit of "
            f"{max_output_mp:g} MP; raise it with {option} (0 = no limit) or upscale a "
            "smaller image or tile"
        )


def open_upscaler(model: str | os.PathLike | None = None, scale: int | None = None, *,
                  backend: str = "auto", threads: int | None = None, tile_size: int | None = None,
                  tile_overlap: int | None = None, self_ensemble: int = 1):
    """A :class:`~edgerestore.restorer.ModelRestorer` for a super-resolution model.

    ``model`` None: the shipped default for ``scale`` (required then). With ``model``,
    ``scale`` may be None (the model's own) or must equal the model's.
    """
    from edgerestore.model_spec import read_spec
    from edgerestore.restorer import ModelRestorer
    from edgerestore.zoo import resolve

    if scale is not None and (int(scale) != scale or scale < 2):
        raise InputError(f"scale must be an integer >= 2, got {scale!r}; shipped: {_scales_text()}")
    if model is None:
        if scale is None:
            raise InputError(f"give a scale (shipped models: {_scales_text()}) or a model")
        name = shipped_scales().get(int(scale))
        if name is None:
            raise InputError(f"no super-resolution model for x{scale}; shipped scales: {_scales_text()}. "
                             f"Pass --model to use your own x{scale} model.")
        model = name
    path = resolve(model)
    spec = read_spec(path)
    if spec.task != TASK:
        raise ModelError(
            f"{model}: a {spec.task} model (scale {spec.scale}), not a super-resolution model; "
            f"upscale needs task=super_resolution (shipped: {_scales_text()})"
        )
    if scale is not None and spec.scale != int(scale):
        raise InputError(f"{model} is an x{spec.scale} model but x{scale} was asked for; drop the scale "
                         f"or use an x{scale} model (shipped: {_scales_text()})")
    return ModelRestorer.open(path, backend=backend, threads=threads, tile_size=tile_size,
                              tile_overlap=tile_overlap, self_ensemble=self_ensemble)


def upscale_image(restorer, img: np.ndarray, *, max_output_mp: float | None = DEFAULT_MAX_OUTPUT_MP) -> np.ndarray:
    """``img`` (float32 H x W or H x W x 3 BGR in [0, 1]) -> (sH x sW [x 3]) float32."""
    s = restorer.spec.scale
    h, w = img.shape[:2]
    check_output_size(h, w, s, max_output_mp)
    out = restorer(img)
    if out.shape[:2] != (h * s, w * s):  # the restorer checks the graph; this guards the contract
        raise ModelError(f"model {restorer.spec.name!r} returned {out.shape[:2]}, expected {(h * s, w * s)}")
    return out


def upscale_array(restorer, img: np.ndarray, *,
                  max_output_mp: float | None = DEFAULT_MAX_OUTPUT_MP) -> np.ndarray:
    """Upscale an 8- or 16-bit ``H x W [x C]`` image (gray, BGR, either with alpha) by the
    model's scale; same dtype and channels back. Samples are converted with
    :func:`edgerestore.imageio.to_float` / :func:`~edgerestore.imageio.from_float`; alpha
    is resized bicubically. The output-size limit is checked before the model runs."""
    import cv2

    from edgerestore.denoise import check_channels, split_alpha
    from edgerestore.imageio import from_float, to_float

    check_channels(img, job="upscale")
    s = restorer.spec.scale
    h, w = img.shape[:2]
    check_output_size(h, w, s, max_output_mp)
    color, alpha = split_alpha(img)
    y = upscale_image(restorer, to_float(color), max_output_mp=None)
    # float64 in: from_float then scales and rounds without a float32 rounding first
    out = from_float(np.asarray(y, dtype=np.float64), img.dtype)
    if alpha is not None:
        a = cv2.resize(alpha, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
        out = np.concatenate([out.reshape(h * s, w * s, -1), a[:, :, None]], axis=2)
    return out
