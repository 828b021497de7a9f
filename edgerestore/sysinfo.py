"""What this machine offers edgerestore: CPU, ONNX Runtime providers, CUDA, TensorRT.

:func:`collect` returns a JSON-ready dict; each optional piece is a :class:`Piece` with
``available``, ``version``, ``detail`` and, when missing, ``fix`` (what to install).
Probing imports onnxruntime, numba.cuda, tensorrt and pycuda, so it is only done when
asked for (``edgerestore info``), never at import time.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass

from edgerestore import __version__
from edgerestore._lazy import install_hint
from edgerestore.backends import BACKENDS, backend_names
from edgerestore.backends.base import default_threads


@dataclass(frozen=True)
class Piece:
    name: str
    available: bool
    version: str | None = None
    detail: str = ""
    fix: str | None = None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _onnxruntime() -> Piece:
    try:
        import onnxruntime as ort
    except Exception as exc:
        return Piece("onnxruntime", False, detail=str(exc), fix=install_hint("onnxruntime"))
    providers = ort.get_available_providers()
    return Piece("onnxruntime", True, ort.__version__, "providers: " + ", ".join(providers))


def _nvidia_driver() -> Piece:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return Piece("nvidia-gpu", False, detail="no nvidia-smi on PATH",
                     fix="an NVIDIA GPU with its driver (Jetson: JetPack)")
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return Piece("nvidia-gpu", False, detail=f"nvidia-smi failed: {exc}")
    gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not gpus:
        return Piece("nvidia-gpu", False, detail=(out.stderr or out.stdout).strip()[:200],
                     fix="check the NVIDIA driver installation")
    return Piece("nvidia-gpu", True, detail="; ".join(gpus))


def _numba_cuda() -> Piece:
    version = _version("numba")
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return Piece("numba-cuda", True, version, "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): "
                     "correct but very slow; unset it to use a real GPU")
    try:
        from numba import cuda

        ok = cuda.is_available()
    except Exception as exc:
        return Piece("numba-cuda", False, version, f"numba.cuda failed: {exc}",
                     "an NVIDIA driver and the CUDA toolkit (pip install numba-cuda[cu12])")
    if not ok:
        return Piece("numba-cuda", False, version, "no CUDA device found",
                     "an NVIDIA GPU with driver and CUDA toolkit (pip install numba-cuda[cu12])")
    dev = cuda.get_current_device()
    return Piece("numba-cuda", True, version, f"{dev.name.decode() if isinstance(dev.name, bytes) else dev.name}")


def _module_piece(name: str, module: str, purpose: str) -> Piece:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return Piece(name, False, detail=f"not installed ({purpose})", fix=install_hint(module))
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # e.g. tensorrt installed without its libraries
        return Piece(name, False, detail=f"installed but fails to import: {exc}",
                     fix=f"reinstall: {install_hint(module)}")
    return Piece(name, True, getattr(mod, "__version__", None) or _version(name), purpose)


def collect() -> dict:
    """Everything ``edgerestore info`` reports, as a JSON-ready dict."""
    pieces = [
        _onnxruntime(),
        _nvidia_driver(),
        _numba_cuda(),
        _module_piece("tensorrt", "tensorrt", "TensorRT engines"),
        _module_piece("pycuda", "pycuda", "GPU buffers and streams for TensorRT"),
        _module_piece("torch", "torch", "training and export only"),
    ]
    backends = []
    for name in sorted(BACKENDS):
        why_not = BACKENDS[name].probe()
        backends.append({"name": name, "available": why_not is None,
                         "summary": BACKENDS[name].summary, "why_not": why_not})
    from edgerestore.backends import select_backend
    from edgerestore.errors import BackendError

    try:
        auto = select_backend("auto").reason
    except BackendError as exc:
        auto = str(exc)
    return {
        "edgerestore": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": {"cores_total": os.cpu_count(), "cores_usable": default_threads(),
                "processor": platform.processor() or platform.machine()},
        "core_packages": {d: _version(d) for d in ("numpy", "opencv-python", "av", "numba", "onnx", "onnxruntime")},
        "pieces": [asdict(p) for p in pieces],
        "backends": backends,
        "backend_names": backend_names(),
        "auto_backend": auto,
        "video_codecs": _video_codecs(),
    }


def _video_codecs() -> dict:
    """Video encoders per codec and NVDEC decoding: 'yes' or why not (a real probe: each
    encoder is opened once for a tiny picture); an error entry when PyAV is missing."""
    try:
        from edgerestore.runtime.video import available_codecs

        return available_codecs()
    except Exception as exc:  # noqa: BLE001 - info must always print
        return {"error": {"pyav": str(exc)}}
