"""The bounded channel between two pipeline threads, and the markers that travel on it."""

from __future__ import annotations

import threading
from collections import deque


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


END_OF_STREAM = _Marker("END_OF_STREAM")
"""Put after the last frame; every worker passes it on after its own last frames."""

STOPPING = _Marker("STOPPING")
"""Returned by :meth:`Channel.get` when the run is being torn down (nothing left to take)."""

NOTHING_YET = _Marker("NOTHING_YET")
"""Returned by :meth:`Channel.get` when nothing arrived within the timeout."""


class Channel:
    """A bounded FIFO between two threads.

    ``maxsize``: items waiting at most. A full channel blocks :meth:`put` until there is
    room or the run stops; with ``drop_oldest`` (the first channel in live mode) put()
    never blocks: the oldest waiting item is dropped and counted in ``dropped``.
    """

    def __init__(self, maxsize: int, drop_oldest: bool = False):
        self.maxsize = max(1, int(maxsize))
        self.drop_oldest = drop_oldest
        self.items: deque = deque()
        self.cv = threading.Condition()
        self.dropped = 0

    def put(self, item, stop: threading.Event, *, force: bool = False) -> None:
        """Append ``item``; ``force`` appends even when full or stopping (end markers)."""
        with self.cv:
            if not force:
                if self.drop_oldest:
                    while len(self.items) >= self.maxsize:
                        self.items.popleft()
                        self.dropped += 1
                else:
                    while len(self.items) >= self.maxsize and not stop.is_set():
                        self.cv.wait(0.1)
                    if stop.is_set():
                        return
            self.items.append(item)
            self.cv.notify_all()

    def get(self, stop: threading.Event, timeout: float = 0.1):
        """The oldest item; :data:`STOPPING` when empty and ``stop`` is set;
        :data:`NOTHING_YET` when nothing came within ``timeout`` seconds."""
        with self.cv:
            if not self.items:
                if stop.is_set():
                    return STOPPING
                self.cv.wait(timeout)
                if not self.items:
                    return STOPPING if stop.is_set() else NOTHING_YET
            item = self.items.popleft()
            self.cv.notify_all()
            return item
