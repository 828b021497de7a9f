"""Build a serialized TensorRT engine from ONNX bytes (TensorRT 10's builder API).

Also the pieces the runner shares: :func:`tensorrt` (the module, imported on first use),
:func:`make_logger` (TensorRT's messages into Python logging) and :func:`gpu_identity`.
Only this module and :mod:`~edgerestore.backends.tensorrt.runner` touch TensorRT itself;
both import it inside functions, never at import time. How a file is built (typing,
flags) is decided in :mod:`~edgerestore.backends.tensorrt.precision`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from edgerestore._lazy import require
from edgerestore.backends.onnx_graph import nonzero_zero_points, onnx_kind
from edgerestore.backends.tensorrt.cache import write_atomic
from edgerestore.backends.tensorrt.precision import network_mode
from edgerestore.backends.tensorrt.profile import Shape
from edgerestore.errors import BackendError, ModelError
from edgerestore.model_spec import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 1024


def tensorrt():
    """The tensorrt module, imported on first use (with an install hint when missing)."""
    return require("tensorrt", purpose="the TensorRT backend")


def gpu_identity(device_id: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "8.7") of a CUDA device, through pycuda."""
    cuda = require("pycuda.driver", purpose="the TensorRT backend")
    cuda.init()
    dev = cuda.Device(device_id)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


_logger_class = None


def make_logger():
    """A ``trt.ILogger`` that forwards TensorRT's messages to Python logging.

    Its class subclasses ``trt.ILogger``, so it is made on first use (and kept).
    """
    global _logger_class
    trt = tensorrt()
    if _logger_class is None:
        levels = {
            trt.ILogger.Severity.INTERNAL_ERROR: logging.ERROR,
            trt.ILogger.Severity.ERROR: logging.ERROR,
            trt.ILogger.Severity.WARNING: logging.WARNING,
            trt.ILogger.Severity.INFO: logging.DEBUG,
            trt.ILogger.Severity.VERBOSE: logging.DEBUG,
        }

        class Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, msg):
                log.log(levels.get(severity, logging.INFO), "TensorRT: %s", msg)

        _logger_class = Logger
    return _logger_class()


def build_serialized_engine(onnx_bytes: bytes, *, spec: ModelSpec, precision: str,
                            profile: Mapping[str, tuple[Shape, Shape, Shape]],
                            workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                            timing_cache: Path | None = None, where: str = "model") -> bytes:
    """Parse the ONNX bytes and build a serialized engine with TensorRT 10's builder API."""
    trt = tensorrt()
    onnx = require("onnx", purpose="the TensorRT backend")
    model = onnx.load_from_string(onnx_bytes)
    kind = onnx_kind(model)
    if kind == "qdq":
        bad = nonzero_zero_points(model)
        if bad:
            raise ModelError(
                f"{where}: INT8 model with non-zero zero points ({', '.join(bad[:4])}...), i.e. "
                "calibrated for the cpu target; TensorRT supports symmetric INT8 only. "
                "Recalibrate with: edgerestore calibrate ... --target tensorrt"
            )
    mode = network_mode(precision, kind, where=where)
    logger = make_logger()
    builder = trt.Builder(logger)
    flags = 0
    if mode.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{where}: TensorRT's ONNX parser refused the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    for name in mode.flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            raise BackendError(
                f"TensorRT {trt.__version__} has no BuilderFlag.{name} (weak typing was removed in "
                "TensorRT 11); convert the model first: edgerestore calibrate MODEL --precision "
                "fp16 (or --target tensorrt for INT8) and build that file"
            )
        config.set_flag(flag)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    cache = None
    if timing_cache is not None:
        blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    log.info("building a %s TensorRT engine for %s (this can take minutes)", precision, where)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{where}: TensorRT failed to build a {precision} engine (see the "
                           "TensorRT messages in the log, -v)")
    if cache is not None:
        try:
            write_atomic(timing_cache, memoryview(config.get_timing_cache().serialize()).tobytes())
        except OSError as exc:  # the engine is fine; the next build is just slower
            log.warning("could not save the timing cache %s: %s", timing_cache, exc)
    return memoryview(serialized).tobytes()
