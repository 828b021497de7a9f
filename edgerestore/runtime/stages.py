"""Stages: what a pipeline does to each frame.

The stage protocol is small. A stage is any callable ``stage(img) -> img`` where ``img``
is float32 ``H x W`` (gray) or ``H x W x 3`` (BGR) in [0, 1]; it returns the same kind
of array (its size may change, e.g. super-resolution). Optionally it has:

* ``name`` (str): shown in the report and in error messages;
* ``open()``: called once, in the main thread, before any frame is read (load a model
  here, so a missing model fails before any work);
* ``close()``: called once at the end;
* ``describe() -> dict``: extra report fields (model stages give ``backend`` and
  ``backend_reason``).

Subclass :class:`Stage` to get the defaults, or pass a plain function. The pipeline runs
each stage in its own thread, converts frames to float32 before the first stage and back
to uint8 after the last, and checks every result: NaN/Inf, a wrong dtype or shape stops
the run with an error naming the stage. Register a stage with :func:`register_stage` to
use it in pipeline strings such as ``"nlm(sigma=15)|upscale(scale=2)"``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

import numpy as np

from edgerestore.errors import InputError
from edgerestore.runtime.errors import PipelineSpecError

log = logging.getLogger("edgerestore.runtime")


class Stage:
    """Base class of stages: override ``__call__``; ``open``/``close``/``describe`` optional."""

    name: str = "stage"

    def open(self) -> None:
        """Prepare (load models, compile kernels); runs once before any frame."""

    def close(self) -> None:
        """Release resources."""

    def describe(self) -> dict[str, Any]:
        """Extra fields for the report (e.g. backend and why it was chosen)."""
        return {}

    def __call__(self, img: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<stage {self.name}>"


class FunctionStage(Stage):
    """Wraps a plain function ``fn(img) -> img`` as a stage."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", "function")

    def open(self) -> None:
        if hasattr(self.fn, "open"):
            self.fn.open()

    def close(self) -> None:
        if hasattr(self.fn, "close"):
            self.fn.close()

    def describe(self) -> dict[str, Any]:
        return self.fn.describe() if hasattr(self.fn, "describe") else {}

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.fn(img)


def as_stage(obj) -> Stage:
    """A :class:`Stage` from a stage, any callable, or a pipeline-string element."""
    if isinstance(obj, Stage):
        return obj
    if isinstance(obj, str):
        from edgerestore.runtime.spec import parse_pipeline

        stages = parse_pipeline(obj)
        if len(stages) != 1:
            raise PipelineSpecError(f"{obj!r} describes {len(stages)} stages, expected one")
        return stages[0]
    if callable(obj):
        return FunctionStage(obj)
    raise InputError(f"a stage must be callable (img -> img) or a Stage, got {type(obj).__name__}")


def _fmt_args(**kwargs) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None)


# ----------------------------------------------------------------- kernel stages
def _check_kernel_args(fn, stage: str, kwargs: dict) -> None:
    """Fail at open() (before any work) on a keyword the kernel does not take."""
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params or k in ("img", "sigma")]
    if unknown:
        accepted = [p for p in params if p not in ("img",)]
        raise PipelineSpecError(
            f"stage {stage}: unknown parameter {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
        )


def estimate_video_sigma(img: np.ndarray) -> float:
    """Noise level (0-255 scale) of a video frame whose noise may have gone through a codec.

    ``kernels.estimate_sigma`` measures white noise at the pixel scale. Lossy codecs
    (mp4v, MJPEG, VP8/9, H.264) remove much of the finest-scale noise but keep it at
    coarser scales. This takes the larger of that estimate and twice the estimate on the
    2x2-averaged frame (averaging 4 pixels halves white noise, so the two agree on white
    noise). Measured on the shipped sample clip (sigma 15 then mp4v; the residual against
    the clean frame has std 10.2): 9.1 from the pixel scale, 12.1 from this; NLM with
    them gains +5.9 and +6.9 dB on the first frame. White noise sigma 15: 14.9 and 15.5.
    A clean frame: 0.3 and 1.0.
    """
    import cv2

    from edgerestore import kernels

    fine = float(kernels.estimate_sigma(img))
    h, w = img.shape[:2]
    if h < 16 or w < 16:
        return fine
    binned = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return max(fine, 2.0 * float(kernels.estimate_sigma(binned)))


