"""Shared test configuration: markers that skip with a reason, and data locations.

Markers (registered in pyproject.toml):

* ``gpu``: needs a real NVIDIA GPU (numba.cuda, not the simulator); skipped otherwise.
* ``tensorrt``: needs the ``tensorrt`` package and a GPU; skipped otherwise.
* ``slow``: long quality/training runs; skipped unless ``--run-slow`` or
  ``EDGERESTORE_RUN_SLOW=1``.
* ``torch``: needs PyTorch (``pip install 'edgerestore[train]'``); skipped when absent.

Tests that read ``../shared/data`` use the ``shared_data`` fixture, which skips when the
folder is absent (the project never needs it to install or run).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow")


@functools.lru_cache(maxsize=None)
def _real_gpu_reason() -> str | None:
    """None if a real CUDA GPU is usable, else why not."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator is not a GPU"
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - numba is a core dependency
        return f"numba.cuda does not import: {exc}"
    try:
        if not cuda.is_available():
            return "no NVIDIA GPU / CUDA driver found"
    except Exception as exc:
        return f"CUDA not usable: {exc}"
    return None


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow") or os.environ.get("EDGERESTORE_RUN_SLOW") == "1"
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow or EDGERESTORE_RUN_SLOW=1"))
        if "gpu" in item.keywords or "tensorrt" in item.keywords:
            reason = _real_gpu_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"needs an NVIDIA GPU: {reason}"))
        if "tensorrt" in item.keywords and not _has("tensorrt"):
            item.add_marker(pytest.mark.skip(reason="needs the tensorrt package: pip install 'edgerestore[gpu]'"))
        if "torch" in item.keywords and not _has("torch"):
            item.add_marker(pytest.mark.skip(reason="needs PyTorch: pip install 'edgerestore[train]'"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $EDGERESTORE_SHARED_DATA); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng():
    """A fresh NumPy generator with a fixed seed (each test gets the same stream)."""
    import numpy as np

    return np.random.default_rng(20261123)


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Ctrl-C tests need Python's SIGINT handler. A shell that starts pytest as a
    background job makes the process ignore SIGINT (SIG_IGN is inherited, and Python
    then installs no handler), so install it for the test when it is missing."""
    old = signal.getsignal(signal.SIGINT)
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if old is signal.SIG_IGN:
        signal.signal(signal.SIGINT, old)
