"""Real packet loss, end to end (issue #26): the real clips' H.264 packets with bytes
zeroed in the middle (as a lossy link does) at several loss rates, decoded by FFmpeg
(PyAV) with its default concealment and with ``guess_mvs+deblock+favor_inter``, and
repaired by ``edgerestore.repair.lossy_stream.repair_decoded`` (on the second decode).

Per clip, loss rate and seed: PSNR (0-255) of the damaged frames (those whose best
FFmpeg decode differs from the clean decode) against the clean decode, mean over frames
and pooled, for each method; per-frame table; whether the frames before the first loss
come out bit for bit; ms per frame of the repair. The damage (which packets, which
bytes) is drawn here, apart from the repair code.

Usage::

    nice -n 10 python benchmarks/bench_repair_lossy.py          # writes benchmarks/results/repair_lossy.md
    python benchmarks/bench_repair_lossy.py --packets 60 --seeds 1 --out -
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.metrics import psnr  # noqa: E402
from edgerestore.repair.lossy_stream import (BEST_CONCEALMENT, cut_damaged_packets,  # noqa: E402
                                             damage_from_concealment, decode_stream, read_stream,
                                             repair_decoded)
from _machine import cpu_description  # noqa: E402
from _report import write_report  # noqa: E402

VIDEO = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
CLIPS = {"dashcam": "dashcam_solidWhiteRight.mp4", "pedestrians": "pedestrians_vtest.avi"}
RATES = (30, 10, 5)
METHODS = ("ffmpeg default", "ffmpeg best", "ours", "ours+refill")


def zero_packet_bytes(stream, one_in: int, seed: int):
    """A copy of ``stream`` where about one packet in ``one_in`` (never the first) has a run
    of bytes zeroed in its middle: from a random point in the middle half, an eighth of the
    packet (at least 16 bytes). Returns (stream, damaged packet indexes)."""
    rng = np.random.default_rng(seed)
    n = len(stream.packets)
    count = max(1, round((n - 1) / one_in))
    hit = sorted(int(i) for i in rng.choice(np.arange(1, n), count, replace=False))
    packets = list(stream.packets)
    for i in hit:
        b = bytearray(packets[i].data)
        size = len(b)
        start = int(rng.integers(size // 4, max(size // 4 + 1, 3 * size // 4)))
        end = min(size, start + max(16, size // 8))
        b[start:end] = bytes(end - start)
        packets[i] = dataclasses.replace(packets[i], data=bytes(b))
    return dataclasses.replace(stream, packets=packets), hit


def frame_psnr(ref: np.ndarray, img: np.ndarray) -> float:
    return psnr(ref, img, peak=255.0, cap_db=100.0)


def pooled_psnr(squared_errors) -> float:
    """PSNR (dB, 0-255) of one MSE pooled over frames (their mean squared errors)."""
    return 10 * math.log10(255.0 ** 2 / max(float(np.mean(squared_errors)), 1e-12))


def run(args) -> str:
    lines = ["# Real packet loss, end to end (bench_repair_lossy.py)", "",
             f"Machine: {cpu_description()}. Packets per clip: first {args.packets}; seeds {args.seeds}; "
             f"bytes zeroed in the middle of one packet in 30 / 10 / 5 (never the first).", "",
             "PSNR (dB, 0-255) of the damaged frames against the clean decode: mean over frames, and pooled "
             "(one MSE over all damaged frames). `ffmpeg best`: `ec=" + BEST_CONCEALMENT + "`; `ours`: "
             "packets cut at their zeroed run, then `ffmpeg best`; `ours+refill`: then `repair_decoded`. ms/frame: "
             "cut + decode of ours (the decode alone is most of it), and the refill on top. `before loss`: frames before the first damaged "
             "one, all bit for bit (yes/no).", "",
             "| clip | 1 in | seed | damaged frames | ffmpeg default | ffmpeg best | ours | ours+refill | "
             "ours - best | pooled best | pooled ours | before loss | ms/frame ours | ms/frame refill |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    per_frame = ["", "## Per frame (seed 0)", "", "| clip | 1 in | frame | corrupt flag | ffmpeg best | ours |",
                 "|---|---|---|---|---|---|"]
    summary: dict[tuple[str, int], list[float]] = {}
    for clip, name in CLIPS.items():
        path = VIDEO / name
        if not path.is_file():
            lines.append(f"| {clip} | missing {path} |")
            continue
        stream = read_stream(path)
        stream.packets = stream.packets[: args.packets]
        clean = {f.pts: f.image for f in decode_stream(stream, concealment=None)}
        for one_in in RATES:
            for seed in range(args.seeds):
                dam, hit = zero_packet_bytes(stream, one_in, seed)
                d_def = decode_stream(dam, concealment=None)
                d_best = decode_stream(dam, concealment=BEST_CONCEALMENT)
                t0 = time.perf_counter()
                cut, _ = cut_damaged_packets(dam)
                d_cut = decode_stream(cut, concealment=BEST_CONCEALMENT)
                t1 = time.perf_counter()
                if args.refill:
                    d_none = decode_stream(cut, concealment="0")
                    refilled, _ = repair_decoded(d_cut, damage_from_concealment(d_cut, d_none))
                    refilled = {f.pts: o for f, o in zip(d_cut, refilled)}
                else:
                    refilled = {}
                t2 = time.perf_counter()
                ms = (t1 - t0) * 1000 / max(1, len(d_cut))
                ms_refill = (t2 - t1) * 1000 / max(1, len(d_cut))
                ours_by_pts = {f.pts: f.image for f in d_cut}
                defs = {f.pts: f.image for f in d_def}
                res = {m: [] for m in METHODS}
                pooled = {m: [] for m in METHODS}
                first_bad = None
                before_ok = True
                for i, fr in enumerate(d_best):
                    ref = clean.get(fr.pts)
                    out = ours_by_pts.get(fr.pts, fr.image)
                    if ref is None:
                        continue
                    if np.array_equal(ref, fr.image):
                        if first_bad is None and not np.array_equal(out, ref):
                            before_ok = False
                        continue
                    if first_bad is None:
                        first_bad = i
                    cand = {"ffmpeg default": defs.get(fr.pts, fr.image), "ffmpeg best": fr.image, "ours": out,
                            "ours+refill": refilled.get(fr.pts, out)}
                    for m in METHODS:
                        if m == "ours+refill" and not args.refill:
                            continue
                        res[m].append(frame_psnr(ref, cand[m]))
                        pooled[m].append(float(np.mean((ref.astype(np.float64) - cand[m]) ** 2)))
                    if seed == 0:
                        per_frame.append(f"| {clip} | {one_in} | {i} | {int(fr.corrupt)} | "
                                         f"{res['ffmpeg best'][-1]:.2f} | {res['ours'][-1]:.2f} |")
                mean = {m: float(np.mean(v)) if v else math.nan for m, v in res.items()}
                pool = {m: pooled_psnr(v) if v else math.nan for m, v in pooled.items()}
                summary.setdefault((clip, one_in), []).append(mean["ours"] - mean["ffmpeg best"])
                lines.append(f"| {clip} | {one_in} | {seed} | {len(res['ours'])} | {mean['ffmpeg default']:.2f} | "
                             f"{mean['ffmpeg best']:.2f} | {mean['ours']:.2f} | {mean['ours+refill']:.2f} | "
                             f"{mean['ours'] - mean['ffmpeg best']:+.2f} | {pool['ffmpeg best']:.2f} | "
                             f"{pool['ours']:.2f} | {'yes' if before_ok else 'NO'} | {ms:.1f} | "
                             f"{ms_refill:.1f} |")
                print(lines[-1], flush=True)
    lines += ["", "Mean gain of ours over `ffmpeg best` (dB, mean over seeds):", ""]
    for (clip, one_in), g in summary.items():
        lines.append(f"* {clip}, 1 in {one_in}: {np.mean(g):+.2f}")
    return "\n".join(lines + per_frame) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=240)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--refill", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure ours+refill (slow: flow on every damaged frame)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "repair_lossy.md"))
    args = ap.parse_args()
    text = run(args)
    write_report(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
