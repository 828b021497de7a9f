"""Classical restoration kernels (no training needed), Numba on the CPU and on CUDA.

Public wrappers check and convert their inputs, then hand off to private compiled code
(``_*_cpu.py`` with ``numba.njit``, ``_*_cuda.py`` with ``numba.cuda``). Conventions:
images are float32 ``H x W`` (gray) or ``H x W x 3`` (BGR) in ``[0, 1]``; sigma is on the
0-255 scale. Submodules are imported on first use so that importing this package does
not compile or import numba.
"""

from __future__ import annotations

import importlib
import sys
import types

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


class _Package(types.ModuleType):
    """Keeps ``kernels.nlm`` the function when the submodule of the same name is imported.

    Importing ``edgerestore.kernels.nlm`` makes the import system bind the submodule as an
    attribute of this package, which would shadow the lazily exported function (so
    ``from edgerestore.kernels import nlm`` would return a module). Those bindings are
    dropped; the submodules stay reachable as ``from edgerestore.kernels.nlm import ...``.
    """

    def __setattr__(self, name, value):
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
