"""Classical restoration kernels (no training needed), Numba on the CPU and on CUDA.

Public wrappers check and convert their inputs, then hand off to private compiled code
(``_*_cpu.py`` with ``numba.njit``, ``_*_cuda.py`` with ``numba.cuda``). Conventions:
images are float32 ``H x W`` (gray) or ``H x W x 3`` (BGR) in ``[0, 1]``; sigma is on the
0-255 scale. Submodules are imported on first use so that importing this package does
not compile or import numba.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "nlm": "edgerestore.kernels.nlm",
    "estimate_sigma": "edgerestore.kernels.noise",
    "bm3d": "edgerestore.kernels.bm3d",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgerestore.kernels' has no attribute {name!r}")
