"""edgerestore: real-time restoration of camera and video frames on edge devices.

Importing the package is cheap: no onnxruntime, torch, TensorRT, pycuda or numba.cuda
is imported until a feature that needs it is used (see ``edgerestore._lazy``).

Conventions used everywhere in the package:

* Frames at the boundary are ``numpy.uint8`` arrays, ``H x W x 3`` in BGR order (as
  OpenCV reads them) or ``H x W`` gray.
* Inside, kernels and models work on ``float32`` in ``[0, 1]``.
* Noise levels (sigma) are on the 0-255 scale, as in the literature.
"""

__version__ = "0.1.0"

from edgerestore.errors import (  # noqa: E402  (re-exported for users)
    BackendError,
    EdgeRestoreError,
    InputError,
    MissingDependencyError,
    ModelError,
)

__all__ = [
    "__version__",
    "EdgeRestoreError",
    "MissingDependencyError",
    "ModelError",
    "BackendError",
    "InputError",
]
