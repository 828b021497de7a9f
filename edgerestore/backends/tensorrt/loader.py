"""The TensorRT loader: an ONNX file -> a serialized engine (``bytes``), through the cache.

:class:`EngineBytesFromOnnx` is called by
:class:`~edgerestore.backends.tensorrt.runner.TensorRTRunner` when it activates. The
pieces it combines live beside it, one job each:

* :mod:`~edgerestore.backends.tensorrt.profile`: optimisation profiles from metadata;
* :mod:`~edgerestore.backends.tensorrt.precision`: precision and network typing;
* :mod:`~edgerestore.backends.tensorrt.cache`: cache keys, folder, atomic writes;
* :mod:`~edgerestore.backends.tensorrt.build`: the TensorRT builder.

Everything except the build (and so ``__call__`` on a cache miss) is plain Python and is
tested without a GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edgerestore.backends.tensorrt.build import (
    DEFAULT_WORKSPACE_MIB,
    build_serialized_engine,
    gpu_identity,
    tensorrt,
)
from edgerestore.backends.tensorrt.cache import EngineCache, engine_cache_key
from edgerestore.backends.tensorrt.precision import default_precision
from edgerestore.backends.tensorrt.profile import profile_from_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EngineBytesFromOnnx:
    """Loader: ``EngineBytesFromOnnx(path=...)()`` -> serialized engine bytes, cached.

    precision: ``fp32`` | ``fp16`` | ``int8`` | ``best``; None = what the model's
    metadata says it holds (an FP32 file gives an FP32 engine: reduced precision is
    always an explicit choice, made with ``calibrate`` or ``build-engine``).
    cache_dir: None = the default engine cache (with its fallback); use_cache: False
    always builds (and does not store). workspace_mib: the builder's workspace limit.
    """

    path: str
    precision: str | None = None
    device_id: int = 0
    cache_dir: str | None = None
    use_cache: bool = True
    workspace_mib: int = DEFAULT_WORKSPACE_MIB

    def __call__(self) -> bytes:
        from edgerestore.model_spec import read_spec

        spec = read_spec(self.path)
        precision = self.precision or default_precision(spec)
        profile = profile_from_spec(spec)
        onnx_bytes = Path(self.path).read_bytes()
        trt = tensorrt()
        gpu, cc = gpu_identity(self.device_id)
        builder_settings = {"workspace_mib": self.workspace_mib}
        key = engine_cache_key(onnx_bytes, precision=precision, profile=profile,
                               trt_version=trt.__version__, gpu_name=gpu,
                               compute_capability=cc, builder=builder_settings)
        cache = EngineCache.open(self.cache_dir) if self.use_cache else None
        if cache is not None:
            hit = cache.get(spec.name, precision, key)
            if hit is not None:
                log.info("TensorRT engine cache hit: %s", cache.path_for(spec.name, precision, key))
                return hit
        data = build_serialized_engine(
            onnx_bytes, spec=spec, precision=precision, profile=profile,
            workspace_mib=self.workspace_mib,
            timing_cache=cache.timing_cache_path if cache is not None else None, where=self.path)
        if cache is not None:
            try:
                path = cache.put(spec.name, precision, key, data)
                log.info("TensorRT engine cached: %s", path)
            except OSError as exc:
                log.warning("could not store the engine in %s: %s", cache.folder, exc)
        return data
