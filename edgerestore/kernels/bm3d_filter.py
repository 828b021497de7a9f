"""BM3D denoising (Dabov et al. 2007; colour as CBM3D), Numba on the CPU and on CUDA.

Usage::

    from edgerestore.kernels import bm3d
    out = bm3d(img, sigma=25)                  # both stages (hard thresholding + Wiener)
    out = bm3d(img, sigma=25, stage="hard")    # stage 1 only: faster, a little lower PSNR
    out = bm3d(img, sigma=25, device="cuda")   # numba.cuda kernels

Conventions (shared with the other kernels): ``img`` is float32/float64 ``H x W`` gray
or ``H x W x 3`` BGR on the [0, 1] scale (noise may push values past 0 and 1: they are
kept as they are); ``sigma`` is the standard deviation of the additive white Gaussian
noise on the 0-255 scale; the result is float32, same shape, clipped to [0, 1].

Algorithm, per stage, for reference blocks on a grid of ``step`` pixels (the last
row/column of blocks always included, so every pixel is covered):

* block matching: sum of squared differences to every block of a search window around
  the reference, keep up to ``group`` blocks with distance below ``tau`` (the best
  first), group size rounded down to a power of two. Stage 1 matches on the noisy image
  and compares ``d - 2 sigma^2`` (the noise's expected contribution removed) with
  ``tau``, which keeps groups full at high noise; stage 2 matches on the basic estimate;
* 3D transform: 2D block transform (stage 1 bior1.5, stage 2 DCT, as the reference
  implementation) and 1D orthonormal Haar across the group;
* stage 1 hard thresholding at ``lambda * sigma`` times the basis norms of the 2D
  transform (bior1.5 is not orthonormal: this is the exact per-coefficient noise level);
  stage 2 empirical Wiener shrinkage ``P^2 / (P^2 + mu2 sigma^2)`` with ``P`` the
  basic estimate's coefficient;
* aggregation: weighted average of all block estimates with a Kaiser window, weight
  ``1 / (noise variance left in the group)`` (hard thresholding: kept coefficients;
  Wiener: ``sigma^2 * sum W^2``).

Colour (CBM3D): BGR goes to the orthonormal opponent space (same sigma in every
channel), matching uses the luma channel only, each channel is filtered with the
luma's groups, and the result goes back to BGR.

Parameters come from :class:`BM3DProfile`: :meth:`BM3DProfile.for_sigma` gives the
defaults (the 'np' profile of the reference implementation); pass ``profile=`` to
change any of them.

Bad input raises :class:`~edgerestore.errors.InputError`: non-float or integer images
(divide 8-bit data by 255), NaN/Inf, values on another scale (outside
``kernels.checks.SCALE_LIMITS``), wrong shapes, images smaller than one block (8 x 8 by
default), sigma outside [``kernels.checks.MIN_SIGMA``, 255].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgerestore.errors import InputError
from edgerestore.kernels.checks import MIN_SIGMA, check_finite_output, check_image, check_sigma
from edgerestore.kernels.color import bgr_to_opponent, opponent_to_bgr
from edgerestore.kernels.threads import PARALLEL_CPU_KERNEL
from edgerestore.kernels.transforms import kaiser_window, row_norms, transform_matrix

STAGES = ("final", "hard")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True, kw_only=True)
class BM3DProfile:
    """BM3D parameters. Distances/thresholds use the 0-255 scale, as in the paper.

    Stage 1 (hard thresholding): ``block_ht`` (N1), ``step_ht`` (N_step), ``group_ht``
    (N2, max blocks per group, a power of two), ``window_ht`` (N_S, odd search window
    side), ``tau_ht`` (max mean squared block distance), ``lambda_ht`` (threshold in
    units of sigma), ``beta_ht`` (Kaiser beta), ``transform_ht`` ('bior1.5' or 'dct').
    ``noise_corrected_matching``: subtract the expected noise distance ``2 sigma^2``
    before comparing with ``tau_ht``.

    Stage 2 (Wiener): the same with the ``_wiener`` suffix, and ``mu2`` (Wiener
    regularisation in units of sigma^2).

    Speed/quality: larger ``step_*`` and smaller ``window_*`` are faster (``step 4-6``,
    window 25 is the 'low complexity' profile of the reference), at some cost in PSNR;
    how the defaults were chosen, with the figures: docs/bm3d.md.
    """

    block_ht: int = 8
    step_ht: int = 3
    group_ht: int = 16
    window_ht: int = 39
    tau_ht: float = 3000.0
    lambda_ht: float = 2.8
    beta_ht: float = 2.0
    transform_ht: str = "bior1.5"
    noise_corrected_matching: bool = True

    block_wiener: int = 8
    step_wiener: int = 3
    group_wiener: int = 32
    window_wiener: int = 39
    tau_wiener: float = 1000.0
    mu2: float = 0.8
    beta_wiener: float = 2.0
    transform_wiener: str = "dct"

    @classmethod
    def for_sigma(cls, sigma: float) -> "BM3DProfile":
        """Default profile for a noise level (0-255 scale)."""
        del sigma  # the defaults hold across the range tested (sigma 5-75)
        return cls()

    def replace(self, **changes) -> "BM3DProfile":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self):
        for stage in ("ht", "wiener"):
            bs = getattr(self, f"block_{stage}")
            step = getattr(self, f"step_{stage}")
            group = getattr(self, f"group_{stage}")
            window = getattr(self, f"window_{stage}")
            tr = getattr(self, f"transform_{stage}")
            if not (isinstance(bs, int) and 2 <= bs <= 32):
                raise InputError(f"block_{stage}={bs!r}: expected an int in [2, 32]")
            if not (isinstance(step, int) and 1 <= step <= bs):
                raise InputError(f"step_{stage}={step!r}: expected an int in [1, block_{stage}]")
            if not (isinstance(group, int) and 1 <= group <= 64 and group & (group - 1) == 0):
                raise InputError(f"group_{stage}={group!r}: expected a power of two in [1, 64]")
            if not (isinstance(window, int) and window >= 1 and window % 2 == 1):
                raise InputError(f"window_{stage}={window!r}: expected an odd int >= 1")
            if tr not in ("dct", "bior1.5") or (tr == "bior1.5" and bs != 8):
                raise InputError(
                    f"transform_{stage}={tr!r} with block {bs}: use 'dct' (any block size) "
                    "or 'bior1.5' (8x8 blocks only)"
                )
        for name in ("tau_ht", "lambda_ht", "tau_wiener", "mu2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"{name}={v!r}: expected a positive finite number")
        for name in ("beta_ht", "beta_wiener"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InputError(f"{name}={v!r}: expected a finite number >= 0")


@dataclass(frozen=True)
class StageParams:
    """Everything a stage kernel needs, derived from a profile and sigma ([0, 1] units)."""

    wiener: bool
    bs: int
    step: int
    ns: int  # half search window
    nmax: int
    tau: float  # SSD bound over a block, [0, 1] scale
    tf: np.ndarray  # forward 2D transform matrix (bs x bs), float64
    ti: np.ndarray  # its inverse
    thr: np.ndarray  # per-coefficient threshold (stage 1) or mu2 * var2d (stage 2)
    var2d: np.ndarray  # per-coefficient noise variance
    win: np.ndarray  # Kaiser window


def stage_params(profile: BM3DProfile, sigma255: float, wiener: bool) -> StageParams:
    """Derive the kernel parameters of one stage (shared by CPU, CUDA and the tests)."""
    s = sigma255 / 255.0
    sfx = "wiener" if wiener else "ht"
    bs = getattr(profile, f"block_{sfx}")
    tf, ti = transform_matrix(getattr(profile, f"transform_{sfx}"), bs)
    nrm = row_norms(tf)
    var2d = (s * s) * np.outer(nrm * nrm, nrm * nrm)
    tau = getattr(profile, f"tau_{sfx}") / 255.0**2 * bs * bs
    if wiener:
        thr = profile.mu2 * var2d
    else:
        thr = profile.lambda_ht * s * np.outer(nrm, nrm)
        if profile.noise_corrected_matching:
            tau += 2.0 * s * s * bs * bs
    return StageParams(
        wiener=wiener,
        bs=bs,
        step=getattr(profile, f"step_{sfx}"),
        ns=getattr(profile, f"window_{sfx}") // 2,
        nmax=getattr(profile, f"group_{sfx}"),
        tau=float(tau),
        tf=tf,
        ti=ti,
        thr=thr,
        var2d=var2d,
        win=kaiser_window(bs, getattr(profile, f"beta_{sfx}")),
    )


def reference_positions(n: int, bs: int, step: int) -> np.ndarray:
    """Top-left coordinates of reference blocks along one axis (last one always included)."""
    pos = list(range(0, n - bs + 1, step))
    if pos[-1] != n - bs:
        pos.append(n - bs)
    return np.asarray(pos, dtype=np.int64)


def _cpu_stage_args(z: np.ndarray, pilot: np.ndarray, p: StageParams) -> tuple:
    """The arguments of the compiled CPU stage kernel, in its order."""
    from numba import get_num_threads

    f32 = np.float32
    return (z, pilot, p.wiener,
            reference_positions(z.shape[1], p.bs, p.step),
            reference_positions(z.shape[2], p.bs, p.step),
            p.bs, p.ns, p.nmax, f32(p.tau),
            p.tf.astype(f32), p.ti.astype(f32), p.thr.astype(f32), p.var2d.astype(f32),
            p.win.astype(f32), get_num_threads())


def _cpu_kernels():
    """The compiled CPU module (numba is required; imported on first use)."""
    from edgerestore._lazy import require

    require("numba", purpose="the BM3D CPU kernel")
    from edgerestore.kernels import _bm3d_cpu

    return _bm3d_cpu


def run_stage(z: np.ndarray, pilot: np.ndarray, p: StageParams, device: str = "cpu") -> np.ndarray:
    """One BM3D stage on a ``C x H x W`` float32 array (channel 0 is matched on): no
    checks. ``pilot`` is ``z`` for stage 1 and the basic estimate for stage 2 (Wiener).
    Returns the stage's estimate, ``C x H x W`` float32, not clipped."""
    if device == "cuda":
        from edgerestore.kernels._bm3d_cuda import bm3d_stage_cuda

        return bm3d_stage_cuda(z, pilot, p)
    with PARALLEL_CPU_KERNEL:
        num, den = _cpu_kernels().bm3d_stage(*_cpu_stage_args(z, pilot, p))
    return (num.sum(axis=0) / den.sum(axis=0)).astype(np.float32)


