"""Benchmark of motion-compensated temporal denoising (issue #22), all methods side by
side in one run, on the real clips of ``../shared/data/video``.

Clips: the dash-cam clip (960x540, forward motion) and the pedestrians clip (1280x720,
static camera) scaled to 640x360 (``INTER_AREA``), and the dash-cam clip at 960x540.
Noise: 8-bit clipped Gaussian, sigma 15 / 25 / 40, seed 22 (added to the rounded
uint8 frames). Each method runs through a real ``Pipeline`` (offline, uint8 in and
out) on the first ``--frames`` frames; the metrics use the frames whose 5-frame window
lies inside the clip (frames 2 .. n-3), the same for every method:

* ``nlm()``: today's ``default`` (per frame);
* ``temporal(radius=2)`` (DIS preset ``medium``; one NLM pass on the average with the
  per-pixel residual level as its sigma), and the round-3 path (``sigma_map=False``: the
  frame denoised alone by ``nlm()``, NLM at the median residual level, blended);
* OpenCV ``fastNlMeansDenoisingColoredMulti`` (temporal window 5, templates 7, search
  21) with ``h = hColor`` tuned on the grid ``--h-grid`` x sigma (best mean PSNR kept);
* live: today's ``live`` (``nlm(search_size=11, estimate_every=10)``),
  ``temporal_live()`` and ``temporal_live(sigma_map=True)`` (offline runs, for quality).

Metrics: mean PSNR over the frames (and per frame in the log section); flicker: the mean
absolute difference between the output's frame-to-frame change and the clean clip's,
``mean |(out_t - out_t-1) - (clean_t - clean_t-1)|`` (0-255 scale: the change over
time that is not in the scene; a plain difference of the two mean changes can go
negative when a filter over-smooths, so it is not used); ghosting: PSNR inside the moving regions (the 10 % of pixels where the clean
frame changes most from the previous one, smoothed); time per frame (wall, the run
divided by its frames; every method in this process). Then a live run (pedestrians
640x360, sigma 25, an FFV1 file released at ``--live-fps``) of both live pipelines:
fps out, frames dropped, latency p50/p95, PSNR of the frames out. And the memory the
temporal stage holds for its window at 1080p (the buffers measured at a small size,
scaled by the pixel count: every buffer is per pixel).

Writes ``benchmarks/results/temporal.md``: the new round on top, the earlier ones kept
below it (``# Earlier rounds``). Usage::

    python benchmarks/bench_temporal.py [--frames 10] [--quick]
    python benchmarks/bench_temporal.py --frames 7 --sweep "temporal(radius=2, h_factor=0.7)" ...

(``--sweep`` prints each spec against ``nlm()`` on both 640x360 clips and writes nothing;
``--cost-only`` redoes the interleaved cost section.) ``--live-only`` runs the live
pipelines alone and writes ``benchmarks/results/temporal_live.md``: their quality run
offline over the first ``--live-quality-frames`` (30) frames of each clip (a recursion
needs more than the 5 frames of the offline protocol to settle, and a drift shows over
thirds of the run), live runs at each ``--live-fps`` (a rate the machine sustains and one
it does not) and their interleaved cost against today's ``live``::

    python benchmarks/bench_temporal.py --live-only --live-fps 2.5 30

``--flicker-only`` writes ``benchmarks/results/temporal_flicker.md``: the flicker split
into moving and still pixels, the error's correlation between frames, and the issue's
definition read literally.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_description  # noqa: E402

from edgerestore.metrics import psnr  # noqa: E402
from edgerestore.runtime import Pipeline, sinks, sources  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"
CLIPS = [("dashcam", "dashcam_solidWhiteRight.mp4", (640, 360)),
         ("pedestrians", "pedestrians_vtest.avi", (640, 360)),
         ("dashcam", "dashcam_solidWhiteRight.mp4", (960, 540))]
OFFLINE = [("nlm() [default today]", "nlm()"),
           ("temporal(radius=2) [one nlm pass, per-pixel sigma]", "temporal(radius=2)"),
           ("temporal(radius=2, sigma_map=False) [round 3]", "temporal(radius=2, sigma_map=False)"),
           ("temporal(radius=2, recursive=True) [each output blended with the one before]",
            "temporal(radius=2, recursive=True)")]
LIVE = [("live today: nlm(search_size=11, estimate_every=10)", "nlm(search_size=11, estimate_every=10)"),
        ("temporal_live() [noisy-first, sigma map: the default since round 5]", "temporal_live()"),
        ("temporal_live(search_size=7) [cheaper pass]", "temporal_live(search_size=7)"),
        ("temporal_live(sigma_map=False) [the round-4 default]", "temporal_live(sigma_map=False)")]
SEED = 22


def load_clip(name: str, size: tuple[int, int], n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO / name))
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f if f.shape[1::-1] == size else cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    return frames


def add_noise(frames: list[np.ndarray], sigma: float) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    return [np.clip(np.rint(f + rng.normal(0.0, sigma, f.shape)), 0, 255).astype(np.uint8) for f in frames]


def run_pipeline(spec: str, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    out = sinks.ListSink()
    pipe = Pipeline(spec)
    pipe.open()
    try:
        t0 = time.perf_counter()
        pipe.run(sources.ArraySource(frames), [out], progress=False)
        dt = time.perf_counter() - t0
    finally:
        pipe.close()
    return [f.image for f in out.frames], dt / len(frames)


def opencv_multi(frames: list[np.ndarray], h: float) -> tuple[list[np.ndarray | None], float]:
    outs: list[np.ndarray | None] = [None] * len(frames)
    t0 = time.perf_counter()
    for i in range(2, len(frames) - 2):
        outs[i] = cv2.fastNlMeansDenoisingColoredMulti(frames, i, 5, None, h, h, 7, 21)
    return outs, (time.perf_counter() - t0) / max(len(frames) - 4, 1)


def moving_masks(clean: list[np.ndarray]) -> list[np.ndarray | None]:
    masks: list[np.ndarray | None] = [None]
    for a, b in zip(clean, clean[1:]):
        d = np.abs(b.astype(np.float32) - a.astype(np.float32)).mean(axis=2)
        d = cv2.GaussianBlur(d, (0, 0), 2.0)
        masks.append(d >= np.quantile(d, 0.9))
    return masks


def metrics(clean, outs, idx, masks) -> dict:
    per = [psnr(clean[i].astype(np.float32) / 255, outs[i].astype(np.float32) / 255) for i in idx]
    flick = [np.abs((outs[i].astype(np.float32) - outs[i - 1]) - (clean[i].astype(np.float32) - clean[i - 1])).mean()
             for i in idx[1:]]
    ghost = []
    for i in idx:
        m = masks[i]
        err = ((clean[i].astype(np.float64) - outs[i].astype(np.float64)) ** 2)[m].mean()
        ghost.append(10 * np.log10(255.0 ** 2 / max(err, 1e-10)))
    return {"psnr": float(np.mean(per)), "per_frame": per,
            "flicker": float(np.mean(flick)), "ghost": float(np.mean(ghost))}


def window_memory_mb(width: int = 1920, height: int = 1080, radius: int = 2) -> dict:
    """MB the temporal stage and its worker hold for the window at ``width x height``,
    from the buffers they hold after a run at 160x90, scaled by the pixel count."""
    from edgerestore.runtime.channel import Channel
    from edgerestore.runtime.report import StageTimer
    from edgerestore.runtime.stages.window import TemporalStage
    from edgerestore.runtime.window_worker import WindowStageWorker
    from edgerestore.runtime.workers import RunControl

    w, h = 160, 90
    frames = add_noise(load_clip("dashcam_solidWhiteRight.mp4", (w, h), 2 * radius + 3), 25)
    stage = TemporalStage(radius=radius)
    stage.open()
    src = sources.ArraySource(frames)
    worker = WindowStageWorker(stage, Channel(100), Channel(100), RunControl(src), StageTimer("t"))
    for i, f in enumerate(frames):
        worker.process(sources.Frame(f, i, i / 25))
    held = {
        "window frames (float32)": sum(f.image.nbytes for f in worker.frames),
        "window outputs (float32)": sum(o.nbytes for o in worker.outputs if o is not None),
        "the stage: frames denoised alone, flows, guides": stage.held_bytes(),
    }
    scale = (width * height) / (w * h)
    return {k: v * scale / 1e6 for k, v in held.items()}


def interleaved_times(specs: list[str], repeats: int, n: int) -> dict[str, list[float]]:
    """Seconds per frame of each pipeline on pedestrians 640x360 at sigma 25, ``repeats``
    rounds of the pipelines one after the other (A B C A B C ...), so that a changing load
    on a shared machine falls on all alike."""
    noisy = add_noise(load_clip("pedestrians_vtest.avi", (640, 360), n), 25)
    times: dict[str, list[float]] = {s: [] for s in specs}
    for _ in range(repeats):
        for spec in specs:
            times[spec].append(run_pipeline(spec, noisy)[1])
    return times


def ratio_table(times: dict[str, list[float]], baseline: str, label: str) -> list[str]:
    """Rows: per-round ms per frame and the median over rounds of the ratio to ``baseline``."""
    lines = [f"| pipeline | ms/frame per round | ratio to {label} |", "|---|---|---|"]
    for spec, ts in times.items():
        ratios = [t / b for t, b in zip(ts, times[baseline])]
        lines.append(f"| {spec} | {' / '.join(f'{t * 1000:.0f}' for t in ts)} | {np.median(ratios):.2f} |")
    return lines + [""]


def cost_section(repeats: int, n: int) -> list[str]:
    """Time per frame of ``temporal(radius=2)`` (and the other variants) against ``nlm()``
    on the same frames, interleaved (:func:`interleaved_times`)."""
    times = interleaved_times([spec for _, spec in OFFLINE + LIVE], repeats, n)
    return ["## Cost: time per frame against nlm(), interleaved runs", "",
            f"pedestrians 640x360, sigma 25, {n} frames per run, {repeats} rounds of the pipelines "
            "one after the other; ratio: median over rounds of the round's ratio to nlm().", "",
            *ratio_table(times, "nlm()", "nlm()")]


def live_cost_section(repeats: int, n: int) -> list[str]:
    """Time per frame of the live pipelines against today's ``live``, interleaved
    (:func:`interleaved_times`)."""
    specs = [spec for _, spec in LIVE]
    times = interleaved_times(specs, repeats, n)
    return ["## Live pipelines, cost: time per frame against today's live, interleaved runs", "",
            f"pedestrians 640x360, sigma 25, {n} frames per run, {repeats} rounds of the pipelines one after "
            "the other; ratio: median over rounds of the round's ratio to today's live.", "",
            *ratio_table(times, specs[0], "live")]


def live_run_section(rates: list[float], n: int) -> list[str]:
    """Every live pipeline run in live mode on the same FFV1 file (pedestrians 640x360,
    sigma 25) released at each source rate of ``rates``, one after the other: fps out,
    frames dropped, latency p50 / p95, PSNR of the frames out."""
    lines = ["## Live: the same source rate, one run after the other", ""]
    clean = load_clip("pedestrians_vtest.avi", (640, 360), n)
    noisy = add_noise(clean, 25)
    lines += [f"pedestrians 640x360, sigma 25, {len(noisy)} frames in FFV1 released at "
              f"{' and '.join(f'{r:g}' for r in rates)} fps.", "",
              "| source fps | pipeline | fps out | dropped | latency p50 / p95 ms | PSNR of frames out |",
              "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "noisy.mkv"
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (640, 360))
        for f in noisy:
            wr.write(f)
        wr.release()
        for rate in rates:
            for method, spec in LIVE:
                out = sinks.ListSink()
                with Pipeline(spec, mode="live") as pipe:
                    rep = pipe.run(sources.VideoFileSource(path, pace_fps=rate), [out], progress=False)
                ps = [psnr(clean[f.index].astype(np.float32) / 255, f.image.astype(np.float32) / 255)
                      for f in out.frames]
                lat = rep.latency_ms if hasattr(rep, "latency_ms") else rep.to_dict()["latency_ms"]
                lines.append(f"| {rate:g} | {method} | {rep.fps:.2f} | {rep.frames_dropped} | "
                             f"{lat['p50']:.0f} / {lat['p95']:.0f} | {np.mean(ps):.2f} |")
                print(lines[-1], flush=True)
    return lines + [""]


def live_quality_section(sigmas: list[float], n: int, big: bool) -> list[str]:
    """Quality of the live pipelines run offline (every frame, in order) on the first
    ``n`` frames of each clip: mean PSNR over frames 2 .. n-1 and over each third of them
    (a recursion that drifts shows it), flicker, moving regions, all against today's
    ``live``."""
    lines = ["## Live pipelines, quality (every frame in order)", "",
             f"First {n} frames of each clip; PSNR over frames 2..{n - 1}; gain over today's live, and per "
             "third of those frames; flicker and moving-region PSNR as in temporal.md.", "",
             "| clip | sigma | pipeline | PSNR | vs live | thirds vs live | flicker (x live) | moving regions vs live |",
             "|---|---|---|---|---|---|---|---|"]
    for label, name, size in CLIPS if big else CLIPS[:2]:
        clean = load_clip(name, size, n)
        idx, masks = list(range(2, len(clean))), moving_masks(clean)
        for sigma in sigmas:
            noisy = add_noise(clean, sigma)
            base = None
            for method, spec in LIVE:
                m = metrics(clean, run_pipeline(spec, noisy)[0], idx, masks)
                per = np.array(m["per_frame"])
                base = base or (m, per)
                d = per - base[1]
                third = max(len(d) // 3, 1)
                lines.append(f"| {label} {size[0]}x{size[1]} | {sigma:g} | {method} | {m['psnr']:.2f} | "
                             f"{m['psnr'] - base[0]['psnr']:+.2f} | {d[:third].mean():+.2f} / "
                             f"{d[third:2 * third].mean():+.2f} / {d[2 * third:].mean():+.2f} | "
                             f"{m['flicker']:.2f} ({m['flicker'] / base[0]['flicker']:.2f}) | "
                             f"{m['ghost'] - base[0]['ghost']:+.2f} |")
                print(lines[-1], flush=True)
    return lines + [""]




def flicker_section(sigmas: list[float], n: int) -> list[str]:
    """Where the flicker comes from (frames 2 .. n-3 as the main run): the flicker split
    into the 10 % moving pixels and the rest (each part summed over its pixels and divided
    by all of them, so the two add up), the correlation of the output's error between
    consecutive frames, and the issue's words read literally (the mean absolute
    frame-to-frame change of the output minus that of the clean clip, as a ratio to
    ``nlm()``'s). Reference rows: the clean clip blurred (a method whose error is
    perfectly steady along the motion still "flickers" where the scene moves)."""
    specs = [("nlm()", "nlm()"), ("temporal(radius=2)", "temporal(radius=2)"),
             ("temporal(radius=2, recursive=True)", "temporal(radius=2, recursive=True)")]
    lines = ["## Where the flicker comes from", "",
             "flicker: mean |(out_t - out_t-1) - (clean_t - clean_t-1)| (0-255), split into the 10 % most-changing "
             "pixels and the other 90 % (each part's sum over all pixels); error corr.: correlation of the error "
             "(out - clean) of consecutive frames at the same pixel; literal: mean |out_t - out_t-1| minus mean "
             "|clean_t - clean_t-1|, and its ratio to nlm()'s.", "",
             "| clip | sigma | method | PSNR | flicker (x nlm()) | moving 10 % + rest 90 % | error corr. | "
             "literal (x nlm()) |", "|---|---|---|---|---|---|---|---|"]
    for label, name, size in CLIPS[:2]:
        clean = load_clip(name, size, n)
        idx, masks = list(range(2, len(clean) - 2)), moving_masks(clean)
        cf = [c.astype(np.float32) for c in clean]
        clean_change = float(np.mean([np.abs(cf[i] - cf[i - 1]).mean() for i in idx[1:]]))
        for sigma in sigmas:
            noisy = add_noise(clean, sigma)
            outs = [(label_, run_pipeline(spec, noisy)[0]) for label_, spec in specs]
            outs += [(f"clean clip blurred (Gaussian {b:g} px)",
                      [np.clip(np.rint(cv2.GaussianBlur(c, (0, 0), b)), 0, 255).astype(np.uint8) for c in cf])
                     for b in (0.7, 1.0)]
            base = None
            for method, o in outs:
                of = [x.astype(np.float32) for x in o]
                err = [of[i] - cf[i] for i in range(len(cf))]
                d = [np.abs(err[i] - err[i - 1]).mean(axis=2) for i in idx[1:]]
                total = float(np.mean([x.mean() for x in d]))
                moving = float(np.mean([x[masks[i]].sum() / x.size for x, i in zip(d, idx[1:])]))
                corr = float(np.mean([np.corrcoef(err[i].ravel(), err[i - 1].ravel())[0, 1] for i in idx[1:]]))
                literal = float(np.mean([np.abs(of[i] - of[i - 1]).mean() for i in idx[1:]])) - clean_change
                p = float(np.mean([psnr(cf[i] / 255, of[i] / 255) for i in idx]))
                base = base or (total, literal)
                lines.append(f"| {label} {size[0]}x{size[1]} | {sigma:g} | {method} | {p:.2f} | {total:.2f} "
                             f"({total / base[0]:.2f}) | {moving:.2f} + {total - moving:.2f} | {corr:.2f} | "
                             f"{literal:+.2f} ({literal / base[1]:.2f}) |")
                print(lines[-1], flush=True)
    return lines + [""]


def sweep(specs: list[str], sigmas: list[float], n: int) -> None:
    """Parameter sweep (prints, writes nothing): each spec's PSNR gain over ``nlm()``,
    flicker and time as fractions of ``nlm()``'s, moving-region gain, on both clips at
    640x360, frames 2 .. n-3 (same noise as the main run), every spec run right after
    ``nlm()`` on the same frames."""
    ratios: dict[str, list[float]] = {s: [] for s in specs}
    for cname, fname, size in CLIPS[:2]:
        clean = load_clip(fname, size, n)
        masks, idx = moving_masks(clean), list(range(2, n - 2))
        for sigma in sigmas:
            noisy = add_noise(clean, sigma)
            base_out, base_t = run_pipeline("nlm()", noisy)
            base = metrics(clean, base_out, idx, masks)
            line = f"{cname} s{sigma:.0f} nlm() {base['psnr']:.2f} dB {base_t * 1000:.0f} ms |"
            for spec in specs:
                outs, t = run_pipeline(spec, noisy)
                m = metrics(clean, outs, idx, masks)
                ratios[spec].append(t / base_t)
                line += (f" {m['psnr'] - base['psnr']:+.2f} dB, flicker x{m['flicker'] / base['flicker']:.2f},"
                         f" moving {m['ghost'] - base['ghost']:+.2f}, time x{t / base_t:.2f} |")
            print(line, flush=True)
    for spec in specs:
        print(f"{spec}: median time ratio {np.median(ratios[spec]):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 40])
    ap.add_argument("--h-grid", type=float, nargs="+", default=[0.6, 0.8, 1.0])
    ap.add_argument("--live-fps", type=float, nargs="+", default=[30.0])
    ap.add_argument("--live-frames", type=int, default=90)
    ap.add_argument("--quick", action="store_true", help="a small run to check the script")
    ap.add_argument("--cost-only", action="store_true",
                    help="only the interleaved cost runs; replaces the Cost section of --out")
    ap.add_argument("--cost-rounds", type=int, default=3)
    ap.add_argument("--sweep", nargs="+", metavar="SPEC",
                    help="only print a parameter sweep of these pipeline strings against nlm() (writes nothing)")
    ap.add_argument("--live-only", action="store_true",
                    help="only the live pipelines (quality over --live-quality-frames, live runs, cost); "
                         "writes benchmarks/results/temporal_live.md")
    ap.add_argument("--live-quality-frames", type=int, default=30)
    ap.add_argument("--flicker-only", action="store_true",
                    help="only the flicker analysis; writes benchmarks/results/temporal_flicker.md")
    ap.add_argument("--big", action="store_true", help="with --live-only: also the dash-cam clip at 960x540")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.flicker_only:
        out = args.out or ROOT / "benchmarks" / "results" / "temporal_flicker.md"
        lines = ["# Temporal denoising: where the flicker comes from (issue #22)", "",
                 f"`python benchmarks/bench_temporal.py {' '.join(sys.argv[1:])}`, "
                 f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_description()} (shared with other jobs). "
                 f"Frames 2..{args.frames - 3} of the first {args.frames} of each clip; noise seed {SEED}.", ""]
        lines += flicker_section(args.sigmas, args.frames)
        text = "\n".join(lines) + "\n"
        print(text)
        out.write_text(text + keep_history(out))
        return
    if args.live_only:
        out = args.out or ROOT / "benchmarks" / "results" / "temporal_live.md"
        lines = ["# Live temporal denoising (issue #22)", "",
                 f"`python benchmarks/bench_temporal.py {' '.join(sys.argv[1:])}`, "
                 f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_description()} (shared with other jobs). "
                 f"Noise seed {SEED}, 8-bit clipped Gaussian.", ""]
        lines += live_quality_section(args.sigmas, args.live_quality_frames, args.big)
        lines += live_run_section(args.live_fps, args.live_frames)
        lines += live_cost_section(args.cost_rounds, 20)
        text = "\n".join(lines) + "\n"
        print(text)
        out.write_text(text + keep_history(out))
        return
    args.out = args.out or ROOT / "benchmarks" / "results" / "temporal.md"
    if args.quick:
        args.frames, args.sigmas, args.h_grid, args.live_frames = 6, [25], [0.8], 20
    if args.sweep:
        sweep(args.sweep, args.sigmas, args.frames)
        return
    if args.cost_only:
        text = args.out.read_text()
        head, _, tail = text.partition("## Cost:")
        tail = tail[tail.index("\n## "):] if "\n## " in tail else ""
        cost = cost_section(args.cost_rounds, args.frames)
        cost.insert(2, f"`python benchmarks/bench_temporal.py {' '.join(sys.argv[1:])}`, "
                       f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC.")
        cost.insert(3, "")
        rest = "\n" + tail.lstrip("\n") if tail else "\n"
        args.out.write_text(head.rstrip("\n") + "\n\n" + "\n".join(cost) + rest)
        print("\n".join(cost))
        return
    lines = ["# Temporal denoising (issue #22)", "",
             f"`python benchmarks/bench_temporal.py {' '.join(sys.argv[1:])}`, "
             f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu_description()} (shared with other jobs).",
             f"Frames 2..{args.frames - 3} of the first {args.frames} of each clip; noise seed {SEED}. "
             "PSNR in dB (mean over frames); flicker: mean |(out_t - out_t-1) - (clean_t - clean_t-1)| "
             "(0-255); ghosting: PSNR in the 10 % most-changing pixels; time: ms per frame, wall.", ""]
    log_lines = ["", "## Per-frame PSNR", ""]
    summary = []
    for label, name, size in CLIPS:
        if args.quick and size != (640, 360):
            continue
        clean = load_clip(name, size, args.frames)
        idx = list(range(2, len(clean) - 2))
        masks = moving_masks(clean)
        for sigma in args.sigmas:
            noisy = add_noise(clean, sigma)
            rows = []
            for method, spec in OFFLINE + LIVE:
                outs, tpf = run_pipeline(spec, noisy)
                rows.append((method, metrics(clean, outs, idx, masks), tpf))
            best = None
            for hf in args.h_grid:
                outs, tpf = opencv_multi(noisy, hf * sigma)
                m = metrics(clean, outs, idx, masks)
                if best is None or m["psnr"] > best[1]["psnr"]:
                    best = (f"OpenCV Multi (window 5, h={hf:g} sigma)", m, tpf)
            rows.append(best)
            noisy_psnr = metrics(clean, noisy, idx, masks)["psnr"]
            base = rows[0]
            lines += [f"## {label} {size[0]}x{size[1]}, sigma {sigma:g} (noisy {noisy_psnr:.2f} dB)", "",
                      "| method | PSNR | vs nlm() | flicker (x nlm()) | ghosting PSNR | ms/frame (x nlm()) |",
                      "|---|---|---|---|---|---|"]
            for method, m, tpf in rows:
                lines.append(f"| {method} | {m['psnr']:.2f} | {m['psnr'] - base[1]['psnr']:+.2f} | "
                             f"{m['flicker']:.2f} ({m['flicker'] / base[1]['flicker']:.2f}) | {m['ghost']:.2f} | "
                             f"{tpf * 1000:.0f} ({tpf / base[2]:.2f}) |")
                log_lines.append(f"* {label} {size[0]}x{size[1]} s{sigma:g} {method}: "
                                 + " ".join(f"{p:.2f}" for p in m["per_frame"]))
            lines.append("")
            summary.append((label, size, sigma, {r[0]: r for r in rows}))
            print("\n".join(lines[-len(rows) - 5:]), flush=True)
    lines += live_run_section(args.live_fps, args.live_frames)
    lines += cost_section(args.cost_rounds, args.frames)
    lines += ["## Memory held for the window at 1920x1080 (radius 2)", ""]
    mem = window_memory_mb()
    lines += [f"* {k}: {v:.0f} MB" for k, v in mem.items()] + [f"* total: {sum(mem.values()):.0f} MB", ""]
    text = "\n".join(lines + log_lines) + "\n"
    print(text)
    args.out.write_text(text + keep_history(args.out))


def keep_history(path: Path) -> str:
    """The earlier rounds of ``path`` (a results file this script wrote), to go below the
    new one: each run adds a round, none is overwritten."""
    if not path.exists():
        return ""
    old = path.read_text()
    marker = "\n# Earlier rounds\n"
    if marker in old:
        newest, _, earlier = old.partition(marker)
        return marker + "\n" + newest.strip("\n") + "\n\n" + earlier.lstrip("\n")
    return marker + "\n" + old.lstrip("\n")


if __name__ == "__main__":
    main()
