"""The on-disk cache of serialized TensorRT engines.

Building takes seconds to minutes, so engines are cached:

* **key**: SHA-256 over a canonical JSON of the ONNX file's SHA-256, the precision, the
  optimisation profile (min/opt/max shape of every input), the TensorRT version, the GPU
  name and compute capability, and the builder settings (workspace). Change any of them
  and the engine is rebuilt; nothing else can make a stale engine load;
* **folder**: ``$EDGERESTORE_CACHE_DIR/engines``, else ``$XDG_CACHE_HOME/edgerestore/engines``,
  else ``~/.cache/edgerestore/engines``. When it cannot be written (read-only home on an
  embedded image, a file in the way), a per-user folder in the system temp folder is
  used instead and the reason is logged;
* **writes** are atomic (:func:`edgerestore.imageio.write_bytes_atomic`): a temporary
  file in the same folder, ``fsync``, ``os.replace``, so a crash mid-write never leaves a
  file that looks finished; two processes building the same engine both produce a
  complete file and the last rename wins;
* a **timing cache** (``timing.cache`` next to the engines) is loaded into every build
  and saved back (atomically), so later builds of similar networks skip most kernel
  timing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from edgerestore.backends.tensorrt.profile import Shape
from edgerestore.errors import BackendError
from edgerestore.imageio import write_bytes_atomic

log = logging.getLogger(__name__)

CACHE_ENV = "EDGERESTORE_CACHE_DIR"


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
    """``<model>-<precision>-<key prefix>.engine``, the model name made safe for a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name) or "model"
    return f"{safe}-{precision}-{key[:24]}.engine"


def default_cache_dir() -> Path:
    """The engine cache folder the environment asks for (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "engines"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "edgerestore" / "engines"


def fallback_cache_dir() -> Path:
    """The per-user folder in the system temp folder used when the default is not writable."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"edgerestore-{uid}" / "engines"


def why_not_writable(folder: Path) -> str | None:
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
    why = why_not_writable(folder)
    if why is None:
        return folder
    fallback = fallback_cache_dir()
    why_fb = why_not_writable(fallback)
    if why_fb is not None:
        raise BackendError(f"no writable folder for the TensorRT engine cache: {folder} ({why}), "
                           f"{fallback} ({why_fb}); set ${CACHE_ENV} to a writable folder")
    log.warning("engine cache folder %s is not writable (%s); using %s", folder, why, fallback)
    return fallback


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (its folder made if missing); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return path


@dataclass(frozen=True)
class EngineCache:
    """Serialized engines in a folder, by key (see the module docstring)."""

    folder: Path

    @classmethod
    def open(cls, preferred: str | os.PathLike | None = None) -> "EngineCache":
        """The cache in ``preferred`` (default: :func:`default_cache_dir`), or the fallback."""
        return cls(usable_cache_dir(preferred))

    def path_for(self, model_name: str, precision: str, key: str) -> Path:
        return self.folder / engine_file_name(model_name, precision, key)

    def get(self, model_name: str, precision: str, key: str) -> bytes | None:
        """The cached engine bytes, or None."""
        path = self.path_for(model_name, precision, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def put(self, model_name: str, precision: str, key: str, data: bytes) -> Path:
        """Store an engine (atomically); returns its path."""
        return write_atomic(self.path_for(model_name, precision, key), data)

    @property
    def timing_cache_path(self) -> Path:
        return self.folder / "timing.cache"

    def entries(self) -> Iterator[Path]:
        return iter(sorted(self.folder.glob("*.engine")))
