"""Inference backends behind one interface, and the choice between them.

Backends (see :mod:`edgerestore.backends.base` for the loader/runner contract):

==========  ==============================================================
``tensorrt`` TensorRT engines (needs the ``gpu`` extra and an NVIDIA GPU)
``ort-cpu`` ONNX Runtime, CPU execution provider (always available)
``ort-cuda`` ONNX Runtime, CUDA execution provider (needs onnxruntime-gpu)
``auto``    the first that works of: tensorrt, ort-cuda, ort-cpu
==========  ==============================================================

``auto`` logs which backend it took and why the ones before it were skipped; the same
text is returned as ``reason`` so reports can record it.

The named backends are entries of :data:`BACKENDS`, a
:class:`~edgerestore.registry.Registry`: a new backend is added with :func:`register`
(a :class:`Backend` with a probe and a runner factory); a name already taken is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from edgerestore.backends import tensorrt as trt_backend  # light: imports nothing heavy
from edgerestore.backends.base import Runner, RunnerOptions, default_threads
from edgerestore.errors import BackendError
from edgerestore.registry import Registry

log = logging.getLogger(__name__)

AUTO_ORDER = ("tensorrt", "ort-cuda", "ort-cpu")


@dataclass(frozen=True)
class Backend:
    """A registered backend.

    probe() returns None when the backend can run on this machine, else a sentence
    saying why not and what to install. make_runner(model_path, options) returns an
    inactive runner.
    """

    name: str
    summary: str
    probe: Callable[[], str | None]
    make_runner: Callable[[str, RunnerOptions], Runner]


def _ort_providers() -> list[str] | str:
    try:
        import onnxruntime as ort  # noqa: PLC0415  (lazy on purpose)
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc}): pip install onnxruntime"
    return ort.get_available_providers()


def _probe_ort(provider: str, fix: str) -> Callable[[], str | None]:
    def probe() -> str | None:
        providers = _ort_providers()
        if isinstance(providers, str):
            return providers
        if provider not in providers:
            return f"{provider} is not among onnxruntime's providers {providers}; {fix}"
        return None

    return probe


def _ort_runner(provider_chain: tuple[str, ...], name: str):
    def make(path: str, options: RunnerOptions) -> Runner:
        from edgerestore.backends.onnxrt import OnnxRuntimeRunner, SessionFromOnnx

        loader = SessionFromOnnx(
            path=path,
            providers=provider_chain,
            threads=options.resolved_threads(),
            device_id=options.device_id,
        )
        return OnnxRuntimeRunner(loader, name=name)

    return make


BACKENDS: Registry[Backend] = Registry("backend")
"""The backends a user may ask for by name (``auto`` is not one: it picks among them)."""


def register(backend: Backend) -> Backend:
    """Add a backend to :data:`BACKENDS`; a name already taken raises ``RegistryError``."""
    return BACKENDS.add(backend.name, backend, backend.summary)


register(
    Backend(
        name="ort-cuda",
        summary="ONNX Runtime on an NVIDIA GPU (CUDA execution provider)",
        probe=_probe_ort(
            "CUDAExecutionProvider",
            "install the GPU build: pip uninstall onnxruntime && pip install onnxruntime-gpu",
        ),
        make_runner=_ort_runner(("CUDAExecutionProvider", "CPUExecutionProvider"), "ort-cuda"),
    )
)
register(
    Backend(
        name="ort-cpu",
        summary="ONNX Runtime on the CPU (always available)",
        probe=_probe_ort("CPUExecutionProvider", "reinstall onnxruntime"),
        make_runner=_ort_runner(("CPUExecutionProvider",), "ort-cpu"),
    )
)
register(Backend(name="tensorrt", summary=trt_backend.SUMMARY, probe=trt_backend.probe,
                 make_runner=trt_backend.make_runner))


def backend_names() -> list[str]:
    """Names a user may ask for, ``auto`` first."""
    return ["auto", *sorted(BACKENDS)]


@dataclass(frozen=True)
class Selection:
    """The backend :func:`select_backend` chose and why (a sentence for reports)."""

    backend: Backend
    reason: str


def _why_not(name: str) -> str | None:
    """None when the backend ``name`` can run here, else why not (also: not built in)."""
    if name not in BACKENDS:
        return "not built into this version of edgerestore"
    return BACKENDS[name].probe()


def select_backend(requested: str = "auto") -> Selection:
    """Resolve a backend name (or ``auto``) to a usable backend, with the reason.

    Raises BackendError for an unknown name ("Requested backend X; available: ...") or
    a known backend that cannot run here (the probe's reason and fix).
    """
    if requested != "auto":
        if requested not in BACKENDS:
            raise BackendError(
                f"Requested backend {requested!r}; available: {', '.join(backend_names())}"
            )
        why_not = BACKENDS[requested].probe()
        if why_not:
            raise BackendError(f"Requested backend {requested!r} cannot run here: {why_not}")
        return Selection(BACKENDS[requested], f"{requested}: requested by the user")
    skipped = []
    for name in AUTO_ORDER:
        why_not = _why_not(name)
        if why_not is None:
            reason = f"auto picked {name}"
            if skipped:
                reason += "; skipped " + "; ".join(skipped)
            log.info("backend: %s", reason)
            return Selection(BACKENDS[name], reason)
        skipped.append(f"{name} ({why_not})")
    raise BackendError("no backend can run here: " + "; ".join(skipped))


def open_runner(model_path: str, backend: str = "auto", options: RunnerOptions | None = None):
    """Select a backend and return ``(active runner, reason)``.

    With ``auto``, a backend whose probe passed but whose runner fails to start (e.g.
    onnxruntime-gpu installed on a machine without a working GPU) is skipped and the
    next one is tried; the reason records it.
    """
    options = options or RunnerOptions()
    if backend != "auto":
        sel = select_backend(backend)
        runner = sel.backend.make_runner(model_path, options)
        runner.activate()
        return runner, sel.reason
    notes = []
    for name in AUTO_ORDER:
        why_not = _why_not(name)
        if why_not:
            notes.append(f"{name} ({why_not})")
            continue
        runner = BACKENDS[name].make_runner(model_path, options)
        try:
            runner.activate()
        except BackendError as exc:
            notes.append(f"{name} (failed to start: {exc})")
            log.warning("backend %s failed to start, trying the next: %s", name, exc)
            continue
        reason = f"auto picked {name}" + ("; skipped " + "; ".join(notes) if notes else "")
        log.info("backend: %s", reason)
        return runner, reason
    raise BackendError("no backend can run here: " + "; ".join(notes))


__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "Runner",
    "RunnerOptions",
    "Selection",
    "backend_names",
    "default_threads",
    "open_runner",
    "register",
    "select_backend",
]
