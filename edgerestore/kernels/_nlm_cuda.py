"""Non-local means on NVIDIA GPUs with ``numba.cuda``.

Private: users call :func:`edgerestore.kernels.nlm` with ``device="cuda"``.

Same algorithm and weights as ``_nlm_cpu`` (see there). One thread per output pixel,
one block per 16x16 TILE. For each search offset the block computes the per-pixel
squared differences ``D_o`` of its TILE plus a patch-radius halo into shared memory,
box-sums them vertically into a second shared array, and each thread finishes its own
patch sum horizontally: the per-offset SSD image is computed once per TILE and shared
between the overlapping patches, as the CPU's running sums do. Patches up to 15x15
(the shared arrays are sized for that). Checked under ``NUMBA_ENABLE_CUDASIM=1`` on tiny
inputs; real-GPU timings come from ``benchmarks/bench_nlm.py --cuda``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import BackendError

# numba.cuda is imported on first use (`_load`), not with this module. The kernel must
# see `cuda` as a module global: the CUDA simulator swaps it there for its fake module.
cuda = None
float32 = None

TILE = 16
F_MAX = 7  # patch half-size the shared arrays allow (patch 15x15)
_SH = TILE + 2 * F_MAX
T_CUT = 10.0  # same cut-off as the CPU kernel
_T_CUT32 = np.float32(T_CUT)
_ZERO = np.float32(0.0)


def _load():
    global cuda, float32
    if cuda is None:
        cuda = require("numba.cuda", purpose="nlm(device='cuda')")
        from numba import float32 as f32

        float32 = f32
    return cuda


def check_available() -> None:
    """Raise :class:`BackendError` unless numba.cuda can run kernels here."""
    _load()
    try:
        ok = cuda.is_available()
    except Exception as exc:  # driver present but broken
        raise BackendError(f"nlm(device='cuda'): CUDA is not usable here ({exc}); use device='cpu'") from exc
    if not ok:
        raise BackendError(
            "nlm(device='cuda') needs an NVIDIA GPU with a working CUDA driver, and numba.cuda "
            "found none. Use device='cpu' (the default), or set NUMBA_ENABLE_CUDASIM=1 to run "
            "the (very slow) CUDA simulator for testing."
        )


@functools.lru_cache(maxsize=None)
def _kernel():
    return _load().jit(cache=True)(_nlm_tile)


def _nlm_tile(P, out, H, W, f, r, inv_nc, two_sig2, inv_h2):
    d_s = cuda.shared.array((_SH, _SH), float32)
    v_s = cuda.shared.array((TILE, _SH), float32)
    num = cuda.local.array(3, float32)
    den = cuda.local.array(3, float32)
    C = P.shape[0]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    x0 = cuda.blockIdx.x * TILE
    y0 = cuda.blockIdx.y * TILE
    x = x0 + tx
    y = y0 + ty
    pw = 2 * f + 1
    tw = TILE + 2 * f
    for c in range(C):
        num[c] = _ZERO
        den[c] = _ZERO
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # D_o over the TILE and its halo (row ly of the halo is output row y0+ly-f).
            i = tid
            while i < tw * tw:
                ly = i // tw
                lx = i - ly * tw
                py = y0 + ly + r
                px = x0 + lx + r
                acc = _ZERO
                for c in range(C):
                    dd = P[c, py, px] - P[c, py + dy, px + dx]
                    acc += dd * dd
                d_s[ly, lx] = acc
                i += TILE * TILE
            cuda.syncthreads()
            i = tid
            while i < TILE * tw:
                ly = i // tw
                lx = i - ly * tw
                s = _ZERO
                for k in range(pw):
                    s += d_s[ly + k, lx]
                v_s[ly, lx] = s
                i += TILE * TILE
            cuda.syncthreads()
            s = _ZERO
            for k in range(pw):
                s += v_s[ty, tx + k]
            t0 = max(s * inv_nc - two_sig2, _ZERO)
            for c in range(C):
                t = t0 * inv_h2[c]
                if t < _T_CUT32:
                    w = math.exp(-t)
                    den[c] += w
                    num[c] += w * P[c, y + r + f + dy, x + r + f + dx]
            cuda.syncthreads()  # d_s / v_s are overwritten by the next offset
    if y < H and x < W:
        for c in range(C):
            out[c, y, x] = num[c] / den[c]


def nlm_planes(planes: np.ndarray, f: int, r: int, inv_nc, two_sig2, inv_h2) -> np.ndarray:
    """NLM of ``C x H x W`` float32 planes on the GPU; returns ``C x H x W`` float32 (host)."""
    if f > F_MAX:
        raise BackendError(f"the CUDA NLM kernel takes patches up to {2 * F_MAX + 1}, got {2 * f + 1}")
    check_available()
    C, H, W = planes.shape
    pad = r + f
    Hc = -(-H // TILE) * TILE
    Wc = -(-W // TILE) * TILE
    padded = np.pad(planes, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    # Whole tiles: extra rows/columns only ever feed output pixels that are cropped away.
    padded = np.pad(padded, ((0, 0), (0, Hc - H), (0, Wc - W)), mode="edge")
    d_in = cuda.to_device(np.ascontiguousarray(padded, dtype=np.float32))
    d_out = cuda.device_array((C, Hc, Wc), dtype=np.float32)
    d_h = cuda.to_device(np.asarray(inv_h2, dtype=np.float32))
    grid = (Wc // TILE, Hc // TILE)
    _kernel()[grid, (TILE, TILE)](d_in, d_out, H, W, f, r, np.float32(inv_nc),
                                   np.float32(two_sig2), d_h)
    return d_out.copy_to_host()[:, :H, :W]
