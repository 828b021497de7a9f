"""Stages that run a model through :class:`edgerestore.restorer.ModelRestorer`: any
zoo model or ONNX file (``model``), and super-resolution (``upscale``, which resizes
classically for scales with no model)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edgerestore.runtime.errors import PipelineSpecError
from edgerestore.runtime.stages.base import BatchStage, Stage, format_args
from edgerestore.runtime.stages.format import interpolation_flag

log = logging.getLogger("edgerestore.runtime")


class RestorerLifecycle:
    """``cancel`` and ``close`` for a stage that runs a model through ``self._restorer``
    (a :class:`~edgerestore.restorer.ModelRestorer`, None until opened)."""

    _restorer = None

    def cancel(self) -> None:
        """Stop a frame in progress from another thread (Ctrl-C, SIGTERM): ONNX Runtime's
        run in flight is terminated (:meth:`edgerestore.restorer.ModelRestorer.cancel`);
        the stage cannot run again, close it."""
        if self._restorer is not None:
            self._restorer.cancel()

    def close(self) -> None:
        if self._restorer is not None:
            self._restorer.close()
            self._restorer = None


class ModelStage(RestorerLifecycle, BatchStage):
    """A zoo model or a user's ONNX file, run by :class:`edgerestore.restorer.ModelRestorer`.

    Pre/post-processing (colour, value range, noise-level map, padding, tiling with overlap
    and blending) comes from the model's metadata. ``backend``: ``auto`` or a backend name;
    ``sigma``: noise level for denoisers with a noise-level input (None: estimated);
    ``self_ensemble``: 1, 2, 4 or 8 copies averaged (N times the time, offline use; see
    :data:`edgerestore.restorer.SELF_ENSEMBLE_TRANSFORMS`).
    """

    def __init__(self, name: str | None = None, *, backend: str = "auto", threads: int | None = None,
                 sigma: float | None = None, tile_size: int | None = None, tile_overlap: int | None = None,
                 path: str | None = None, self_ensemble: int = 1):
        self.model = name or path
        if not self.model:
            raise PipelineSpecError("model stage needs a model: model(name='dn-gray') or a path to an .onnx file")
        self.backend = backend
        self.threads = threads
        self.sigma = sigma
        self.tile = (tile_size, tile_overlap)
        self.self_ensemble = self_ensemble
        self.name = f"model({self.model!r}{', sigma=' + repr(sigma) if sigma is not None else ''})"
        self._restorer = None

    def open(self) -> None:
        from edgerestore.restorer import ModelRestorer

        self._restorer = ModelRestorer.open(self.model, backend=self.backend, threads=self.threads,
                                            tile_size=self.tile[0], tile_overlap=self.tile[1],
                                            self_ensemble=self.self_ensemble)
        log.info("stage %s: backend %s (%s)", self.name, self._restorer.backend_name, self._restorer.backend_reason)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self._restorer(img, sigma=self.sigma)

    def process_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Several frames of one size in one inference when the model's batch dimension
        is dynamic (:meth:`edgerestore.restorer.ModelRestorer.restore_batch`)."""
        return self._restorer.restore_batch(images, sigma=self.sigma)

    def describe(self) -> dict[str, Any]:
        if self._restorer is None:
            return {"backend": None, "backend_reason": "not opened"}
        return restorer_fields(self._restorer)


def restorer_fields(restorer) -> dict[str, Any]:
    """A model stage's report fields: the backend choice short (``backend_reason``, what
    the summary line shows) and long (``backend_detail``, why the others could not run)."""
    fields = {"model": restorer.spec.name, "backend": restorer.backend_name,
              "backend_reason": restorer.backend_summary}
    if restorer.backend_reason != restorer.backend_summary:
        fields["backend_detail"] = restorer.backend_reason
    return fields


