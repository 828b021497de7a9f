"""Frame repair per damage kind on the real clips, with damage from a generator written
apart from the detector (``bench_repair_damage.py``), several seeds (issue #26).

For each clip (dash-cam 960x540, pedestrians shrunk to 640x360, carphone 176x144),
kind and seed: PSNR (0-255) inside the damaged pixels against the reference, for

* ``ours``: ``FrameRepairer()`` with no mask (frozen runs: ``fill_frozen=True``),
* ``telea+mask``: OpenCV Telea inpainting (radius 3) given the true mask,
* ``prev+mask``: the previous damaged frame's co-located pixels given the true mask,
* ``ours+mask``: ``FrameRepairer`` given the true mask, its detectors off;

the share of damaged pixels ours flagged, and the pixels it flagged outside the damage.
Then false repairs on the clean clips (whole clips, and 60 frames re-encoded with H.264
at 40 and 120 kbit/s) and ms per clean / damaged 960x540 frame.

Usage::

    python benchmarks/bench_repair_kinds.py                 # writes benchmarks/results/repair_kinds.md
    python benchmarks/bench_repair_kinds.py --frames 12 --seeds 1 --out -
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.metrics import psnr  # noqa: E402
from edgerestore.repair import FrameRepairer, RepairConfig, read_frames  # noqa: E402
from edgerestore.repair.synth import h264_round_trip  # noqa: E402
from _machine import cpu_description  # noqa: E402  (benchmarks/ is on sys.path as a script)
from _report import write_report  # noqa: E402
from bench_repair_damage import KINDS  # noqa: E402

VIDEO = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data")) / "video"
CLIPS = {"dashcam": ("dashcam_solidWhiteRight.mp4", 40, None),
         "pedestrians": ("pedestrians_vtest.avi", 40, (640, 360)),
         "carphone": ("carphone_pristine.mp4", 30, None)}
METHODS = ("ours", "telea+mask", "prev+mask", "ours+mask")


def pooled_psnr(refs, outs, masks) -> float:
    a = [r[m] for r, m in zip(refs, masks) if m.any()]
    if not a:
        return math.nan
    b = [o[m] for o, m in zip(outs, masks) if m.any()]
    return psnr(np.concatenate(a), np.concatenate(b), peak=255.0, cap_db=100.0)


def repair_all(frames, config=None, mask=None):
    rep = FrameRepairer(config, mask=mask)
    outs = rep.repair_clip(frames)
    return [o.image for o in outs], [o.mask for o in outs]


def methods(damaged, masks, kind: str) -> dict[str, list[np.ndarray] | None]:
    frozen = kind.startswith("frozen")
    ours, flagged = repair_all(damaged, RepairConfig(fill_frozen=True) if frozen else None)
    out = {"ours": ours, "_flagged": flagged}
    if frozen:
        out["telea+mask"] = None      # a whole frame: nothing to inpaint from
    else:
        out["telea+mask"] = [cv2.inpaint(d, m.astype(np.uint8), 3, cv2.INPAINT_TELEA) if m.any() else d
                             for d, m in zip(damaged, masks)]
    prev = []
    for i, (d, m) in enumerate(zip(damaged, masks)):
        p = d.copy()
        src = damaged[i - 1] if i else damaged[min(1, len(damaged) - 1)]
        p[m] = src[m]
        prev.append(p)
    out["prev+mask"] = prev
    out["ours+mask"] = repair_all(damaged, RepairConfig(detect=("dropped",), fill_frozen=frozen),
                                  mask=[m.astype(np.uint8) * 255 for m in masks])[0]
    return out


def fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def run_kinds(n: int, seeds: list[int], kinds: list[str] | None = None,
              clips: list[str] | None = None, crop: tuple[int, int] = (0, 0)) -> tuple[list[str], list[str]]:
    """``crop``: rows and columns cut from the top and left of every frame *after* the
    damage, so the codec's macroblock grid no longer starts at the corner (a cropped
    stream)."""
    dy, dx = crop
    summary = ["| clip | kind | seed | damaged px | found | flagged outside | ours | telea+mask | prev+mask | ours+mask |",
               "|---|---|---|---|---|---|---|---|---|---|"]
    per_frame = ["| clip | kind | frame | ours | telea+mask | prev+mask | ours+mask |", "|---|---|---|---|---|---|---|"]
    means: dict[tuple[str, str], list[dict]] = {}
    for clip, (file, start, size) in CLIPS.items():
        if clips and clip not in clips:
            continue
        frames = read_frames(VIDEO / file, count=n, start=start, size=size)
        frames = [f[: f.shape[0] - f.shape[0] % 2, : f.shape[1] - f.shape[1] % 2] for f in frames]
        for kind, make in KINDS.items():
            if kinds and kind not in kinds:
                continue
            for seed in seeds:
                damaged, ref, masks = make(frames, seed)
                if dy or dx:
                    damaged, ref, masks = ([x[dy:, dx:] for x in seq] for seq in (damaged, ref, masks))
                res = methods(damaged, masks, kind)
                flagged = [f if f is not None else np.zeros(m.shape, bool) for f, m in zip(res["_flagged"], masks)]
                if kind.startswith("frozen"):   # a frozen frame is flagged as a whole when filled
                    flagged = [np.full(m.shape, not np.array_equal(o, d)) for o, d, m in zip(res["ours"], damaged, masks)]
                tot = int(sum(m.sum() for m in masks))
                found = int(sum((f & m).sum() for f, m in zip(flagged, masks)))
                outside = int(sum((f & ~m).sum() for f, m in zip(flagged, masks)))
                row = {k: (pooled_psnr(ref, res[k], masks) if res[k] is not None else math.nan) for k in METHODS}
                means.setdefault((clip, kind), []).append(row)
                summary.append(f"| {clip} | {kind} | {seed} | {tot} | {found / max(tot, 1):.1%} | {outside} | "
                               + " | ".join(fmt(row[k]) for k in METHODS) + " |")
                if seed == seeds[0]:
                    for i, m in enumerate(masks):
                        if m.any():
                            vals = [fmt(pooled_psnr([ref[i]], [res[k][i]], [m])) if res[k] is not None else "-"
                                    for k in METHODS]
                            per_frame.append(f"| {clip} | {kind} | {i} | " + " | ".join(vals) + " |")
                print(summary[-1], flush=True)
    mean_rows = ["| clip | kind | ours | telea+mask | prev+mask | ours+mask | ours - best baseline |",
                 "|---|---|---|---|---|---|---|"]
    for (clip, kind), rows in means.items():
        m = {k: float(np.nanmean([r[k] for r in rows])) if not all(math.isnan(r[k]) for r in rows) else math.nan
             for k in METHODS}
        best = np.nanmax([m["telea+mask"], m["prev+mask"]])
        mean_rows.append(f"| {clip} | {kind} | " + " | ".join(fmt(m[k]) for k in METHODS) + f" | {m['ours'] - best:+.2f} |")
    return mean_rows + ["", "Per seed:", ""] + summary, per_frame


def run_clean(n_encoded: int) -> list[str]:
    rows = ["| clip | frames | frames touched | pixels touched | frames repaired (report) |", "|---|---|---|---|---|"]
    for clip, (file, _start, size) in list(CLIPS.items()) + [("carphone_distorted", ("carphone_distorted.mp4", 0, None))]:
        frames = read_frames(VIDEO / file, size=size)
        small = [f[: f.shape[0] - f.shape[0] % 2, : f.shape[1] - f.shape[1] % 2] for f in frames[:n_encoded]]
        if small[0].shape[1] > 480:
            small = [cv2.resize(f, (480, 270 - 270 % 2), interpolation=cv2.INTER_AREA) for f in small]
        variants = [(f"{clip}", frames)] + [(f"{clip}, H.264 {k} kbit/s", h264_round_trip(small, k * 1000))
                                           for k in (40, 120)]
        for name, clip_frames in variants:
            rep = FrameRepairer()
            outs = rep.repair_clip(clip_frames)
            touched = [int((o.image != f).any(axis=-1).sum()) for o, f in zip(outs, clip_frames)]
            rows.append(f"| {name} | {len(clip_frames)} | {sum(t > 0 for t in touched)} | {sum(touched)} | "
                        f"{rep.report()['frames_repaired']} |")
            print(rows[-1], flush=True)
    return rows


def run_speed() -> list[str]:
    from bench_repair_damage import lost_slices

    frames = read_frames(VIDEO / CLIPS["dashcam"][0], count=24, start=40)
    damaged, _, _ = lost_slices(frames, 0)
    out = []
    for name, clip in (("clean", frames), ("every other frame damaged", damaged)):
        repair_all(clip[:3])     # warm up (OpenCV allocations)
        t = time.perf_counter()
        repair_all(clip)
        out.append((name, (time.perf_counter() - t) * 1000 / len(clip)))
    clean_ms, half_ms = out[0][1], out[1][1]
    return ["| 960x540 | ms per frame |", "|---|---|", f"| clean frame | {clean_ms:.1f} |",
            f"| clip with every other frame damaged | {half_ms:.1f} |",
            f"| damaged frame (2 x that - clean) | {2 * half_ms - clean_ms:.1f} |"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--encoded-frames", type=int, default=60)
    ap.add_argument("--kinds", nargs="+", choices=list(KINDS), metavar="KIND",
                    help=f"damage kinds to run (default all: {', '.join(KINDS)})")
    ap.add_argument("--clips", nargs="+", choices=list(CLIPS), help="clips to damage (default all)")
    ap.add_argument("--crop", nargs=2, type=int, default=(0, 0), metavar=("DY", "DX"),
                    help="cut DY rows and DX columns off the top and left after the damage (a cropped stream)")
    ap.add_argument("--no-clean", action="store_true", help="skip the false-repair check on clean clips")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "repair_kinds.md"))
    a = ap.parse_args(argv)
    kinds, per_frame = run_kinds(a.frames, list(range(a.seeds)), a.kinds, a.clips, tuple(a.crop))
    clean = [] if a.no_clean else run_clean(a.encoded_frames)
    speed = [] if a.no_speed else run_speed()
    text = "\n".join([
        "# Frame repair per damage kind (issue #26)", "",
        f"`python benchmarks/bench_repair_kinds.py --frames {a.frames} --seeds {a.seeds}"
        + (f" --crop {a.crop[0]} {a.crop[1]}" if any(a.crop) else "") + f"` on {cpu_description()}.",
        "Damage from `benchmarks/bench_repair_damage.py` (apart from the detector). PSNR in dB (0-255) inside",
        "the damaged pixels, pooled over the clip; `found`: share of damaged pixels ours flagged; `flagged",
        "outside`: pixels ours flagged that were not damaged. Frozen runs: ours with `fill_frozen=True`.", "",
        "## Mean over seeds", "", *kinds, "", "## False repairs on clean clips", "", *clean, "",
        "## Speed", "", *speed, "", "## Per frame (first seed)", "", *per_frame, ""])
    write_report(text, a.out)
    if a.out != "-":
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
