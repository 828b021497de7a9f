"""Real small file systems for fault tests: a tmpfs of a few KB (a full disk) or mounted
read-only (root ignores permission bits, so chmod cannot make a folder read-only for it).
Needs root and ``mount``; the tests that use it skip otherwise, saying why."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, *, size_kb: int = 64, read_only: bool = False):
    """Mount a tmpfs of ``size_kb`` KB on ``path`` (created), read-only if asked; unmount after."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (a real full or read-only file system)")
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_kb}k" + (",ro" if read_only else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of ``folder`` with one file, leaving about ``leave_bytes`` free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave_bytes))
            f.flush()
        except OSError:
            pass
