"""TensorRT backend: engines built from ONNX files (cached), run with pycuda buffers.

* :mod:`~edgerestore.backends.tensorrt.loader`: :class:`EngineBytesFromOnnx` (ONNX ->
  serialized engine through the engine cache), built from
  :mod:`~edgerestore.backends.tensorrt.profile` (optimisation profiles from metadata),
  :mod:`~edgerestore.backends.tensorrt.precision` (precision and network typing),
  :mod:`~edgerestore.backends.tensorrt.cache` (cache keys, folder, atomic writes) and
  :mod:`~edgerestore.backends.tensorrt.build` (the TensorRT builder);
* :mod:`~edgerestore.backends.tensorrt.runner`: :class:`TensorRTRunner`.

Registered as backend ``tensorrt`` (first in ``auto``'s order). :func:`probe` says why it
cannot run here (package, pycuda, driver, GPU, version) and how to fix it. Nothing
here imports tensorrt or pycuda at import time.
"""

from __future__ import annotations

from edgerestore._lazy import install_hint, is_installed
from edgerestore.backends.base import RunnerOptions

MIN_MAJOR = 10


def probe() -> str | None:
    """None if TensorRT can run here, else why not and what to install."""
    if not is_installed("tensorrt"):
        return ("the tensorrt package is not installed (TensorRT 10+ with an NVIDIA GPU): "
                + install_hint("tensorrt"))
    if not is_installed("pycuda"):
        return ("pycuda is not installed (GPU buffers and streams for TensorRT): "
                + install_hint("pycuda"))
    try:
        import pycuda.driver as cuda  # noqa: PLC0415  (lazy on purpose)
        import tensorrt as trt  # noqa: PLC0415
    except Exception as exc:  # e.g. libnvinfer missing, CUDA runtime mismatch
        return (f"tensorrt/pycuda failed to import ({type(exc).__name__}: {exc}); check that "
                "the NVIDIA driver is installed and tensorrt matches the CUDA version")
    try:
        major = int(str(trt.__version__).split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_MAJOR:
        return (f"TensorRT {trt.__version__} is too old; edgerestore needs TensorRT "
                f"{MIN_MAJOR} or newer: pip install -U tensorrt")
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:
        return f"the CUDA driver did not start ({type(exc).__name__}: {exc}); is an NVIDIA GPU present?"
    if count == 0:
        return "no NVIDIA GPU found by the CUDA driver"
    return None


def make_runner(path: str, options: RunnerOptions):
    """An inactive TensorRT runner for ``path`` (engine precision from its metadata)."""
    from edgerestore.backends.tensorrt.loader import EngineBytesFromOnnx
    from edgerestore.backends.tensorrt.runner import TensorRTRunner

    loader = EngineBytesFromOnnx(path=path, device_id=options.device_id)
    return TensorRTRunner(loader, device_id=options.device_id, name="tensorrt")


SUMMARY = "TensorRT engines on an NVIDIA GPU (built from the ONNX file, cached)"

__all__ = ["MIN_MAJOR", "SUMMARY", "make_runner", "probe"]
