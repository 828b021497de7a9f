"""Run a TensorRT engine: the TensorRT side of the runner interface.

TensorRT 10's named-tensor API: shapes are set per input with ``set_input_shape``,
buffers bound with ``set_tensor_address``, and the engine enqueued with
``execute_async_v3`` on the runner's own CUDA stream. Buffers come from pycuda: pinned
(page-locked) host memory, so the host<->device copies are real DMA transfers that run
asynchronously on the stream, and device memory; both grow when a larger frame arrives
and are reused otherwise. Each runner has one stream and pushes the device's primary
CUDA context around each call, so a runner activated in one thread can be used from a
pipeline stage's thread.

This module is exercised only by tests marked ``tensorrt`` (a GPU and the ``gpu`` extra);
it imports tensorrt and pycuda in ``activate``, never at import time.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import BackendError, InputError, ModelError

log = logging.getLogger(__name__)


class _Buffer:
    """A pinned host buffer and a device buffer of at least ``nbytes`` (grown on demand)."""

    def __init__(self, cuda):
        self._cuda = cuda
        self.capacity = 0
        self.host = None
        self.device = None

    def ensure(self, nbytes: int) -> None:
        if nbytes <= self.capacity:
            return
        self.free()
        self.host = self._cuda.pagelocked_empty(nbytes, dtype=np.uint8)
        self.device = self._cuda.mem_alloc(nbytes)
        self.capacity = nbytes

    def view(self, shape, dtype) -> np.ndarray:
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self.host[:n].view(dtype).reshape(shape)

    def free(self) -> None:
        if self.device is not None:
            self.device.free()
        self.host = self.device = None
        self.capacity = 0


class TensorRTRunner:
    """Runner over a serialized engine made by a loader (e.g. ``EngineBytesFromOnnx``).

    >>> with TensorRTRunner(EngineBytesFromOnnx(path="m.onnx")) as r:   # doctest: +SKIP
    ...     y = r.infer({"image": x, "noise_level": s})
    """

    def __init__(self, loader: Callable[[], bytes], *, device_id: int = 0, name: str = "tensorrt"):
        self._loader = loader
        self.device_id = device_id
        self.name = name
        self.input_names: tuple[str, ...] = ()
        self.output_name: str | None = None
        self._cuda = None
        self._ctx = None
        self._engine = None
        self._context = None
        self._stream = None
        self._buffers: dict[str, _Buffer] = {}
        self._dtypes: dict[str, np.dtype] = {}

    @property
    def active(self) -> bool:
        return self._context is not None

    def activate(self) -> None:
        if self._context is not None:
            return
        trt = require("tensorrt", purpose="the TensorRT backend")
        cuda = require("pycuda.driver", purpose="the TensorRT backend")
        from edgerestore.backends.tensorrt.build import make_logger

        try:
            cuda.init()
            self._ctx = cuda.Device(self.device_id).retain_primary_context()
        except Exception as exc:
            raise BackendError(f"tensorrt: CUDA device {self.device_id} cannot start: "
                               f"{type(exc).__name__}: {exc}") from None
        self._cuda = cuda
        self._ctx.push()
        try:
            try:
                serialized = self._loader()
            except (ModelError, InputError) as exc:  # so that `auto` moves on, saying why
                raise BackendError(f"tensorrt cannot build an engine for this model: {exc}") from None
            self._runtime = trt.Runtime(make_logger())
            self._engine = self._runtime.deserialize_cuda_engine(serialized)
            if self._engine is None:
                raise BackendError("tensorrt: the engine could not be deserialized (built by "
                                   "another TensorRT version or for another GPU?)")
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            inputs, outputs = [], []
            for i in range(self._engine.num_io_tensors):
                tname = self._engine.get_tensor_name(i)
                self._dtypes[tname] = np.dtype(trt.nptype(self._engine.get_tensor_dtype(tname)))
                self._buffers[tname] = _Buffer(cuda)
                if self._engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                    inputs.append(tname)
                else:
                    outputs.append(tname)
            if len(outputs) != 1:
                raise BackendError(f"tensorrt: the engine has {len(outputs)} outputs; models have one")
            self.input_names = tuple(inputs)
            self.output_name = outputs[0]
        except BaseException:
            self._release()
            raise
        finally:
            self._ctx.pop()

    def infer(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        if self._context is None:
            raise BackendError(f"{self.name} runner is not active: call activate() or use `with`")
        if set(feed) != set(self.input_names):
            raise InputError(f"model inputs are {list(self.input_names)}, but got {sorted(feed)}")
        cuda = self._cuda
        self._ctx.push()
        try:
            for tname in self.input_names:
                arr = np.ascontiguousarray(feed[tname], dtype=self._dtypes[tname])
                if not self._context.set_input_shape(tname, arr.shape):
                    raise InputError(
                        f"{self.name}: input {tname!r} of shape {arr.shape} is outside the "
                        "engine's optimisation profile (see the model's 'profile' metadata; "
                        "tile larger frames or rebuild with a larger profile)")
                buf = self._buffers[tname]
                buf.ensure(arr.nbytes)
                buf.view(arr.shape, arr.dtype)[...] = arr
                cuda.memcpy_htod_async(buf.device, buf.host[:arr.nbytes], self._stream)
                self._context.set_tensor_address(tname, int(buf.device))
            out_shape = tuple(self._context.get_tensor_shape(self.output_name))
            if any(d < 0 for d in out_shape):
                raise BackendError(f"{self.name}: output shape {out_shape} is unresolved")
            out_dtype = self._dtypes[self.output_name]
            out_buf = self._buffers[self.output_name]
            nbytes = int(np.prod(out_shape)) * out_dtype.itemsize
            out_buf.ensure(nbytes)
            self._context.set_tensor_address(self.output_name, int(out_buf.device))
            if not self._context.execute_async_v3(stream_handle=self._stream.handle):
                raise BackendError(f"{self.name}: execute_async_v3 failed (see the log, -v)")
            cuda.memcpy_dtoh_async(out_buf.host[:nbytes], out_buf.device, self._stream)
            self._stream.synchronize()
            return np.array(out_buf.view(out_shape, out_dtype), dtype=np.float32, copy=True)
        finally:
            self._ctx.pop()

    def _release(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        self._buffers.clear()
        self._context = self._engine = self._stream = None
        self._runtime = None

    def deactivate(self) -> None:
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            self._release()
        finally:
            self._ctx.pop()
            self._ctx.detach()
            self._ctx = None

    def __enter__(self) -> "TensorRTRunner":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()