class UpscaleStage(RestorerLifecycle, Stage):
    """Upscale by ``scale``: with the shipped super-resolution model for that scale
    (``method='model'``; ESPCN-class on luma, chroma bicubic) or classical interpolation
    (``cubic``, ``linear``, ``lanczos``, ``area``, ``nearest``).

    ``method='auto'`` (default) takes the shipped model when one exists for ``scale``
    (integer 2, 3, 4) and ``cubic`` otherwise (e.g. ``scale=1.5``). ``model``: a zoo name
    or an ``.onnx`` path of a super-resolution model (implies ``method='model'``; its
    scale must equal ``scale`` when both are given). ``backend``/``threads``: where the
    model runs (``auto`` picks TensorRT, ORT CUDA, then ORT CPU). ``max_output_mp``:
    a frame whose output would exceed this many megapixels is refused before any work
    (default 40, 8K UHD fits; 0 = no limit), as ``edgerestore upscale --max-output-mp``.
    """

    def __init__(self, scale: float | None = None, method: str = "auto", model: str | None = None,
                 backend: str = "auto", threads: int | None = None, max_output_mp: float | None = None):
        if scale is not None and not scale > 0:
            raise PipelineSpecError(f"upscale(scale=...) must be > 0, got {scale!r}")
        if model is not None:
            if method not in ("auto", "model"):
                raise PipelineSpecError(f"upscale(model=...) runs a model; method={method!r} contradicts it")
            method = "model"
        elif scale is None:
            raise PipelineSpecError("upscale needs scale=... (or model=... of a super-resolution model)")
        from edgerestore.upscale import shipped_scales

        integer = scale is not None and float(scale).is_integer()
        if method == "auto":
            method = "model" if integer and int(scale) in shipped_scales() else "cubic"
        if method == "model" and model is None:
            if not integer or int(scale) not in shipped_scales():
                known = ", ".join(f"x{k}" for k in shipped_scales()) or "(none)"
                raise PipelineSpecError(f"upscale(method='model'): no shipped model for scale {scale:g}; "
                                        f"shipped scales: {known} (or pass model=...)")
            model = shipped_scales()[int(scale)]
        self.scale = None if scale is None else float(scale)
        self.method, self.model, self.backend, self.threads = method, model, backend, threads
        from edgerestore.upscale import DEFAULT_MAX_OUTPUT_MP

        self.max_output_mp = DEFAULT_MAX_OUTPUT_MP if max_output_mp is None else float(max_output_mp)
        self._restorer = None
        if method == "model":
            self.flag = None
            self.name = f"upscale({format_args(scale=None if scale is None else int(scale), model=model)})"
        else:
            self.flag = interpolation_flag(method)
            self.name = f"upscale(scale={scale:g}, method={method!r})"

    def open(self) -> None:
        if self.method != "model":
            return
        from edgerestore.upscale import open_upscaler

        scale = None if self.scale is None else int(self.scale)
        self._restorer = open_upscaler(self.model, scale, backend=self.backend, threads=self.threads)
        log.info("stage %s: backend %s (%s)", self.name, self._restorer.backend_name,
                 self._restorer.backend_reason)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        from edgerestore.upscale import check_output_size

        h, w = img.shape[:2]
        scale = self._restorer.spec.scale if self._restorer is not None else self.scale
        if scale is not None:
            check_output_size(h, w, scale, self.max_output_mp,
                              option="upscale(..., max_output_mp=N) in the pipeline")
        if self._restorer is not None:
            from edgerestore.upscale import upscale_image

            return upscale_image(self._restorer, img, max_output_mp=None)
        if self.method == "model":
            raise PipelineSpecError(f"stage {self.name} was not opened")
        import cv2

        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return np.clip(cv2.resize(img, size, interpolation=self.flag), 0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        if self.method != "model":
            return super().describe()
        if self._restorer is None:
            return {"model": self.model, "backend": None, "backend_reason": "not opened"}
        return restorer_fields(self._restorer)
