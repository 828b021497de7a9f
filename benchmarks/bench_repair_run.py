"""Real packet loss through ``edgerestore run`` (issue #26): the real clips' H.264 packets
with bytes zeroed in their middle (drawn as in ``bench_repair_lossy.py``), written back
into a file (packets copied; Matroska for the AVI clip), then run with ``--pipeline none`` (FFmpeg's default
decode) and ``--pipeline repair`` (the source cuts the damaged packets and decodes with
FFmpeg's best concealment, the stage looks at the frames flagged corrupt), both into
lossless FFV1, compared with the clean file's decode.

Per clip, loss rate and seed: frames damaged (where ``none`` differs from the clean
decode), PSNR (dB, 0-255) of those frames for each, mean and pooled, the worst frame of
each, frames repair made worse than ``none``, whether the frames before the first loss
are bit for bit, and the stage's ms per frame. Per-frame table for seed 0.

Usage::

    nice -n 10 python benchmarks/bench_repair_run.py        # writes benchmarks/results/repair_run.md
    python benchmarks/bench_repair_run.py --packets 60 --seeds 1 --out -
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_repair_lossy import frame_psnr, pooled_psnr, zero_packet_bytes  # noqa: E402
from edgerestore.repair.lossy_stream import read_stream  # noqa: E402
from edgerestore.repair.stage import RepairStage  # noqa: E402
from edgerestore.runtime import Pipeline, sinks, sources  # noqa: E402
from _machine import cpu_description  # noqa: E402
from _report import write_report  # noqa: E402

VIDEO = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
CLIPS = {"dashcam": "dashcam_solidWhiteRight.mp4", "pedestrians": "pedestrians_vtest.avi"}
RATES = (30, 10, 5)


def write_packets(src: Path, dst: Path, datas: list[bytes] | None, count: int) -> Path:
    """``dst``: the first ``count`` video packets of ``src`` copied,
    with their payloads replaced by ``datas`` (None: unchanged)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        k = 0
        for p in inp.demux(vin):
            if not p.size:
                continue
            if k >= count:
                break
            if datas is not None:
                q = av.Packet(datas[k])
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                p = q
            p.stream = vout
            out.mux(p)
            k += 1
    return dst


def decode(path: Path) -> dict[int, np.ndarray]:
    with sources.VideoFileSource(path, hardware="off") as src:
        return {f.index: f.image for f in src}


def run_pipeline(clip: Path, pipeline: str, out: Path, **source_options) -> tuple[dict[int, np.ndarray], float]:
    src = sources.VideoFileSource(clip, hardware="off", **source_options)
    with Pipeline(pipeline, mode="offline") as pipe:
        report = pipe.run(src, sinks.VideoFileSink(out, lossless=True), progress=False)
    stage_ms = report.stages[0]["mean_ms"] if report.stages else 0.0
    return decode(out), stage_ms


