"""The Ray executor: each unit is a Ray task (one CPU).

Ray retries a task whose worker process died (``max_retries``) and, with
``retry_exceptions``, one that raised; after ``tries`` attempts the error is reported.
``on``: ``"ray"`` starts (or joins) a Ray on this machine; anything else is an address
for ``ray.init`` (``ray://head:10001``, ``auto``). ``workers``: tasks in flight at a time
(None: as many as Ray schedules). Ray is imported only here.
"""

from __future__ import annotations

import importlib

from edgerestore.batch.work import restore_unit
from edgerestore.errors import MissingDependencyError


def import_ray():
    """The ``ray`` module, or an error naming the extra to install."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise MissingDependencyError("edgerestore batch --on ray needs Ray: pip install 'edgerestore[ray]' "
                                     "(or: pip install 'ray>=2.9')") from None


class RayExecutor:
    def __init__(self, on: str, workers: int | None = None):
        self.ray = import_ray()
        self.workers = workers
        self.started = False
        if not self.ray.is_initialized():
            address = None if on == "ray" else on
            kwargs = {"num_cpus": workers} if address is None and workers else {}
            self.ray.init(address=address, log_to_driver=False, **kwargs)
            self.started = True
        self.name = "ray" if on == "ray" else f"ray ({on})"

    def run(self, units: list[dict], tries: int, finished) -> None:
        ray = self.ray
        task = ray.remote(num_cpus=1, max_retries=max(tries - 1, 0), retry_exceptions=True)(restore_unit)
        limit = self.workers or len(units)
        todo = list(reversed(units))
        flight: dict = {}
        while todo or flight:
            while todo and len(flight) < limit:
                unit = todo.pop()
                flight[task.remote(unit)] = unit
            ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
            for ref in ready:
                unit = flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    finished(unit, None, f"{type(cause).__name__}: {cause}", tries)
                except ray.exceptions.RayError as exc:
                    finished(unit, None, f"{type(exc).__name__}: {exc}".splitlines()[0], tries)
                else:
                    finished(unit, result, None, 1)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
