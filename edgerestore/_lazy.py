"""Lazy imports of optional or heavy packages.

Heavy modules (onnxruntime, torch, tensorrt, pycuda, numba.cuda) are imported on first
use through :func:`require`, never at module import time, so that ``import edgerestore``
and ``edgerestore --help`` stay fast and work on a machine without them. A missing
package raises :class:`~edgerestore.errors.MissingDependencyError` naming the package
and the pip command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from edgerestore.errors import MissingDependencyError

# module name -> (pip package, extra of edgerestore that brings it or None for the core)
KNOWN = {
    "onnxruntime": ("onnxruntime", None),
    "onnx": ("onnx", None),
    "numba": ("numba", None),
    "numba.cuda": ("numba", None),
    "cv2": ("opencv-python", None),
    "torch": ("torch", "train"),
    "tensorrt": ("tensorrt", "gpu"),
    "pycuda": ("pycuda", "gpu"),
    "pycuda.driver": ("pycuda", "gpu"),
    "skimage": ("scikit-image", "dev"),
    "bm3d": ("bm3d", "dev"),
    "ray": ("ray", "ray"),
    "av": ("av", None),
}


def install_hint(module: str) -> str:
    """The command that installs ``module``, e.g. ``pip install 'edgerestore[train]'``."""
    package, extra = KNOWN.get(module, (module.split(".")[0], None))
    if extra is None:
        return f"pip install {package}"
    return f"pip install 'edgerestore[{extra}]'  (or: pip install {package})"


def is_installed(module: str) -> bool:
    """True if ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise an error saying what needs it and how to install it.

    ``purpose`` completes the sentence "<purpose> needs <package>", e.g.
    ``"the TensorRT backend"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, _ = KNOWN.get(module, (module.split(".")[0], None))
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{package}', which is not installed "
            f"or failed to import ({exc}). Install it with: {install_hint(module)}"
        ) from exc
