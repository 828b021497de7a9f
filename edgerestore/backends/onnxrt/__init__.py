"""ONNX Runtime backend (CPU and CUDA execution providers)."""

from edgerestore.backends.onnxrt.loader import SessionFromOnnx
from edgerestore.backends.onnxrt.runner import OnnxRuntimeRunner

__all__ = ["SessionFromOnnx", "OnnxRuntimeRunner"]
