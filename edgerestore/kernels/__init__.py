"""Classical restoration kernels (no training needed), Numba on the CPU and on CUDA.

Public functions, imported on first use so that ``import edgerestore.kernels`` neither
compiles nor imports numba:

* :func:`nlm` (module :mod:`~edgerestore.kernels.nonlocal_means`): non-local means;
* :func:`bm3d` and :class:`BM3DProfile` (module :mod:`~edgerestore.kernels.bm3d_filter`):
  BM3D / CBM3D;
* :func:`estimate_sigma` (module :mod:`~edgerestore.kernels.noise`): the noise level of
  an image; :func:`estimate_noise_level_function` and :class:`NoiseLevelFunction`: its
  noise level as a function of intensity (Poisson-Gaussian), with a per-pixel map;
* :class:`TemporalFilter`, :class:`RecursiveFilter` (module
  :mod:`~edgerestore.kernels.temporal`) and :func:`dis_flow` (module
  :mod:`~edgerestore.kernels.flow`): motion-compensated temporal denoising.

Each wrapper checks and converts its input (:mod:`~edgerestore.kernels.checks`), then
hands off to private compiled code (``_*_cpu.py`` with ``numba.njit``, ``_*_cuda.py``
with ``numba.cuda``). Conventions: images are float32 ``H x W`` (gray) or ``H x W x 3``
(BGR) in ``[0, 1]``; sigma is on the 0-255 scale.

The modules are named after the method (``nonlocal_means``, ``bm3d_filter``), not after
the function, so that importing one never shadows the function of the same name on this
package.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "nlm": "edgerestore.kernels.nonlocal_means",
    "bm3d": "edgerestore.kernels.bm3d_filter",
    "BM3DProfile": "edgerestore.kernels.bm3d_filter",
    "estimate_sigma": "edgerestore.kernels.noise",
    "estimate_video_sigma": "edgerestore.kernels.noise",
    "estimate_noise_level_function": "edgerestore.kernels.noise",
    "NoiseLevelFunction": "edgerestore.kernels.noise",
    "numba_threads": "edgerestore.kernels.threads",
    "run_interruptibly": "edgerestore.kernels.threads",
    "TemporalFilter": "edgerestore.kernels.temporal",
    "RecursiveFilter": "edgerestore.kernels.temporal",
    "dis_flow": "edgerestore.kernels.flow",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'edgerestore.kernels' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
