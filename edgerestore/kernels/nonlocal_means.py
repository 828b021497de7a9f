"""Non-local means denoising (Buades, Coll & Morel), Numba on the CPU and on CUDA.

Public wrapper: :func:`nlm`. It checks the input, picks the aggregation (patchwise or
pixelwise) and the parameters for the noise level, converts colour images to a
decorrelated (opponent) space, pads, and hands off to ``_nlm_cpu`` or ``_nlm_cuda``. See ``docs/kernels.md`` for the
algorithm and the benchmark figures. ``from edgerestore.kernels import nlm`` is the usual
way in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgerestore.errors import InputError
from edgerestore.kernels.checks import MAX_SIGMA, MIN_SIGMA, check_finite_output, check_image, check_sigma
from edgerestore.kernels.threads import PARALLEL_CPU_KERNEL

log = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda")
AGGREGATIONS = ("patch", "pixel")
MAX_PATCH_SIZE = 15  # the CUDA kernel's shared-memory tile is sized for this
MAX_SEARCH_SIZE = 101
MIN_IMAGE_SIZE = 3


@dataclass(frozen=True)
class NLMParams:
    """Parameters of one NLM run; sizes in pixels, ``h`` and ``sigma`` on the 0-255 scale."""

    patch_size: int
    search_size: int
    h: float
    h_chroma: float | None
    sigma: float
    aggregation: str = "pixel"
    sigma_map: np.ndarray | None = None  # float64 H x W when nlm() got a per-pixel sigma


# Defaults per noise level, one table per aggregation: the sigma bands of Buades, Coll &
# Morel, IPOL 2011 (https://doi.org/10.5201/ipol.2011.bcm_nlm), patch sizes and h factors
# tuned on Set12 / Set5 and checked on BSD68 / Set14; search window 21x21. How each value
# was chosen, with the figures: docs/kernels.md, "Defaults per noise level".
# Rows: (sigma upper bound, patch size, search size, h / sigma, h_chroma / h).
_GRAY_TABLE = (  # pixelwise
    (15.0, 3, 21, 0.85, None),
    (30.0, 5, 21, 0.65, None),
    (45.0, 5, 21, 0.55, None),
    (75.0, 7, 21, 0.33, None),
    (float("inf"), 7, 21, 0.30, None),  # beyond the tuned range: extrapolated
)
# Patchwise. Above sigma 45 the best h is small: the weights are then close to a hard
# threshold on the patch distance at 2 sigma**2, the noise's own expected distance.
_GRAY_PATCH_TABLE = (
    (15.0, 3, 21, 0.85, None),
    (30.0, 5, 21, 0.60, None),
    (45.0, 7, 21, 0.40, None),
    (75.0, 7, 21, 0.10, None),
    (float("inf"), 7, 21, 0.10, None),  # beyond the tuned range: extrapolated
)
_COLOR_TABLE = (  # pixelwise
    (25.0, 3, 21, 0.50, 2.0),
    (55.0, 5, 21, 0.40, 1.5),
    (float("inf"), 5, 21, 0.35, 1.5),  # beyond the tuned range: extrapolated
)
_COLOR_PATCH_TABLE = (  # patchwise
    (25.0, 3, 21, 0.35, 2.5),
    (55.0, 3, 21, 0.20, 2.5),
    (float("inf"), 3, 21, 0.20, 2.5),  # beyond the tuned range: extrapolated
)
# The aggregation used when none is given: patchwise for gray (better, for less than twice
# the time), pixelwise for colour (what the video pipelines run; patchwise costs ~3x
# there). The measurements: docs/kernels.md, "Which aggregation by default".
DEFAULT_AGGREGATION = {"gray": "patch", "color": "pixel"}


def default_aggregation(*, color: bool) -> str:
    """The aggregation :func:`nlm` uses for gray or colour images when none is given."""
    return DEFAULT_AGGREGATION["color" if color else "gray"]


def default_params(sigma: float, *, color: bool,
                   aggregation: str | None = None) -> tuple[int, int, float, float | None]:
    """``(patch_size, search_size, h, h_chroma)`` for noise level ``sigma`` (0-255 scale).

    ``aggregation``: ``"patch"`` or ``"pixel"``; ``None``: :func:`default_aggregation`.
    ``h_chroma`` is ``None`` for gray. Colour: chrominance is filtered harder than
    luminance (its signal is weaker, its noise as strong: the same sigma in every
    channel of an orthonormal space).
    """
    agg = default_aggregation(color=color) if aggregation is None else aggregation
    if agg not in AGGREGATIONS:
        raise InputError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")
    if color:
        table = _COLOR_PATCH_TABLE if agg == "patch" else _COLOR_TABLE
    else:
        table = _GRAY_PATCH_TABLE if agg == "patch" else _GRAY_TABLE
    for upper, patch, search, factor, ratio in table:
        if sigma <= upper:
            h = factor * sigma
            return patch, search, h, (None if ratio is None else ratio * h)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_odd(value, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an odd integer (pixels), got {value!r}")
    v = int(value)
    if v < 1 or v % 2 == 0 or v > upper:
        raise InputError(f"{name} must be an odd integer in [1, {upper}], got {v}")
    return v


def _check_h(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number (0-255 scale), got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be > 0 on the 0-255 scale, got {value!r}")
    return v


def check_sigma_map(sigma, shape: tuple[int, int]) -> np.ndarray:
    """Validate a per-pixel noise level: an ``H x W`` array (0-255 scale) matching the
    image's ``shape``, finite, every value in [``MIN_SIGMA``, 255]. Returns it as float64."""
    m = np.asarray(sigma)
    if m.ndim != 2 or m.shape != tuple(shape):
        raise InputError(f"a per-pixel sigma must be an H x W array matching the image ({shape[0]} x "
                         f"{shape[1]}), got shape {m.shape}; pass one number for one noise level")
    if m.dtype.kind not in "fiu":
        raise InputError(f"a per-pixel sigma must hold numbers (0-255 scale), got dtype {m.dtype}")
    m = m.astype(np.float64)
    if not np.isfinite(m).all():
        raise InputError("the per-pixel sigma holds NaN or Inf; every pixel needs a noise level (0-255 scale)")
    lo, hi = float(m.min()), float(m.max())
    if lo < MIN_SIGMA or hi > MAX_SIGMA:
        raise InputError(f"the per-pixel sigma must lie in [{MIN_SIGMA:g}, {MAX_SIGMA:g}] (0-255 scale), "
                         f"got values from {lo:g} to {hi:g}; clip the map (e.g. np.clip(map, 0.5, 255))")
    return m