SIGMA_ESTIMATORS = ("video", "white")


class _NumbaThreads:
    """``with _NumbaThreads(n):`` Numba kernels called in this thread use ``n`` threads
    (None: leave the setting alone); the thread's previous setting comes back at the end,
    so a stage run in the caller's thread (``Pipeline.process``) does not change it."""

    def __init__(self, n: int | None):
        self.n = n
        self.prev: int | None = None

    def __enter__(self) -> None:
        if self.n is not None:
            import numba

            self.prev = numba.get_num_threads()  # per calling thread in Numba
            numba.set_num_threads(max(1, min(int(self.n), numba.config.NUMBA_NUM_THREADS)))

    def __exit__(self, *exc) -> None:
        if self.prev is not None:
            import numba

            numba.set_num_threads(self.prev)
            self.prev = None


class NLMStage(Stage):
    """Non-local means (``edgerestore.kernels.nlm``); colour frames are filtered jointly.

    ``sigma`` (0-255 scale): the noise level; None estimates it on every frame with
    ``estimate``: ``video`` (default; also sees noise that a codec has reshaped, see
    :func:`estimate_video_sigma`) or ``white`` (the kernel's own fine-scale estimate,
    right for raw sensor frames and synthetic white noise). ``estimate_every``: estimate
    on every N-th frame only and keep the level in between (default 1: every frame; the
    estimate costs about 85 ms on a 640x360 frame on one core, a quarter of
    ``nlm(search_size=11)``'s time; a camera's noise level changes slowly). ``threads``:
    CPU threads the kernel may use (default: all; fewer leaves cores to decoding,
    encoding and other stages). Other keyword arguments (``patch_size``,
    ``search_size``, ``h``, ...) go to the kernel unchanged.
    """

    def __init__(self, sigma: float | None = None, estimate: str = "video", threads: int | None = None,
                 estimate_every: int = 1, **kernel_args):
        if estimate not in SIGMA_ESTIMATORS:
            raise PipelineSpecError(f"nlm(estimate=...) must be one of {', '.join(SIGMA_ESTIMATORS)}, got {estimate!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise PipelineSpecError(f"nlm(threads=...) must be a positive integer, got {threads!r}")
        if isinstance(estimate_every, bool) or not isinstance(estimate_every, int) or estimate_every < 1:
            raise PipelineSpecError(f"nlm(estimate_every=...) must be a positive integer, got {estimate_every!r}")
        self.sigma = sigma
        self.estimate = estimate
        self.threads = threads
        self.estimate_every = estimate_every
        self.kernel_args = kernel_args
        shown = {"sigma": sigma, "threads": threads, **kernel_args}
        if sigma is None and estimate != "video":
            shown["estimate"] = estimate
        if sigma is None and estimate_every != 1:
            shown["estimate_every"] = estimate_every
        self.name = f"nlm({_fmt_args(**shown)})"
        self._nlm = None
        self.last_sigma: float | None = None
        self._since_estimate = 0

    def open(self) -> None:
        from edgerestore import kernels

        _check_kernel_args(kernels.nlm, self.name, self.kernel_args)
        self._nlm = kernels.nlm
        # Load (or compile) the kernel now, so the first frame's time and latency are real.
        warm = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
        self._nlm(warm, sigma=10.0 if self.sigma is None else self.sigma, **self.kernel_args)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        with _NumbaThreads(self.threads):
            sigma = self.sigma
            if sigma is None:
                sigma = self._estimate(img)
                if sigma < 0.5 and self.estimate == "video":
                    return img  # a clean frame: nothing to remove
            return self._nlm(img, sigma=sigma, **self.kernel_args)

    def _estimate(self, img: np.ndarray) -> float:
        """The frame's noise level, or the last one when it is reused (``estimate_every``)."""
        if self.last_sigma is None or self._since_estimate >= self.estimate_every - 1:
            if self.estimate == "video":
                self.last_sigma = estimate_video_sigma(img)
            else:
                from edgerestore.kernels import estimate_sigma

                self.last_sigma = max(float(estimate_sigma(img)), 0.01)  # as kernels.nlm does
            self._since_estimate = 0
        else:
            self._since_estimate += 1
        return self.last_sigma

    def describe(self) -> dict[str, Any]:
        return {"backend": "numba-cpu", "backend_reason": "classical kernel, CPU (Numba parallel)"}


class BM3DStage(Stage):
    """BM3D (``edgerestore.kernels.bm3d``; CBM3D for colour). ``sigma`` None: estimated on
    every frame as for ``nlm`` (:func:`estimate_video_sigma`)."""

    def __init__(self, sigma: float | None = None, **kernel_args):
        self.sigma = sigma
        self.kernel_args = kernel_args
        self.name = f"bm3d({_fmt_args(sigma=sigma, **kernel_args)})"

    def open(self) -> None:
        from edgerestore import kernels

        _check_kernel_args(kernels.bm3d, self.name, self.kernel_args)
        self._bm3d = kernels.bm3d

    def __call__(self, img: np.ndarray) -> np.ndarray:
        sigma = self.sigma if self.sigma is not None else estimate_video_sigma(img)
        if sigma < 0.5:
            return img  # a clean frame: nothing to remove
        return self._bm3d(img, sigma=float(sigma), **self.kernel_args)

    def describe(self) -> dict[str, Any]:
        return {"backend": "numba-cpu", "backend_reason": "classical kernel, CPU (Numba parallel)"}


class OpenCVNLMStage(Stage):
    """OpenCV's ``fastNlMeansDenoisingColored`` (or the gray variant): the usual anchor.

    ``h`` is OpenCV's filter strength (0-255 scale); None uses ``h = sigma`` with
    ``sigma`` (default 15). Works on 8-bit data internally.
    """

    def __init__(self, h: float | None = None, sigma: float = 15.0, template: int = 7, search: int = 21):
        self.h = float(h if h is not None else sigma)
        self.template, self.search = int(template), int(search)
        self.name = f"opencv_nlm(h={self.h:g})"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if u8.ndim == 3:
            out = cv2.fastNlMeansDenoisingColored(u8, None, self.h, self.h, self.template, self.search)
        else:
            out = cv2.fastNlMeansDenoising(u8, None, self.h, self.template, self.search)
        return out.astype(np.float32) * np.float32(1 / 255)

    def describe(self) -> dict[str, Any]:
        return {"backend": "opencv-cpu", "backend_reason": "OpenCV fastNlMeans (8-bit)"}


# ----------------------------------------------------------------- model stage
class ModelStage(Stage):
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

    def close(self) -> None:
        if self._restorer is not None:
            self._restorer.close()
            self._restorer = None

    def describe(self) -> dict[str, Any]:
        if self._restorer is None:
            return {"backend": None, "backend_reason": "not opened"}
        return {"model": self._restorer.spec.name, "backend": self._restorer.backend_name,
                "backend_reason": self._restorer.backend_reason}


# ----------------------------------------------------------------- format stages
_INTERP = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos": 4}


def _interp(method: str) -> int:
    if method not in _INTERP:
        raise PipelineSpecError(f"unknown interpolation {method!r}; use one of {', '.join(_INTERP)}")
    return _INTERP[method]


class UpscaleStage(Stage):
    """Upscale by ``scale``: with the shipped super-resolution model for that scale
    (``method='model'``; ESPCN-class on luma, chroma bicubic) or classical interpolation
    (``cubic``, ``linear``, ``lanczos``, ``area``, ``nearest``).

    ``method='auto'`` (default) takes the shipped model when one exists for ``scale``
    (integer 2, 3, 4) and ``cubic`` otherwise (e.g. ``scale=1.5``). ``model``: a zoo name
    or an ``.onnx`` path of a super-resolution model (implies ``method='model'``; its
    scale must equal ``scale`` when both are given). ``backend``/``threads``: where the
    model runs (``auto`` picks TensorRT, ORT CUDA, then ORT CPU).
    """

    def __init__(self, scale: float | None = None, method: str = "auto", model: str | None = None,
                 backend: str = "auto", threads: int | None = None):
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
        self._restorer = None
        if method == "model":
            self.flag = None
            self.name = f"upscale({_fmt_args(scale=None if scale is None else int(scale), model=model)})"
        else:
            self.flag = _interp(method)
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
        if self._restorer is not None:
            from edgerestore.upscale import upscale_image

            return upscale_image(self._restorer, img, max_output_mp=None)
        if self.method == "model":
            raise PipelineSpecError(f"stage {self.name} was not opened")
        import cv2

        h, w = img.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return np.clip(cv2.resize(img, size, interpolation=self.flag), 0.0, 1.0)

    def close(self) -> None:
        if self._restorer is not None:
            self._restorer.close()
            self._restorer = None

    def describe(self) -> dict[str, Any]:
        if self.method != "model":
            return super().describe()
        if self._restorer is None:
            return {"model": self.model, "backend": None, "backend_reason": "not opened"}
        return {"model": self._restorer.spec.name, "backend": self._restorer.backend_name,
                "backend_reason": self._restorer.backend_reason}


class ResizeStage(Stage):
    """Resize to ``width`` x ``height``; give one of them to keep the aspect ratio."""

    def __init__(self, width: int | None = None, height: int | None = None, method: str = "area"):
        if width is None and height is None:
            raise PipelineSpecError("resize needs width=... and/or height=...")
        self.width, self.height = width, height
        self.flag = _interp(method)
        self.name = f"resize({_fmt_args(width=width, height=height)})"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        nw = self.width or max(1, round(w * self.height / h))
        nh = self.height or max(1, round(h * self.width / w))
        return np.clip(cv2.resize(img, (int(nw), int(nh)), interpolation=self.flag), 0.0, 1.0)


class GrayStage(Stage):
    """BGR -> gray (BT.601 luma, as OpenCV)."""

    name = "gray"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        import cv2

        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


class ColorStage(Stage):
    """Gray -> BGR (three equal channels); colour frames pass unchanged."""

    name = "color"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)


# ----------------------------------------------------------------- registry
STAGES: dict[str, Callable[..., Stage]] = {
    "nlm": NLMStage,
    "bm3d": BM3DStage,
    "opencv_nlm": OpenCVNLMStage,
    "model": ModelStage,
    "upscale": UpscaleStage,
    "resize": ResizeStage,
    "gray": GrayStage,
    "color": ColorStage,
}


def register_stage(name: str, factory: Callable[..., Stage] | None = None):
    """Make ``factory(**kwargs) -> stage`` usable as ``name(...)`` in pipeline strings.

    Use as a decorator (``@register_stage("sharpen")`` on a class or function) or call it.
    """
    if not name.isidentifier():
        raise PipelineSpecError(f"stage name {name!r} must be a Python identifier")

    def deco(f):
        STAGES[name] = f
        return f

    return deco(factory) if factory is not None else deco


def stage_parameters(name: str) -> list[str]:
    """Keyword parameters a registered stage accepts (for help and error messages)."""
    sig = inspect.signature(STAGES[name])
    return [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
