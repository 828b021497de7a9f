"""Run an ONNX Runtime session: the ONNX Runtime side of the runner interface."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from edgerestore.errors import BackendError, InputError


class OnnxRuntimeRunner:
    """Runner over a session made by a loader (e.g. :class:`SessionFromOnnx`).

    >>> with OnnxRuntimeRunner(SessionFromOnnx(path="m.onnx")) as r:   # doctest: +SKIP
    ...     y = r.infer({"image": x})
    """

    def __init__(self, loader: Callable[[], object], *, name: str = "ort-cpu"):
        self._loader = loader
        self._session = None
        self.name = name
        self.input_names: tuple[str, ...] = ()
        self.output_name: str | None = None
        self._run_options = None  # of the run in flight, for terminate()
        self._terminated = False

    @property
    def active(self) -> bool:
        return self._session is not None

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers() if self._session is not None else []

    def activate(self) -> None:
        if self._session is None:
            self._session = self._loader()
            self.input_names = tuple(i.name for i in self._session.get_inputs())
            self.output_name = self._session.get_outputs()[0].name

    def infer(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        if self._session is None:
            raise BackendError(f"{self.name} runner is not active: call activate() or use `with`")
        if set(feed) != set(self.input_names):
            raise InputError(
                f"model inputs are {list(self.input_names)}, but got {sorted(feed)}"
            )
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feed.items()}
        if self._terminated:
            raise BackendError(f"{self.name}: stopped (terminate() was called)")
        from edgerestore.backends.onnxrt.loader import onnxruntime

        self._run_options = options = onnxruntime().RunOptions()
        try:
            (out,) = self._session.run([self.output_name], arrays, options)
        except Exception as exc:
            if self._terminated:
                raise BackendError(f"{self.name}: stopped (terminate() was called)") from None
            shapes = {k: v.shape for k, v in arrays.items()}
            raise BackendError(
                f"{self.name}: inference failed for inputs {shapes}: {type(exc).__name__}: {exc}"
            ) from None
        return out

    def terminate(self) -> None:
        """Stop the run in flight (from another thread, e.g. on Ctrl-C) and refuse later
        ones: ONNX Runtime checks ``RunOptions.terminate`` between kernels, so a run ends
        within one operator instead of finishing the model."""
        self._terminated = True
        if self._run_options is not None:
            self._run_options.terminate = True

    def deactivate(self) -> None:
        self._session = None

    def __enter__(self) -> "OnnxRuntimeRunner":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()
