"""The job manifest: ``<outdir>/.edgerestore-batch/manifest.sqlite``.

SQLite rather than JSONL: a rerun looks units up by key without reading the whole file
(an index; 10^6 units stay cheap), each record is one committed transaction (a job
killed mid-write leaves the earlier records intact, with no torn last line to repair),
and the file hash cache is updated in place. Only the coordinating process writes it;
workers never open it (on a cluster they may not even see the same path through a
lock-safe filesystem).

Tables: ``units`` (key -> input, output, status ``done``/``failed``, frames, seconds,
worker, tries, error, time) and ``hashes`` (path, size, mtime -> SHA-256), so a rerun
does not read every input again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from edgerestore.batch.units import content_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    key TEXT PRIMARY KEY, input TEXT, output TEXT, status TEXT, frames INTEGER,
    seconds REAL, worker TEXT, tries INTEGER, error TEXT, recipe TEXT, version TEXT, finished REAL);
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
"""


def manifest_dir(outdir: str | os.PathLike) -> Path:
    """The folder in ``outdir`` that holds the manifest and the running units' claims."""
    return Path(outdir) / ".edgerestore-batch"


class Manifest:
    """The manifest of a job in ``outdir`` (created on first use)."""

    def __init__(self, outdir: str | os.PathLike):
        folder = manifest_dir(outdir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "manifest.sqlite"
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        # No fsync per commit: after a power loss the last records may be missing (those
        # units are redone), never torn; the commit costs microseconds instead of an fsync.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def file_hash(self, path: Path) -> str:
        """SHA-256 of ``path``, from the cache when its size and mtime are unchanged."""
        st = path.stat()
        key = str(path.resolve())
        row = self.db.execute("SELECT size, mtime_ns, sha256 FROM hashes WHERE path=?", (key,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        digest = content_hash(path)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO hashes VALUES (?,?,?,?)", (key, st.st_size, st.st_mtime_ns, digest))
        return digest

    def is_done(self, key: str, output: str | os.PathLike) -> bool:
        """True when ``key`` finished and its output is still there."""
        row = self.db.execute("SELECT status FROM units WHERE key=?", (key,)).fetchone()
        return bool(row) and row[0] == "done" and Path(output).is_file()

    def record(self, key: str, *, input: str, output: str, status: str, frames: int = 0, seconds: float = 0.0,
               worker: str = "", tries: int = 1, error: str = "", recipe: str = "", version: str = "") -> None:
        """Record a finished (``done``) or given-up (``failed``) unit, in one transaction."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO units VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            (key, input, output, status, frames, seconds, worker, tries, error, recipe, version,
                             time.time()))

    def get(self, key: str) -> dict | None:
        """The record of ``key``, or None."""
        cur = self.db.execute("SELECT * FROM units WHERE key=?", (key,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row))
