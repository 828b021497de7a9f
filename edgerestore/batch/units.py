"""Inputs, content hashes and work units of a batch job.

A unit is one video, or one chunk ``[start, stop)`` of a long video restored from
``start - overlap`` to ``stop + overlap`` (the neighbours the pipeline's window stages
need), keeping only its own frames. Units are plain dicts of strings and numbers so that
they cross process and machine boundaries (pickle, Ray) unchanged.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

from edgerestore.errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg"})


def find_inputs(pattern: str) -> tuple[Path, list[Path]]:
    """The videos of ``pattern`` (a folder, searched recursively, or a glob, ``**`` allowed)
    and the root that output names are made relative to. Raises :class:`InputError` when
    nothing matches."""
    path = Path(pattern)
    if path.is_dir():
        root = path
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    elif path.is_file():
        root, files = path.parent, [path]
    else:
        files = [Path(p) for p in glob.glob(pattern, recursive=True)]
        files = [p for p in files if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
        root = Path(glob.escape(pattern).split("*")[0].split("?")[0].split("[")[0] or ".")
        root = root if root.is_dir() else root.parent
    if not files:
        raise InputError(f"no video found in {pattern!r} (extensions: {', '.join(sorted(VIDEO_EXTENSIONS))}); "
                         "give a folder of videos or a glob such as 'archive/**/*.mp4' (quoted)")
    return root, sorted(files, key=lambda p: str(p))


def output_for(root: Path, video: Path, outdir: Path, suffix: str = ".mkv") -> Path:
    """``outdir`` / the input's path below ``root`` with ``suffix`` (subfolders mirrored)."""
    try:
        rel = video.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(video.name)
    return outdir / rel.parent / (rel.stem + suffix)


def content_hash(path: Path, block: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def unit_key(content: str, recipe: str, version: str, chunk: tuple[int, int] | None = None) -> str:
    """The manifest key: input content, the recipe (pipeline and output options), the
    edgerestore version and, for a chunk, its frame range."""
    text = "\n".join([content, recipe, version, "" if chunk is None else f"{chunk[0]}-{chunk[1]}"])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def chunk_ranges(frames: int, chunk_frames: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of ``chunk_frames`` frames covering ``frames`` frames
    (one range when not chunking or when the video is short)."""
    if not chunk_frames or frames <= chunk_frames:
        return [(0, frames)]
    return [(s, min(s + chunk_frames, frames)) for s in range(0, frames, chunk_frames)]


def worker_name() -> str:
    """``host:pid`` of this process (the report's worker)."""
    return f"{os.uname().nodename}:{os.getpid()}"
