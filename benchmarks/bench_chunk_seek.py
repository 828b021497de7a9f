"""How much decoding a chunk of a batch job saves by seeking (issue #25): the frames
``[start, start + chunk)`` of the real clips read with ``VideoFileSource(start_frame=start)``
(seek to the keyframe at or before, decode forward) against decoding from the beginning
and dropping the frames before ``start`` (what a chunk did before), for a chunk in the
middle and the last one. Both ways are checked to give the same frames bit for bit.
Times are medians of interleaved repeats in one process (the machine is shared).

Usage::

    nice -n 10 python benchmarks/bench_chunk_seek.py      # writes benchmarks/results/chunk_seek.md
    python benchmarks/bench_chunk_seek.py --repeats 1 --out -
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.runtime.sources import VideoFileSource  # noqa: E402
from _machine import cpu_description  # noqa: E402
from _report import write_report  # noqa: E402

VIDEO = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
CLIPS = {"dashcam (960x540, H.264 MP4, keyframe every 30)": "dashcam_solidWhiteRight.mp4",
         "pedestrians (1280x720, H.264 AVI with drop frames, keyframe every 128)": "pedestrians_vtest.avi"}


def read_chunk(path: Path, start: int, count: int, seek: bool) -> tuple[float, list[np.ndarray]]:
    """Seconds to open and read frames ``[start, start + count)``, and those frames."""
    t0 = time.perf_counter()
    src = VideoFileSource(path, hardware="off", start_frame=start if seek else 0)
    frames = []
    with src:
        for f in src:
            if f.index >= start + count:
                break
            if f.index >= start:
                frames.append(f.image)
    return time.perf_counter() - t0, frames


def run(args) -> str:
    lines = ["# Chunks by seeking (bench_chunk_seek.py)", "",
             f"Machine: {cpu_description()}. Chunk of {args.chunk} frames; median of {args.repeats} interleaved "
             "repeats; software decoding, exact colour conversion (the offline default).", "",
             "| clip | frames | chunk start | decode and drop (s) | seek (s) | saved | same frames |",
             "|---|---|---|---|---|---|---|"]
    for label, name in CLIPS.items():
        path = VIDEO / name
        if not path.is_file():
            lines.append(f"| {label} | missing {path} |")
            continue
        with VideoFileSource(path, hardware="off") as src:
            n = src.frame_count
        for start in (n // 2, max(0, n - args.chunk)):
            times = {True: [], False: []}
            same = True
            for _ in range(args.repeats):
                for seek in (False, True):
                    s, frames = read_chunk(path, start, args.chunk, seek)
                    times[seek].append(s)
                    if seek:
                        same = same and len(frames) == len(ref) and all(np.array_equal(a, b) for a, b in zip(frames, ref))
                    else:
                        ref = frames
            drop, seek = statistics.median(times[False]), statistics.median(times[True])
            lines.append(f"| {label} | {n} | {start} | {drop:.2f} | {seek:.2f} | {1 - seek / drop:.0%} | "
                         f"{'yes' if same else 'NO'} |")
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "chunk_seek.md"))
    args = ap.parse_args()
    text = run(args)
    write_report(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
