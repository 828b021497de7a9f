"""How many CPU threads the Numba kernels use, per calling thread."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


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