def resolve_params(img: np.ndarray, sigma, patch_size, search_size, h, h_chroma,
                   aggregation=None) -> NLMParams:
    """Fill in defaults for the noise level and validate every option (no heavy work).

    ``sigma``: a number, None (estimated) or an ``H x W`` map; for a map the parameters
    are those of its median (``NLMParams.sigma``) and the map is kept in ``sigma_map``.
    """
    color = img.ndim == 3
    if aggregation is None:
        aggregation = default_aggregation(color=color)
    elif aggregation not in AGGREGATIONS:
        raise InputError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")
    sigma_map = None
    if isinstance(sigma, np.ndarray) and sigma.ndim > 0:
        sigma_map = check_sigma_map(sigma, img.shape[:2])
        sigma = float(np.median(sigma_map))
    elif sigma is None:
        from edgerestore.kernels.noise import estimate_sigma

        sigma = estimate_sigma(img)
        log.info("nlm: estimated sigma %.2f (0-255 scale)", sigma)
        sigma = max(sigma, 0.01)  # a noise-free image: weights from h alone
    else:
        sigma = check_sigma(sigma)
    dpatch, dsearch, dh, dhc = default_params(sigma, color=color, aggregation=aggregation)
    patch = dpatch if patch_size is None else _check_odd(patch_size, "patch_size", MAX_PATCH_SIZE)
    search = dsearch if search_size is None else _check_odd(search_size, "search_size", MAX_SEARCH_SIZE)
    hh = dh if h is None else _check_h(h, "h")
    if h_chroma is not None and not color:
        raise InputError("h_chroma applies to colour (H x W x 3) images only; use h for gray")
    hc = None
    if color:
        hc = dhc * hh / dh if h_chroma is None else _check_h(h_chroma, "h_chroma")
    return NLMParams(patch_size=patch, search_size=search, h=hh, h_chroma=hc, sigma=sigma,
                     aggregation=aggregation, sigma_map=sigma_map)