def match_blocks(pilot: np.ndarray, p: StageParams) -> np.ndarray:
    """Block matching alone, on the CPU, for every reference block of a stage: the size
    of each group before rounding down to a power of two (``len(rows) x len(cols)``
    int64; at least 1, the reference itself). ``pilot``: ``H x W`` float32 in [0, 1].
    Shows how full the groups are; the benchmark also times the matching with it."""
    ry = reference_positions(pilot.shape[0], p.bs, p.step)
    rx = reference_positions(pilot.shape[1], p.bs, p.step)
    return _cpu_kernels().match_only(np.ascontiguousarray(pilot, dtype=np.float32), ry, rx,
                                     p.bs, p.ns, p.nmax, np.float32(p.tau))


def run_stage_without_aggregation(z: np.ndarray, pilot: np.ndarray, p: StageParams) -> None:
    """For profiling only (``benchmarks/bench_bm3d.py``): run a CPU stage's matching,
    3D transforms and shrinkage but skip the inverse transforms and the aggregation, so
    that ``run_stage`` minus this is the aggregation's share. Returns nothing."""
    _cpu_kernels().bm3d_stage(*_cpu_stage_args(z, pilot, p), False)


def run_stages(z: np.ndarray, sigma: float, profile: BM3DProfile, stage: str, device: str):
    """Run BM3D on a ``C x H x W`` float32 array (opponent channels; values need not lie
    in [0, 1]: the benchmark's unclipped noise protocol); no checks, no clipping."""
    basic = run_stage(z, z, stage_params(profile, sigma, wiener=False), device)
    if stage == "hard":
        return basic
    return run_stage(z, basic, stage_params(profile, sigma, wiener=True), device)


