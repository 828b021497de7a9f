"""Load an ONNX file into an ``onnxruntime.InferenceSession``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edgerestore._lazy import require
from edgerestore.errors import BackendError, ModelError

log = logging.getLogger(__name__)


def onnxruntime():
    """The onnxruntime module, imported on first use."""
    return require("onnxruntime", purpose="the ONNX Runtime backend")


@dataclass(frozen=True, kw_only=True)
class SessionFromOnnx:
    """Loader: ``SessionFromOnnx(path=..., providers=[...], threads=2)()`` -> session.

    ``providers`` is ONNX Runtime's ordered list, e.g. ``("CPUExecutionProvider",)``
    or ``("CUDAExecutionProvider", "CPUExecutionProvider")``. When ``require_first`` is
    set the session must really run on the first provider: ONNX Runtime silently falls
    back to the CPU when e.g. CUDA cannot start, which would make "ort-cuda" a lie.
    """

    path: str
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 1
    device_id: int = 0
    require_first: bool = True

    def __call__(self):
        ort = onnxruntime()
        available = ort.get_available_providers()
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise BackendError(
                f"Requested ONNX Runtime provider(s) {missing}, but this onnxruntime "
                f"({ort.__version__}) offers {available}. For CUDA: pip uninstall onnxruntime "
                "&& pip install onnxruntime-gpu"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(self.threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only; ORT's warnings go to stderr otherwise
        providers = [
            (p, {"device_id": self.device_id}) if p == "CUDAExecutionProvider" else p
            for p in self.providers
        ]
        try:
            session = ort.InferenceSession(self.path, sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelError(
                f"{self.path}: ONNX Runtime could not load the model: {type(exc).__name__}: {exc}"
            ) from None
        used = session.get_providers()
        if self.require_first and used[0] != self.providers[0]:
            raise BackendError(
                f"Requested provider {self.providers[0]}, but ONNX Runtime started the session "
                f"on {used} (is a GPU and a matching CUDA/cuDNN installed?)"
            )
        log.debug("ORT session for %s on %s, %d threads", self.path, used, self.threads)
        return session