def nlm(
    img: np.ndarray,
    sigma: float | np.ndarray | None = None,
    *,
    patch_size: int | None = None,
    search_size: int | None = None,
    h: float | None = None,
    h_chroma: float | None = None,
    aggregation: str | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Denoise an image with non-local means.

    The weight of pixel ``q`` for pixel ``p`` is ``exp(-max(d2 - 2 sigma**2, 0) / h**2)``,
    where ``d2`` is the mean squared difference between the ``patch_size`` patches
    around ``p`` and ``q`` (over all channels), on the 0-255 scale; weights below
    ``exp(-10)`` are dropped, ``q`` ranges over a ``search_size`` square around ``p``.
    Borders are mirrored (OpenCV's ``BORDER_REFLECT_101``).

    * ``aggregation="pixel"`` (OpenCV's and scikit-image's NLM): each pixel becomes the
      weighted mean of the pixels ``q`` of its search window.
    * ``aggregation="patch"`` (Buades, Coll & Morel, IPOL 2011): each pixel ``p``
      estimates its whole patch, ``E_p(p + k) = sum_q w(p, q) I(q + k) / sum_q w(p, q)``
      over the ``q`` of its window inside the image, and each output pixel is the mean
      of the estimates of all the patches that contain it.

    Parameters
    ----------
    img:
        float32 or float64, ``H x W`` (gray) or ``H x W x 3`` (BGR), on the [0, 1]
        scale, at least 3x3 pixels. Noise may push values past 0 and 1 (an unclipped
        noisy image): any finite values in ``kernels.checks.SCALE_LIMITS`` are taken
        as they are. Integer images are refused: pass ``img / 255``.
    sigma:
        Standard deviation of the Gaussian noise on the 0-255 scale, in
        [``kernels.checks.MIN_SIGMA`` (1e-4), 255].
        ``None`` estimates it with :func:`edgerestore.kernels.estimate_sigma`.
        An ``H x W`` array gives a noise level per pixel (e.g. the residual noise left by
        a temporal average, or a signal-dependent level): the weight ``w(p, q)`` then
        uses ``sigma_p`` in ``2 sigma**2`` and the strength ``h_p = h * sigma_p /
        sigma_ref`` of its reference pixel ``p`` (chrominance likewise), where
        ``sigma_ref`` is the map's median; the patch and search sizes and ``h`` (the
        strength at ``sigma_ref``) come from ``sigma_ref`` as for one number. A constant
        map gives the result of that number. Patchwise, a map costs a second ``exp``
        per pair (the two weights of a pair differ).
    patch_size, search_size:
        Odd sizes in pixels of the compared patches (<= 15) and of the search window
        (<= 101). Default: from ``sigma`` and the aggregation (IPOL 2011 noise bands,
        re-tuned), e.g. 5 and 21 for gray at sigma 25; see :func:`default_params`.
    h:
        Filtering strength on the 0-255 scale (larger: smoother). Default from the same
        table (``0.1 .. 0.85 x sigma``). For colour, ``h`` applies to the luminance
        channel. With a sigma map: the strength at the map's median (scaled per pixel).
    h_chroma:
        Colour only: strength for the two chrominance channels. Default
        ``1.5 .. 2.5 x h`` (from the table, scaled with ``h`` when ``h`` is given).
        Colour images are filtered in the orthonormal opponent space of
        :mod:`edgerestore.kernels.color`: patch distances use all three channels (so
        they equal BGR distances), each channel is averaged with its own ``h``.
    aggregation:
        ``"patch"`` or ``"pixel"`` (see above). Default :func:`default_aggregation`:
        ``"patch"`` for gray, ``"pixel"`` for colour (the trade-offs, measured:
        docs/kernels.md).
    device:
        ``"cpu"`` (Numba, all cores; ``NUMBA_NUM_THREADS`` limits them) or ``"cuda"``
        (numba.cuda; same result within 1e-4).

    Returns
    -------
    float32 array of the same shape, clipped to [0, 1] (the clean image it estimates
    lies there, whatever the noisy input spanned).

    Raises
    ------
    InputError
        Bad image (dtype, shape, size, NaN/Inf, range), sigma, sizes, h or aggregation.
    BackendError
        ``device="cuda"`` without a usable GPU.
    """
    x = check_image(img, what="nlm input", min_size=MIN_IMAGE_SIZE)
    if device not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    p = resolve_params(x, sigma, patch_size, search_size, h, h_chroma, aggregation)
    log.debug("nlm: %s", p)
    return check_finite_output(_run(x, p, device), "nlm")


def _run(x: np.ndarray, p: NLMParams, device: str) -> np.ndarray:
    """Denoise a checked float32 image with resolved parameters."""
    color = x.ndim == 3
    if color:
        from edgerestore.kernels.color import bgr_to_opponent

        # The transforms run in float64 (a few ms per frame), so a round trip is exact
        # to float32 precision.
        planes = np.ascontiguousarray(bgr_to_opponent(x.astype(np.float64)).transpose(2, 0, 1),
                                      dtype=np.float32)
        hs = [p.h, p.h_chroma, p.h_chroma]
    else:
        planes = x[None]
        hs = [p.h]
    f, r = p.patch_size // 2, p.search_size // 2
    H, W = x.shape[:2]
    inv_nc = np.float32(1.0 / (p.patch_size**2 * planes.shape[0]))
    two_sig2, h_scale = noise_terms(p)
    inv_h2 = np.array([(255.0 / hv) ** 2 for hv in hs], dtype=np.float32)
    patchwise = p.aggregation == "patch"
    if device == "cuda":
        from edgerestore.kernels import _nlm_cuda

        run = _nlm_cuda.nlm_patch_planes if patchwise else _nlm_cuda.nlm_planes
        out = run(planes, f, r, inv_nc, two_sig2, inv_h2, h_scale)
    else:
        from edgerestore.kernels import _nlm_cpu

        pad = r + f
        padded = np.pad(planes, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        run = _nlm_cpu.nlm_patch_planes if patchwise else _nlm_cpu.nlm_planes
        with PARALLEL_CPU_KERNEL:
            out = run(padded, H, W, f, r, inv_nc, two_sig2, inv_h2, h_scale, _block_rows(H, patchwise))
    if color:
        from edgerestore.kernels.color import opponent_to_bgr

        res = opponent_to_bgr(out.transpose(1, 2, 0).astype(np.float64))
        return np.clip(res, 0.0, 1.0, out=res).astype(np.float32, copy=False)
    return np.clip(out[0], 0.0, 1.0)  # float32 rounding can step past 1 by an ulp


def noise_terms(p: NLMParams) -> tuple:
    """``(2 sigma**2, h_scale)`` on the [0, 1] scale as the kernels take them: float32
    scalars for one noise level (``h_scale`` 1), or ``H x W`` float32 maps for a
    per-pixel sigma, ``h_scale = (sigma_ref / sigma_p)**2`` so that ``inv_h2[c] * h_scale``
    is ``1 / h_c,p**2`` with ``h_c,p = h_c sigma_p / sigma_ref``. A constant map gives
    the scalar values exactly (the same float64 arithmetic, then rounded once)."""
    if p.sigma_map is None:
        sig = p.sigma / 255.0
        return np.float32(2.0 * sig * sig), np.float32(1.0)
    sig = p.sigma_map / 255.0
    two_sig2 = np.ascontiguousarray(2.0 * sig * sig, dtype=np.float32)
    h_scale = np.ascontiguousarray((p.sigma / p.sigma_map) ** 2, dtype=np.float32)
    return two_sig2, h_scale


def _block_rows(H: int, patchwise: bool) -> int:
    """Rows per parallel task: big enough to amortise the start-up rows of the running
    sums (and, patchwise, the halo rows), small enough for ~4 tasks per thread."""
    import numba

    cap = 64 if patchwise else 32
    per_task = H // (4 * numba.get_num_threads())
    return max(1, min(H, cap, max(16, per_task)))


__all__ = ["nlm", "NLMParams", "default_params", "default_aggregation", "AGGREGATIONS"]
