"""Build TensorRT engines from ONNX files, and cache them.

The loader :class:`EngineBytesFromOnnx` turns a model file into a serialized TensorRT
engine (``bytes``), which :class:`~edgerestore.backends.tensorrt.runner.TensorRTRunner`
deserializes. Building takes seconds to minutes, so engines are cached on disk:

* **key**: SHA-256 over a canonical JSON of the ONNX file's SHA-256, the precision, the
  optimisation profile (min/opt/max shape of every input), the TensorRT version, the GPU
  name and compute capability, and the builder settings (workspace). Change any of them
  and the engine is rebuilt; nothing else can make a stale engine load;
* **folder**: ``$EDGERESTORE_CACHE_DIR/engines``, else ``$XDG_CACHE_HOME/edgerestore/engines``,
  else ``~/.cache/edgerestore/engines``. When it cannot be written (read-only home on an
  embedded image, a file in the way), a per-user folder in the system temp folder is
  used instead and the reason is logged;
* **writes** are atomic: a temporary file in the same folder, ``fsync``, ``os.replace``,
  so a crash mid-write never leaves a file that looks finished; two processes building
  the same engine both produce a complete file and the last rename wins;
* a **timing cache** (``timing.cache`` next to the engines) is loaded into every build
  and saved back (atomically), so later builds of similar networks skip most kernel
  timing.

Precision and network typing (TensorRT 10; weak typing is deprecated from 10.12 and
gone in 11, so strong typing is used wherever the ONNX file itself says the types):

===============  =========================  ==================================================
ONNX holds        --precision                network
===============  =========================  ==================================================
FP32              fp32                       strongly typed (FP32, TF32 where the GPU has it)
FP32              fp16, best                 weakly typed + ``BuilderFlag.FP16`` (TensorRT 10 only;
                                             on 11, convert first: ``calibrate --precision fp16``)
FP16 (calibrate)  fp16, best                 strongly typed: the file's FP16 types
Q/DQ INT8         int8                       strongly typed: explicit quantization, as NVIDIA
                                             recommends (float parts stay FP32)
Q/DQ INT8         best                       weakly typed + ``INT8`` + ``FP16``: Q/DQ honoured,
                                             float parts in FP16 where faster
===============  =========================  ==================================================

INT8 needs a Q/DQ file made with ``edgerestore calibrate --target tensorrt``: TensorRT 10
deprecates its implicit calibrators (10.1), and a file calibrated for the ``cpu`` target
has non-zero zero points, which TensorRT refuses; both are caught here with the fix.

Everything except :func:`build_serialized_engine` (and so the loader's ``__call__`` on a
cache miss) is plain Python and is tested without a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from edgerestore._lazy import require
from edgerestore.errors import BackendError, InputError, ModelError
from edgerestore.model_spec import ModelSpec

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8", "best")
CACHE_ENV = "EDGERESTORE_CACHE_DIR"
DEFAULT_WORKSPACE_MIB = 1024
# Frame sizes (h, w) used when the model's metadata has no "profile".
DEFAULT_PROFILE = {"min": (32, 32), "opt": (720, 1280), "max": (2160, 3840)}
ROLE_CHANNELS = {"noise_level": 1, "mask": 1}

Shape = tuple[int, int, int, int]


# --------------------------------------------------------------------------- profiles
def _round_up(v: int, m: int) -> int:
    return -(-int(v) // m) * m


def profile_from_spec(spec: ModelSpec) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Optimisation profile ``{input name: (min, opt, max)}`` from the model's metadata.

    Frame sizes come from the ``profile`` metadata (``{"min": [h, w], "opt": ...,
    "max": ...}``) or, without one, from the model's ``tile_size`` (the runtime never
    feeds more than a padded tile: min 32, opt = max = the tile) or
    :data:`DEFAULT_PROFILE`. Sizes are rounded up to ``size_multiple``; batch is 1
    (the runtime feeds one frame or tile at a time); channels follow the input's role.
    """
    m = spec.size_multiple
    if spec.profile is not None:
        sizes = {k: tuple(spec.profile[k]) for k in ("min", "opt", "max")}
    elif spec.tile_size:
        t = spec.tile_size
        sizes = {"min": (32, 32), "opt": (t, t), "max": (t, t)}
    else:
        sizes = dict(DEFAULT_PROFILE)
    sizes = {k: (_round_up(h, m), _round_up(w, m)) for k, (h, w) in sizes.items()}
    lo, opt, hi = sizes["min"], sizes["opt"], sizes["max"]
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise ModelError(f"model {spec.name!r}: metadata 'profile' must have min <= opt <= max "
                         f"in both dimensions, got {spec.profile}")
    out = {}
    for name, role in spec.inputs.items():
        c = spec.channels if role == "image" else ROLE_CHANNELS[role]
        out[name] = tuple((1, c, h, w) for h, w in (lo, opt, hi))
    return out


def shape_in_profile(shape: Shape, bounds: tuple[Shape, Shape, Shape]) -> bool:
    lo, _, hi = bounds
    return len(shape) == 4 and all(a <= s <= b for s, a, b in zip(shape, lo, hi))