def bm3d(
    img: np.ndarray,
    sigma: float | None = None,
    *,
    stage: str = "final",
    device: str = "cpu",
    profile: BM3DProfile | None = None,
) -> np.ndarray:
    """Denoise ``img`` with BM3D (CBM3D for colour).

    Args:
        img: float32/float64 ``H x W`` (gray) or ``H x W x 3`` (BGR) on the [0, 1]
            scale (values past 0 and 1 from noise are taken as they are), at least one
            block (8 x 8 by default) in each dimension.
        sigma: noise standard deviation on the 0-255 scale, in [1e-4
            (``kernels.checks.MIN_SIGMA``), 255]. ``None`` estimates it with
            :func:`edgerestore.kernels.estimate_sigma`.
        stage: ``"final"`` (both stages, default) or ``"hard"`` (stage 1 only, the
            basic estimate: faster, a little lower PSNR).
        device: ``"cpu"`` (Numba, parallel over ``numba.get_num_threads()`` threads) or
            ``"cuda"`` (numba.cuda; needs an NVIDIA GPU, or NUMBA_ENABLE_CUDASIM=1 for
            the slow simulator).
        profile: parameters; default :meth:`BM3DProfile.for_sigma`.

    Returns:
        float32 array of the same shape, clipped to [0, 1] (the clean image it
        estimates lies there, whatever the noisy input spanned).
    """
    if stage not in STAGES:
        raise InputError(f"stage={stage!r}; available: {', '.join(map(repr, STAGES))}")
    if device not in DEVICES:
        raise InputError(f"device={device!r}; available: {', '.join(map(repr, DEVICES))}")
    if profile is not None and not isinstance(profile, BM3DProfile):
        raise InputError(
            f"profile must be a BM3DProfile, got {type(profile).__name__}; "
            "build one with BM3DProfile.for_sigma(sigma).replace(...)"
        )
    min_block = 8 if profile is None else max(profile.block_ht, profile.block_wiener)
    x = check_image(img, min_size=min_block)
    if sigma is None:
        from edgerestore.kernels.noise import estimate_sigma

        sigma = estimate_sigma(x)
        if not sigma >= MIN_SIGMA:
            # A noise-free (e.g. constant) image: nothing to remove.
            return np.clip(x, 0.0, 1.0)
    s = check_sigma(sigma)
    if profile is None:
        profile = BM3DProfile.for_sigma(s)
    if x.ndim == 2:
        z = x[None]
    else:
        z = np.ascontiguousarray(bgr_to_opponent(x).transpose(2, 0, 1))
    out = run_stages(np.ascontiguousarray(z, dtype=np.float32), s, profile, stage, device)
    if x.ndim == 2:
        res = out[0]
    else:
        res = opponent_to_bgr(np.ascontiguousarray(out.transpose(1, 2, 0)))
    return check_finite_output(np.clip(res, 0.0, 1.0).astype(np.float32, copy=False), "bm3d")
