"""What every inference backend provides: a loader and a runner.

* A **loader** turns a model file into something runnable (an ONNX Runtime session, a
  TensorRT engine). It is a small frozen object, called with no arguments; it holds no
  state, so it can be cached and composed.
* A **runner** owns what the loader made and runs it: ``activate()``, ``infer(feed)``,
  ``deactivate()``; it is a context manager. ``infer`` takes a dict of named float32
  arrays (N x C x H x W) and returns the model's single output as a float32 array.

Runners of every backend behave the same, so pre/post-processing
(:mod:`edgerestore.restorer`) never needs to know which backend it runs on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Protocol

import numpy as np


def default_threads() -> int:
    """CPU cores this process may use (respects affinity masks and cgroup-pinned CPUs)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, kw_only=True)
class RunnerOptions:
    """Options shared by all backends.

    threads: CPU threads for intra-op parallelism; None = every core this process may
        use. On a CPU backend this is the main speed knob; on GPU backends it only
        affects host-side work.
    device_id: which GPU, for GPU backends.
    """

    threads: int | None = None
    device_id: int = 0

    def resolved_threads(self) -> int:
        return self.threads if self.threads else default_threads()


class Runner(Protocol):
    """The runner interface (see the module docstring)."""

    name: str
    input_names: tuple[str, ...]

    def activate(self) -> None: ...

    def infer(self, feed: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def deactivate(self) -> None: ...

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc) -> None: ...
