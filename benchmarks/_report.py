"""Where a benchmark's Markdown report goes: a results file, or stdout for ``--out -``."""

from __future__ import annotations

from pathlib import Path


def write_report(text: str, out: str) -> None:
    """Print ``text`` when ``out`` is ``-``, else write it to the file ``out``."""
    if out == "-":
        print(text)
    else:
        Path(out).write_text(text)
