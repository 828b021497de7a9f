"""Threads around the kernels: how many CPU threads the Numba kernels use, per calling
thread (:func:`numba_threads`), the lock that lets one parallel CPU kernel run at a time
(:data:`PARALLEL_CPU_KERNEL`), and a call that Ctrl-C can interrupt
(:func:`run_interruptibly`)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

PARALLEL_CPU_KERNEL = threading.Lock()
"""Held around every parallel Numba CPU kernel call (NLM, BM3D, temporal): one at a time
per process. Each call already uses every core, and Numba's fallback threading layer
(workqueue, where neither OpenMP nor TBB is installed) aborts the process when two
threads (e.g. two pipeline stages) launch parallel kernels at once."""


@contextmanager
def numba_threads(n: int | None) -> Iterator[None]:
    """``with numba_threads(n):`` Numba kernels called in this thread use ``n`` threads
    (clamped to 1 .. ``NUMBA_NUM_THREADS``); None leaves the setting alone.

    Numba keeps the setting per calling thread; the thread's previous setting comes back
    at the end, so a stage run in the caller's thread does not change it for the caller.
    """
    if n is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def run_interruptibly(fn: Callable[..., T], *args, on_interrupt: Callable[[], None] | None = None,
                      grace_s: float = 0.25, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in a worker thread while this thread waits, so that Ctrl-C
    ends the wait within a fraction of a second even while ``fn`` sits in native code.

    Python delivers KeyboardInterrupt to the main thread between bytecodes only: a
    Numba kernel or an ONNX Runtime run called from the main thread keeps Ctrl-C waiting
    until it returns (minutes for BM3D on 12 MP). Here the main thread only waits (the
    kernels release the GIL). On KeyboardInterrupt, ``on_interrupt()`` is called (e.g.
    :meth:`edgerestore.restorer.ModelRestorer.cancel`, which stops ONNX Runtime), the
    worker gets ``grace_s`` seconds to end, and the KeyboardInterrupt is raised again. A
    Numba kernel cannot be stopped: its daemon thread runs on, its result is dropped, and
    the caller should end the process (nothing it produced is written). Exceptions of
    ``fn`` are raised here; the result is returned.
    """
    result: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: a join interrupted once returns at once after

    def work() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the waiting thread
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="edgerestore-compute", daemon=True).start()
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
        running = not done.wait(grace_s)
        raise CancelledWhileRunning() if running else KeyboardInterrupt() from None
    if "error" in result:
        raise result["error"]
    return result["value"]


class CancelledWhileRunning(KeyboardInterrupt):
    """The KeyboardInterrupt of :func:`run_interruptibly` when its work could not be
    stopped (a Numba kernel) and still runs in a daemon thread."""

    still_running = True


def end_process_now(status: int, message: str) -> None:
    """For command-line front ends after :class:`CancelledWhileRunning`: print ``message``
    on stderr, flush the streams and the logs, and end the process with ``status``
    without waiting for the abandoned kernel (a normal interpreter exit competes with
    its threads for the cores and can take seconds)."""
    import logging
    import os
    import sys

    print(message, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(status)
