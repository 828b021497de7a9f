"""The time-boxed, interruptible loop both recipes run, and what it uses while running.

:func:`run_loop` steps, logs, validates and saves until the time budget, a step limit
or SIGINT/SIGTERM (:func:`stop_on_signals`) stops it; :class:`JsonlLog` writes the run's
``log.jsonl``; :class:`ThreadTuner` picks 1 or 2 torch threads on a shared CPU. Nothing
here imports torch at module level.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from edgerestore.training.state import LoopState

log = logging.getLogger("edgerestore.training")


class ThreadTuner:
    """``threads="auto"``: use 1 or 2 torch threads, whichever steps faster right now.

    On a CPU shared with other jobs, two threads of a niced process wait for each other
    whenever one of them is preempted, and one thread is often faster; on an idle
    machine two are. Every ``every_s`` seconds, ``probe`` steps run with the other count
    and the faster count (median step time) is kept. An int fixes the count; None leaves
    torch's default. (Thread counts change float summation order, so a run that must be
    bit-reproducible uses a fixed count.)
    """

    def __init__(self, torch, threads: int | str | None, every_s: float = 120.0, probe: int = 8,
                 choices: tuple[int, int] = (1, 2)) -> None:
        self.torch, self.auto = torch, threads == "auto"
        self.every_s, self.probe, self.choices = every_s, probe, choices
        self.times: list[float] = []
        self.probing_since: int | None = None
        self.baseline = 0.0
        self.last_probe = time.monotonic()
        if self.auto:
            self.current = choices[-1]
            torch.set_num_threads(self.current)
        elif threads:
            torch.set_num_threads(int(threads))

    def observe(self, step: int, dt: float, logj: Callable[..., None]) -> None:
        """Record that global step ``step`` took ``dt`` seconds; switch the thread count
        when a probe is due or done (``logj("threads", ...)`` logs each decision)."""
        if not self.auto:
            return
        self.times.append(dt)
        self.times = self.times[-self.probe:]
        if self.probing_since is None:
            if time.monotonic() - self.last_probe >= self.every_s and len(self.times) >= self.probe:
                self.baseline = sorted(self.times)[len(self.times) // 2]
                self.probing_since = step
                other = self.choices[0] if self.current == self.choices[-1] else self.choices[-1]
                self.torch.set_num_threads(other)
                self.times = []
        elif step - self.probing_since >= self.probe:
            probe = sorted(self.times[1:])[len(self.times[1:]) // 2]
            other = self.torch.get_num_threads()
            if probe < self.baseline:
                self.current = other
            self.torch.set_num_threads(self.current)
            logj("threads", baseline_s=self.baseline, probe_s=probe, probed=other, chosen=self.current)
            self.probing_since = None
            self.times = []
            self.last_probe = time.monotonic()


class JsonlLog:
    """Append one JSON object per line to ``path`` (``kind``, UTC time, step, fields) and
    echo it to the ``edgerestore.training`` logger."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.step = 0

    def __call__(self, kind: str, **kw: Any) -> None:
        rec = {"kind": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "step": self.step, **kw}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.log(logging.WARNING if kind == "warning" else logging.INFO, "%s", json.dumps(rec))


@contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[list[str]]:
    """While active, SIGINT/SIGTERM append their name to the yielded list instead of
    killing the process (the loop checks it and saves); handlers restored on exit."""
    reasons: list[str] = []
    old = {}
    if enabled:
        def _on_signal(signum, _frame):
            reasons.append(signal.Signals(signum).name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, _on_signal)
            except ValueError:  # not the main thread
                pass
    try:
        yield reasons
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_loop(state: LoopState, *, train_step: Callable[[int], tuple[Any, float]],
             validate: Callable[[], dict[str, float]] | None, best_key: str,
             save: Callable[[str], None], log: JsonlLog, tuner: ThreadTuner, batch: int,
             minutes: float, max_steps: int | None, val_every: int, log_every: int,
             save_minutes: float, last_path: Path, handle_signals: bool = True,
             on_step: Callable[[int, float], None] | None = None) -> str:
    """The time-boxed, interruptible loop both recipes run; returns why it stopped.

    ``train_step(step)`` does one optimisation step (global step ``step`` before it)
    and returns ``(loss tensor, learning rate)``; ``after_step`` hooks (EMA) belong in
    it. Every ``log_every`` steps a ``train`` line (mean loss, lr, patches/s); every
    ``val_every`` steps ``validate()`` and, when ``metrics[best_key]`` improves,
    ``save("best")``; ``save("last")`` every ``save_minutes`` and at the end. Stops at
    the time budget, at ``max_steps``, or on SIGINT/SIGTERM.
    """
    t_start = time.monotonic()
    t_saved = t_start
    t_window, window_loss, window_n = time.monotonic(), 0.0, 0

    def logj(kind: str, **kw: Any) -> None:
        log.step = state.step
        log(kind, **kw)

    with stop_on_signals(handle_signals) as stop_reason:
        while True:
            if stop_reason:
                break
            if max_steps is not None and state.step >= max_steps:
                stop_reason.append("max_steps")
                break
            if time.monotonic() - t_start >= minutes * 60.0:
                stop_reason.append("time_budget")
                break
            t0 = time.monotonic()
            loss, lr = train_step(state.step)
            state.step += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise RuntimeError(f"training diverged at step {state.step}: loss {lv}")
            state.patches_seen += batch
            dt = time.monotonic() - t0
            state.train_seconds += dt
            tuner.observe(state.step, dt, logj)
            window_loss += lv
            window_n += 1
            if on_step:
                on_step(state.step, lv)
            if state.step % log_every == 0:
                now = time.monotonic()
                logj("train", loss=window_loss / window_n, lr=lr,
                     patches_per_s=window_n * batch / max(1e-9, now - t_window),
                     patches_seen=state.patches_seen)
                t_window, window_loss, window_n = now, 0.0, 0
            if validate is not None and val_every and state.step % val_every == 0:
                state.last_val = validate()
                is_best = state.best is None or state.last_val[best_key] > state.best
                if is_best:
                    state.best = state.last_val[best_key]
                    save("best")
                logj("val", ema=True, best=is_best, **state.last_val)
            if time.monotonic() - t_saved >= save_minutes * 60.0:
                save("last")
                t_saved = time.monotonic()
                logj("save", path=str(last_path))
    save("last")
    reason = stop_reason[0] if stop_reason else "done"
    logj("stop", reason=reason, patches_seen=state.patches_seen, train_seconds=state.train_seconds)
    return reason
