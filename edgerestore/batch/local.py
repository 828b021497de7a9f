"""The local executor: a pool of worker processes on this machine.

Each worker process runs one unit at a time (its own inbox) and sends the result or the
error to the coordinator. The coordinator notices a worker that died mid-unit (killed,
out of memory: ``is_alive()`` false with its unit unanswered), starts a replacement and
resubmits the unit; a unit that fails ``tries`` times is reported with its last error.
Processes are started with ``spawn`` (no fork of a process that may hold threads).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from collections import deque

from edgerestore.batch.work import restore_unit


def worker_main(inbox, outbox, wid: int) -> None:
    """A worker process: restore units from ``inbox`` until None, or until the
    coordinator is gone (killed: its orphaned workers must not linger)."""
    parent = os.getppid()
    while True:
        try:
            unit = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if unit is None:
            return
        try:
            outbox.put((wid, unit["key"], restore_unit(unit), None))
        except Exception as exc:  # noqa: BLE001 - every error is the unit's result
            outbox.put((wid, unit["key"], None, f"{type(exc).__name__}: {exc}" if str(exc) else
                        traceback.format_exc(limit=1)))


class LocalPool:
    """``workers`` processes (None: the CPUs this process may use)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers or len(os.sched_getaffinity(0))
        self.ctx = mp.get_context("spawn")
        self.outbox = self.ctx.Queue()
        self.procs: dict[int, tuple] = {}
        self._next_id = 0

    def _start(self) -> int:
        wid = self._next_id
        self._next_id += 1
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(target=worker_main, args=(inbox, self.outbox, wid), daemon=True,
                                name=f"edgerestore-batch-{wid}")
        proc.start()
        self.procs[wid] = (proc, inbox)
        return wid

    def run(self, units: list[dict], tries: int, finished) -> None:
        """Run ``units``; ``finished(unit, result, error, tries)`` is called once per unit
        (result None and error set when it failed ``tries`` times)."""
        pending = deque((u, 1) for u in units)
        busy: dict[int, tuple[dict, int]] = {}
        idle = [self._start() for _ in range(min(self.workers, len(units)))]

        def failed(unit, attempt, error):
            if attempt < tries:
                pending.append((unit, attempt + 1))
            else:
                finished(unit, None, error, attempt)

        while pending or busy:
            while pending and idle:
                wid = idle.pop()
                unit, attempt = pending.popleft()
                busy[wid] = (unit, attempt)
                self.procs[wid][1].put(unit)
            try:
                wid, key, result, error = self.outbox.get(timeout=0.2)
            except queue.Empty:
                for wid in [w for w in busy if not self.procs[w][0].is_alive()]:
                    try:  # an answer sent just before the process ended comes first
                        msg = self.outbox.get(timeout=0.5)
                    except queue.Empty:
                        msg = None
                    if msg is not None:
                        self.outbox.put(msg)
                        break
                    unit, attempt = busy.pop(wid)
                    code = self.procs.pop(wid)[0].exitcode
                    idle.append(self._start())
                    failed(unit, attempt, f"worker process died (exit code {code})")
                continue
            unit, attempt = busy.pop(wid)
            idle.append(wid)
            if error is None:
                finished(unit, result, None, attempt)
            else:
                failed(unit, attempt, error)

    def close(self) -> None:
        for proc, inbox in self.procs.values():
            if proc.is_alive():
                inbox.put(None)
        for proc, _ in self.procs.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.procs.clear()