def run(args) -> str:
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    lines = ["# Real packet loss through `edgerestore run` (bench_repair_run.py)", "",
             f"Machine: {cpu_description()}. Packets per clip: first {args.packets}; seeds {args.seeds}; bytes "
             "zeroed in the middle of one packet in 30 / 10 / 5 (never the first), drawn by "
             "`bench_repair_lossy.zero_packet_bytes`, written back into a file (MP4 for the MP4 clip, Matroska for the AVI one).", "",
             "`none`: `run lossy --pipeline none` (FFmpeg's default decode); `repair`: `run lossy --pipeline "
             "repair` (packets cut at zeroed bytes, FFmpeg's best concealment, the stage on corrupt-flagged "
             "frames); `source only`: the same source (cut, concealment) without the stage. PSNR (dB, 0-255) against the clean clip's decode over the damaged frames (where `none` "
             "differs from it): mean over frames, pooled (one MSE), and the worst frame; `worse`: damaged frames "
             "where repair is below none; `before loss`: frames before the first damaged one bit for bit in "
             "repair's output; ms/frame: the repair stage alone.", "",
             "| clip | 1 in | seed | damaged frames | none | source only | repair | gain | pooled none | "
             "pooled repair | worst none | worst repair | worse | before loss | stage ms/frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    per_frame = ["", "## Per frame (seed 0)", "", "| clip | 1 in | frame | none | source only | repair |",
                 "|---|---|---|---|---|---|"]
    gains: dict[tuple[str, int], list[float]] = {}
    for clip, name in CLIPS.items():
        path = VIDEO / name
        if not path.is_file():
            lines.append(f"| {clip} | missing {path} |")
            continue
        ext = ".mp4" if path.suffix == ".mp4" else ".mkv"  # FFmpeg's AVI muxer refuses these packets copied
        clean_path = write_packets(path, tmp / f"{clip}_clean{ext}", None, args.packets)
        clean = decode(clean_path)
        stream = read_stream(clean_path)
        for one_in in RATES:
            for seed in range(args.seeds):
                damaged, _hit = zero_packet_bytes(stream, one_in, seed)
                lossy = write_packets(clean_path, tmp / f"{clip}_lossy{ext}", [p.data for p in damaged.packets],
                                      len(damaged.packets))
                t0 = time.perf_counter()
                none, _ = run_pipeline(lossy, "none", tmp / "none.mkv")
                rep, ms = run_pipeline(lossy, "repair", tmp / "repair.mkv")
                cut, _ = run_pipeline(lossy, "none", tmp / "cut.mkv", **RepairStage.source_request)
                print(f"{clip} 1/{one_in} seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                damaged_frames = [i for i in sorted(clean) if i in none and not np.array_equal(none[i], clean[i])]
                first = damaged_frames[0] if damaged_frames else len(clean)
                before_ok = all(i in rep and np.array_equal(rep[i], clean[i]) for i in range(first))
                p_none, p_rep, p_cut, se_none, se_rep = [], [], [], [], []
                for i in damaged_frames:
                    r = rep.get(i)
                    if r is None:
                        continue
                    p_none.append(frame_psnr(clean[i], none[i]))
                    p_rep.append(frame_psnr(clean[i], r))
                    p_cut.append(frame_psnr(clean[i], cut[i]) if i in cut else math.nan)
                    se_none.append(np.mean((clean[i].astype(np.float64) - none[i]) ** 2))
                    se_rep.append(np.mean((clean[i].astype(np.float64) - r) ** 2))
                    if seed == 0:
                        per_frame.append(f"| {clip} | {one_in} | {i} | {p_none[-1]:.2f} | {p_cut[-1]:.2f} | "
                                         f"{p_rep[-1]:.2f} |")
                if not p_none:
                    lines.append(f"| {clip} | {one_in} | {seed} | 0 | | | | | | | | | | {'yes' if before_ok else 'NO'} | "
                                 f"{ms:.1f} |")
                    continue

                gain = float(np.mean(p_rep) - np.mean(p_none))
                gains.setdefault((clip, one_in), []).append(gain)
                worse = sum(r < n - 0.01 for r, n in zip(p_rep, p_none))
                lines.append(f"| {clip} | {one_in} | {seed} | {len(p_none)} | {np.mean(p_none):.2f} | "
                             f"{np.nanmean(p_cut):.2f} | {np.mean(p_rep):.2f} | {gain:+.2f} | {pooled_psnr(se_none):.2f} | {pooled_psnr(se_rep):.2f} | "
                             f"{min(p_none):.2f} | {min(p_rep):.2f} | {worse} | {'yes' if before_ok else 'NO'} | "
                             f"{ms:.1f} |")
                print(lines[-1], flush=True)
    lines += ["", "Mean gain of repair over none (dB, mean over seeds):", ""]
    for (clip, one_in), g in gains.items():
        lines.append(f"* {clip}, 1 in {one_in}: {np.mean(g):+.2f}")
    return "\n".join(lines + per_frame) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=240)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--tmp", default="/tmp/edgerestore-bench-repair-run")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "repair_run.md"))
    args = ap.parse_args()
    text = run(args)
    write_report(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
