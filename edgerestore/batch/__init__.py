"""Whole archives: one work unit per video (or per chunk of a long video), run by a
local pool of processes or by Ray, resumable through a manifest in the output folder.

Layout: ``units`` (finding inputs, content hashes, work units, chunk ranges),
``work`` (restoring one unit in a worker: the only code that runs remotely),
``manifest`` (SQLite record of finished units), ``local`` (the process pool),
``ray_executor`` (the same units as Ray tasks), ``job`` (planning, running, joining
chunks, progress and the JSON report). ``edgerestore batch`` is a thin layer over
:func:`run_batch`. See docs/batch.md.
"""

from edgerestore.batch.job import BatchOptions, BatchReport, run_batch
from edgerestore.batch.units import VIDEO_EXTENSIONS, find_inputs

__all__ = ["BatchOptions", "BatchReport", "run_batch", "find_inputs", "VIDEO_EXTENSIONS"]