# --------------------------------------------------------------------------- precision
def onnx_kind(model) -> str:
    """``qdq`` (Q/DQ INT8), ``fp16`` (FP16 weights) or ``fp32``, from the graph itself."""
    from onnx import TensorProto

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return "qdq"
    if any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def nonzero_zero_points(model) -> list[str]:
    """Names of Q/DQ zero points that are not all zero (TensorRT needs symmetric INT8)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    bad = []
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = inits.get(n.input[2])
            if zp is not None and numpy_helper.to_array(zp).any():
                bad.append(n.input[2])
    return sorted(set(bad))


@dataclass(frozen=True)
class NetworkMode:
    """How to build: strongly typed or not, and which ``BuilderFlag`` names to set."""

    strongly_typed: bool
    flags: tuple[str, ...] = ()


def network_mode(precision: str, kind: str, *, where: str = "model") -> NetworkMode:
    """The build mode for ``precision`` on an ONNX file of ``kind`` (see the table above)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if kind == "qdq":
        if precision == "int8":
            return NetworkMode(True)
        if precision == "best":
            return NetworkMode(False, ("INT8", "FP16"))
        raise InputError(f"{where} is an INT8 (Q/DQ) model; build it with --precision int8 or best")
    if kind == "fp16":
        if precision in ("fp16", "best"):
            return NetworkMode(True)
        raise InputError(f"{where} is an FP16 model; build it with --precision fp16 or best")
    if precision == "fp32":
        return NetworkMode(True)
    if precision in ("fp16", "best"):
        return NetworkMode(False, ("FP16",))
    raise InputError(
        f"{where} is an FP32 model without Q/DQ nodes, and TensorRT 10 builds INT8 only from "
        "explicit quantization. Calibrate it first: edgerestore calibrate MODEL --frames "
        "DIR_OR_VIDEO --target tensorrt -o model_trt_int8.onnx, then build that file"
    )


def default_precision(spec: ModelSpec) -> str:
    """The engine precision a model file implies: what its metadata says it holds."""
    return spec.precision


# --------------------------------------------------------------------------- cache
def engine_cache_key(onnx_bytes: bytes, *, precision: str,
                     profile: Mapping[str, tuple[Shape, Shape, Shape]], trt_version: str,
                     gpu_name: str, compute_capability: str = "",
                     builder: Mapping[str, object] | None = None) -> str:
    """SHA-256 hex digest over everything an engine depends on (see the module docstring)."""
    config = {
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "precision": precision,
        "profile": {name: [list(s) for s in shapes] for name, shapes in sorted(profile.items())},
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "compute_capability": compute_capability,
        "builder": dict(sorted((builder or {}).items())),
        "key_format": 1,
    }
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def engine_file_name(model_name: str, precision: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name) or "model"
    return f"{safe}-{precision}-{key[:24]}.engine"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "engines"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "edgerestore" / "engines"


def fallback_cache_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"edgerestore-{uid}" / "engines"


def _writable(folder: Path) -> str | None:
    """None if files can be created in ``folder`` (made if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def usable_cache_dir(preferred: str | os.PathLike | None = None) -> Path:
    """``preferred`` (default: :func:`default_cache_dir`) if writable, else the fallback."""
    folder = Path(preferred).expanduser() if preferred else default_cache_dir()
    why = _writable(folder)
    if why is None:
        return folder
    fallback = fallback_cache_dir()
    why_fb = _writable(fallback)
    if why_fb is not None:
        raise BackendError(f"no writable folder for the TensorRT engine cache: {folder} ({why}), "
                           f"{fallback} ({why_fb}); set ${CACHE_ENV} to a writable folder")
    log.warning("engine cache folder %s is not writable (%s); using %s", folder, why, fallback)
    return fallback


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file in ``path``'s folder, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


@dataclass(frozen=True)
class EngineCache:
    """Serialized engines in a folder, by key (see the module docstring)."""

    folder: Path

    @classmethod
    def open(cls, preferred: str | os.PathLike | None = None) -> "EngineCache":
        return cls(usable_cache_dir(preferred))

    def path_for(self, model_name: str, precision: str, key: str) -> Path:
        return self.folder / engine_file_name(model_name, precision, key)

    def get(self, model_name: str, precision: str, key: str) -> bytes | None:
        path = self.path_for(model_name, precision, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def put(self, model_name: str, precision: str, key: str, data: bytes) -> Path:
        return write_atomic(self.path_for(model_name, precision, key), data)

    @property
    def timing_cache_path(self) -> Path:
        return self.folder / "timing.cache"

    def entries(self) -> Iterator[Path]:
        return iter(sorted(self.folder.glob("*.engine")))


# --------------------------------------------------------------------------- building
def tensorrt():
    return require("tensorrt", purpose="the TensorRT backend")


def gpu_identity(device_id: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "8.7") of a CUDA device, through pycuda."""
    cuda = require("pycuda.driver", purpose="the TensorRT backend")
    cuda.init()
    dev = cuda.Device(device_id)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


class _Logger:
    """A ``trt.ILogger`` that forwards to Python logging (built lazily: it subclasses it)."""

    _cls = None

    @classmethod
    def make(cls):
        trt = tensorrt()
        if cls._cls is None:
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

            cls._cls = Logger
        return cls._cls()


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
    logger = _Logger.make()
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


@dataclass(frozen=True, kw_only=True)
class EngineBytesFromOnnx:
    """Loader: ``EngineBytesFromOnnx(path=...)()`` -> serialized engine bytes, cached.

    precision: ``fp32`` | ``fp16`` | ``int8`` | ``best``; None = what the model's
    metadata says it holds (an FP32 file gives an FP32 engine: reduced precision is
    always an explicit choice, made with ``calibrate`` or ``build-engine``).
    cache_dir: None = the default engine cache (with its fallback); use_cache: False
    always builds (and does not store).
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
