"""Non-local means on NVIDIA GPUs with ``numba.cuda``.

Private: users call :func:`edgerestore.kernels.nlm` with ``device="cuda"``.

Same algorithms and weights as ``_nlm_cpu`` (see there); pixelwise below, patchwise
(:func:`nlm_patch_planes`) in its own section. One thread per output pixel,
one block per 16x16 TILE. For each search offset the block computes the per-pixel
squared differences ``D_o`` of its TILE plus a patch-radius halo into shared memory,
box-sums them vertically into a second shared array, and each thread finishes its own
patch sum horizontally: the per-offset SSD image is computed once per TILE and shared
between the overlapping patches, as the CPU's running sums do. Patches up to 15x15
(the shared arrays are sized for that). ``2 sigma**2`` and the factor on ``1 / h**2``
are per-pixel maps on the device (a scalar noise level becomes a constant map; the
weight ``w(p, q)`` takes the values at the reference pixel ``p``). Checked under ``NUMBA_ENABLE_CUDASIM=1`` on tiny
inputs; real-GPU timings come from ``benchmarks/bench_nlm.py`` (a CUDA table when
numba.cuda sees a GPU).
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


_offset_ssd = None  # the device function below, compiled on first use (`_device_functions`)


def _offset_ssd_tile(P, d_s, v_s, tid, py0, px0, dy, dx, dh, dw, vh, pw):
    """Block-wide (every thread of the block calls it): for one search offset (dy, dx),
    ``d_s[ly, lx]`` = squared difference summed over channels between padded pixel
    (py0 + ly, px0 + lx) and its offset twin, over a ``dh x dw`` region; then the
    vertical patch sums ``v_s[ly, lx] = sum_{k < pw} d_s[ly + k, lx]`` over ``vh x dw``.
    Each kernel finishes the horizontal sums itself."""
    C = P.shape[0]
    i = tid
    while i < dh * dw:
        ly = i // dw
        lx = i - ly * dw
        py = py0 + ly
        px = px0 + lx
        a = _ZERO
        for c in range(C):
            dd = P[c, py, px] - P[c, py + dy, px + dx]
            a += dd * dd
        d_s[ly, lx] = a
        i += TILE * TILE
    cuda.syncthreads()
    i = tid
    while i < vh * dw:
        ly = i // dw
        lx = i - ly * dw
        s = _ZERO
        for k in range(pw):
            s += d_s[ly + k, lx]
        v_s[ly, lx] = s
        i += TILE * TILE
    cuda.syncthreads()


def _device_functions() -> None:
    global _offset_ssd
    if _offset_ssd is None:
        _offset_ssd = _load().jit(device=True)(_offset_ssd_tile)


@functools.lru_cache(maxsize=None)
def _kernel():
    _device_functions()
    return _load().jit(cache=True)(_nlm_tile)


@functools.lru_cache(maxsize=None)
def _patch_kernels():
    _device_functions()
    jit = _load().jit(cache=True)
    return jit(_csum_tile), jit(_patch_tile)


def _nlm_tile(P, out, H, W, f, r, inv_nc, s2_map, hs_map, inv_h2):
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
    two_sig2 = s2_map[y, x]
    hsc = hs_map[y, x]
    for c in range(C):
        num[c] = _ZERO
        den[c] = _ZERO
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # D_o over the TILE and its halo (row ly of the halo is output row y0+ly-f).
            _offset_ssd(P, d_s, v_s, tid, y0 + r, x0 + r, dy, dx, tw, tw, TILE, pw)
            s = _ZERO
            for k in range(pw):
                s += v_s[ty, tx + k]
            t0 = max(s * inv_nc - two_sig2, _ZERO)
            for c in range(C):
                t = t0 * (inv_h2[c] * hsc)
                if t < _T_CUT32:
                    w = math.exp(-t)
                    den[c] += w
                    num[c] += w * P[c, y + r + f + dy, x + r + f + dx]
            cuda.syncthreads()  # d_s / v_s are overwritten by the next offset
    if y < H and x < W:
        for c in range(C):
            out[c, y, x] = num[c] / den[c]


# --- patchwise aggregation (see _nlm_cpu: the same definition) ------------------------------
#
# Two kernels, gathers only (no symmetric pairs: every thread owns its output pixel).
# 1. _csum_tile: C_c(p) = sum_o w_c(p, p + o) over the offsets whose p + o lies inside
#    the image; the same shared-memory tiles as _nlm_tile.
# 2. _patch_tile: per offset, the tile's centres p (the output tile and f pixels around
#    it) get W_o(p) / C(p) (0 where p or p + o lies outside the image), which is
#    box-summed over the patch: out(x) = sum_o I(x + o) box(W_o / C)(x) / N(x).
# The image is padded by r + 2f: centres lie up to f outside the tile, their patches
# another f.

_SH2 = TILE + 4 * F_MAX  # D_o over the centres and their patches
_SC = TILE + 2 * F_MAX  # the centres around a tile


def _csum_tile(P, csum, H, W, f, r, inv_nc, s2_map, hs_map, inv_h2):
    d_s = cuda.shared.array((_SH, _SH), float32)
    v_s = cuda.shared.array((TILE, _SH), float32)
    acc = cuda.local.array(3, float32)
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
    off = r + f  # P is padded by r + 2f; patch row 0 of output row y is padded row y + off
    two_sig2 = s2_map[y, x]
    hsc = hs_map[y, x]
    for c in range(C):
        acc[c] = _ZERO
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            _offset_ssd(P, d_s, v_s, tid, y0 + off, x0 + off, dy, dx, tw, tw, TILE, pw)
            if 0 <= y + dy < H and 0 <= x + dx < W:
                s = _ZERO
                for k in range(pw):
                    s += v_s[ty, tx + k]
                t0 = max(s * inv_nc - two_sig2, _ZERO)
                for c in range(C):
                    t = t0 * (inv_h2[c] * hsc)
                    if t < _T_CUT32:
                        acc[c] += math.exp(-t)
            cuda.syncthreads()
    if y < H and x < W:
        for c in range(C):
            csum[c, y, x] = acc[c]


def _patch_tile(P, inv_c, out, H, W, f, r, inv_nc, s2_map, hs_map, inv_h2):
    d_s = cuda.shared.array((_SH2, _SH2), float32)
    v_s = cuda.shared.array((_SC, _SH2), float32)
    a_s = cuda.shared.array((3, _SC, _SC), float32)
    b_s = cuda.shared.array((3, TILE, _SC), float32)
    num = cuda.local.array(3, float32)
    C = P.shape[0]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    tid = ty * TILE + tx
    x0 = cuda.blockIdx.x * TILE
    y0 = cuda.blockIdx.y * TILE
    x = x0 + tx
    y = y0 + ty
    pw = 2 * f + 1
    cw = TILE + 2 * f  # centres: image rows/columns y0 - f .. y0 + TILE + f - 1
    dw = TILE + 4 * f  # their patches: from y0 - 2f
    pad = r + 2 * f
    for c in range(C):
        num[c] = _ZERO
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            _offset_ssd(P, d_s, v_s, tid, y0 - 2 * f + pad, x0 - 2 * f + pad, dy, dx, dw, dw, cw, pw)
            i = tid
            while i < cw * cw:
                ly = i // cw
                lx = i - ly * cw
                cy = y0 - f + ly
                cx = x0 - f + lx
                if 0 <= cy < H and 0 <= cx < W and 0 <= cy + dy < H and 0 <= cx + dx < W:
                    s = _ZERO
                    for k in range(pw):
                        s += v_s[ly, lx + k]
                    t0 = max(s * inv_nc - s2_map[cy, cx], _ZERO)
                    hsc = hs_map[cy, cx]
                    for c in range(C):
                        t = t0 * (inv_h2[c] * hsc)
                        w = _ZERO
                        if t < _T_CUT32:
                            w = math.exp(-t)
                        a_s[c, ly, lx] = w * inv_c[c, cy, cx]
                else:
                    for c in range(C):
                        a_s[c, ly, lx] = _ZERO
                i += TILE * TILE
            cuda.syncthreads()
            i = tid
            while i < TILE * cw:
                ly = i // cw
                lx = i - ly * cw
                for c in range(C):
                    s = _ZERO
                    for k in range(pw):
                        s += a_s[c, ly + k, lx]
                    b_s[c, ly, lx] = s
                i += TILE * TILE
            cuda.syncthreads()
            for c in range(C):
                s = _ZERO
                for k in range(pw):
                    s += b_s[c, ty, tx + k]
                num[c] += s * P[c, y + pad + dy, x + pad + dx]
            cuda.syncthreads()  # the shared arrays are overwritten by the next offset
    if y < H and x < W:
        ny = min(y + f, H - 1) - max(y - f, 0) + 1
        nx = min(x + f, W - 1) - max(x - f, 0) + 1
        for c in range(C):
            out[c, y, x] = num[c] / (ny * nx)


def _device_map(value, Hc: int, Wc: int):
    """A per-pixel term (float32 scalar or ``H x W`` map) as an ``Hc x Wc`` device array
    (whole tiles: the extra rows and columns repeat the edge and are cropped away)."""
    if np.ndim(value) == 0:
        m = np.full((Hc, Wc), value, dtype=np.float32)
    else:
        H, W = value.shape
        m = np.pad(np.asarray(value, np.float32), ((0, Hc - H), (0, Wc - W)), mode="edge")
    return cuda.to_device(np.ascontiguousarray(m))


def nlm_patch_planes(planes: np.ndarray, f: int, r: int, inv_nc, two_sig2, inv_h2, h_scale) -> np.ndarray:
    """Patchwise NLM of ``C x H x W`` float32 planes on the GPU; ``C x H x W`` float32 (host).

    ``two_sig2``, ``h_scale``: float32 scalars or ``H x W`` maps (as ``_nlm_cpu``)."""
    if f > F_MAX:
        raise BackendError(f"the CUDA NLM kernel takes patches up to {2 * F_MAX + 1}, got {2 * f + 1}")
    check_available()
    C, H, W = planes.shape
    pad = r + 2 * f
    Hc = -(-H // TILE) * TILE
    Wc = -(-W // TILE) * TILE
    padded = np.pad(planes, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    padded = np.pad(padded, ((0, 0), (0, Hc - H), (0, Wc - W)), mode="edge")
    csum_k, patch_k = _patch_kernels()
    d_in = cuda.to_device(np.ascontiguousarray(padded, dtype=np.float32))
    d_c = cuda.device_array((C, Hc, Wc), dtype=np.float32)
    d_out = cuda.device_array((C, Hc, Wc), dtype=np.float32)
    d_h = cuda.to_device(np.asarray(inv_h2, dtype=np.float32))
    grid = (Wc // TILE, Hc // TILE)
    args = (H, W, f, r, np.float32(inv_nc), _device_map(two_sig2, Hc, Wc), _device_map(h_scale, Hc, Wc), d_h)
    csum_k[grid, (TILE, TILE)](d_in, d_c, *args)
    # 1 / C on the host side of the algorithm's definition: C >= 1 inside the image,
    # and the padding of whole tiles (never a valid centre) is set to 1 to stay finite.
    inv = d_c.copy_to_host()
    inv[:, H:, :] = 1.0
    inv[:, :, W:] = 1.0
    d_inv = cuda.to_device(np.ascontiguousarray(1.0 / inv, dtype=np.float32))
    patch_k[grid, (TILE, TILE)](d_in, d_inv, d_out, *args)
    return d_out.copy_to_host()[:, :H, :W]


def nlm_planes(planes: np.ndarray, f: int, r: int, inv_nc, two_sig2, inv_h2, h_scale) -> np.ndarray:
    """NLM of ``C x H x W`` float32 planes on the GPU; returns ``C x H x W`` float32 (host).

    ``two_sig2``, ``h_scale``: float32 scalars or ``H x W`` maps (as ``_nlm_cpu``)."""
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
                                   _device_map(two_sig2, Hc, Wc), _device_map(h_scale, Hc, Wc), d_h)
    return d_out.copy_to_host()[:, :H, :W]
