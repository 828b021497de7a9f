"""Benchmark of the streaming runtime: throughput, overlap, live latency, quality.

Measures, on a real clip (``../shared/data/video/dashcam_solidWhiteRight.mp4``, Udacity,
MIT) with Gaussian noise sigma 15 added (seeded) and stored losslessly (FFV1) so the
pipeline decodes a real file and encodes a real file:

1. throughput (fps) of the default pipeline at 640x360 and 1280x720, file to file:
   * ``pipelined``: ``Pipeline("default").run(file, file)`` (decode, stages, encode in
     their own threads joined by bounded queues);
   * ``sequential``: the same work one step after another in one thread (decode, then
     each stage, then encode), i.e. the plain sum of the stages;
   * ``opencv``: OpenCV ``fastNlMeansDenoisingColored`` per frame (h = hColor = 15,
     7/21), decode and encode included, as the anchor; at 640x360 also
     ``fastNlMeansDenoisingColoredMulti`` (5-frame window);
2. live mode with the clip paced at its own 25 fps (above the pipeline's capacity):
   frames in/out/dropped and latency p50/p95/max;
3. quality: mean per-frame PSNR gain of the default pipeline at 640x360 (white noise
   sigma 15), with OpenCV NLM for comparison; and on the shipped sample clip (noise that
   went through the mp4v encoder) with the codec-aware sigma estimate and without it.

Writes ``benchmarks/results/runtime.md`` (and prints it). Usage::

    python benchmarks/bench_runtime.py [--frames 20] [--frames-720 8] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgerestore.runtime import Pipeline, sinks, sources  # noqa: E402
from edgerestore.runtime.pipeline import to_float, to_uint8  # noqa: E402
from edgerestore.runtime.spec import expand  # noqa: E402

DATA = Path(os.environ.get("EDGERESTORE_SHARED_DATA", REPO.parent / "shared" / "data"))
CLIP = DATA / "video" / "dashcam_solidWhiteRight.mp4"
SIGMA = 15.0


def load_clean(n: int, size: tuple[int, int], start: int = 0) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    i = 0
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        if i >= start:
            interp = cv2.INTER_AREA if size[0] < img.shape[1] else cv2.INTER_CUBIC
            frames.append(cv2.resize(img, size, interpolation=interp))
        i += 1
    cap.release()
    return frames


def add_noise(frames: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(f.astype(np.float32) + rng.normal(0, sigma, f.shape)), 0, 255).astype(np.uint8)
            for f in frames]


def write_ffv1(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def warm(pipe: Pipeline, frame: np.ndarray) -> None:
    """Load/compile the stages once (Numba's cache) so no run pays for it."""
    pipe.process(frame[:64, :64].copy())


def run_pipelined(pipe: Pipeline, src_path: Path, out_path: Path):
    t0 = time.perf_counter()
    rep = pipe.run(sources.VideoFileSource(src_path), sinks.VideoFileSink(out_path), progress=False)
    dt = time.perf_counter() - t0
    assert rep.frames_out == rep.frames_in
    return rep.frames_out / dt, rep


def run_sequential(pipe: Pipeline, src_path: Path, out_path: Path) -> tuple[float, dict]:
    """Decode, each stage, encode: one after another in this thread."""
    parts = {"decode": 0.0, "encode": 0.0, **{st.name: 0.0 for st in pipe.stages}}
    cap = cv2.VideoCapture(str(src_path))
    wr = None
    n = 0
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        ok, img = cap.read()
        parts["decode"] += time.perf_counter() - t
        if not ok:
            break
        x = to_float(img)
        for st in pipe.stages:
            t = time.perf_counter()
            x = st(x)
            parts[st.name] += time.perf_counter() - t
        out = to_uint8(x)
        t = time.perf_counter()
        if wr is None:
            wr = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, out.shape[1::-1])
        wr.write(out)
        parts["encode"] += time.perf_counter() - t
        n += 1
    wr.release()
    dt = time.perf_counter() - t0
    return n / dt, {k: 1000 * v / n for k, v in parts.items()}


def run_opencv(src_path: Path, out_path: Path, multi: bool = False) -> tuple[float, list[np.ndarray]]:
    t_dec = time.perf_counter()
    cap = cv2.VideoCapture(str(src_path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    t_dec = time.perf_counter() - t_dec
    t0 = time.perf_counter()
    outs = []
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, (w, h))
    for i, img in enumerate(frames):
        if multi:
            # 5-frame window centred on i (on the first/last two frames: on the nearest
            # frame where a full window fits; only the timing is used)
            c = min(max(i, 2), len(frames) - 3)
            out = cv2.fastNlMeansDenoisingColoredMulti(frames[c - 2:c + 3], 2, 5, None, SIGMA, SIGMA, 7, 21)
        else:
            out = cv2.fastNlMeansDenoisingColored(img, None, SIGMA, SIGMA, 7, 21)
        wr.write(out)
        outs.append(out)
    wr.release()
    # decoding (timed separately, above) is part of the work too
    return len(frames) / (time.perf_counter() - t0 + t_dec), outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20, help="frames at 640x360")
    ap.add_argument("--frames-720", type=int, default=8, help="frames at 1280x720")
    ap.add_argument("--live-seconds", type=float, default=8.0)
    ap.add_argument("--extra", action="append", default=None, metavar="PIPELINE",
                    help="other pipelines to time at 640x360 (default: denoise-fast, upscale2, and upscale2 with one thread per stage)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each throughput variant, alternated; best kept")
    ap.add_argument("--model", action="append", default=[], metavar="NAME_OR_ONNX",
                    help="also measure model(NAME) at 640x360 (repeatable), to compare with the default")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "runtime.md")
    args = ap.parse_args()
    if args.extra is None:
        args.extra = ["denoise-fast", "upscale2", "nlm(threads=1)|upscale(scale=2, threads=1)"]
    if not CLIP.is_file():
        print(f"benchmark needs {CLIP}", file=sys.stderr)
        return 1

    lines = ["# Runtime benchmark", "",
             f"`python benchmarks/bench_runtime.py --frames {args.frames} --frames-720 {args.frames_720} --repeats {args.repeats}"
             + "".join(f" --model {m}" for m in args.model) + "`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs (shared with other jobs "
             f"while measured), Python {platform.python_version()}, OpenCV {cv2.__version__}.",
             f"Clip: {CLIP.name} (Udacity, MIT), Gaussian noise sigma {SIGMA:g} (seed 0), stored as FFV1.",
             f"Default pipeline: `{expand('default')}`.", ""]

    pipe = Pipeline("default")
    tmp = Path(tempfile.mkdtemp(prefix="bench_runtime_"))
    quality_rows = []

    lines += ["## Throughput, file to file (fps, higher is better)", "",
              f"Best of {args.repeats} alternated runs per variant. The machine was shared (load "
              f"average {os.getloadavg()[0]:.0f} on {os.cpu_count()} CPUs at the start), so figures move by "
              "+-20% between runs.", "",
              "| size | frames | pipelined | sequential (sum of stages) | speed-up | OpenCV fastNlMeansDenoisingColored | OpenCV ...ColoredMulti (5 frames) |",
              "|---|---|---|---|---|---|---|"]
    breakdown = []
    for size, n in (((640, 360), args.frames), ((1280, 720), args.frames_720)):
        clean = load_clean(n, size)
        noisy = add_noise(clean, SIGMA)
        src = write_ffv1(tmp / f"noisy_{size[0]}.mkv", noisy)
        warm(pipe, noisy[0])
        # Alternate the variants and keep the best of each, so a change in the load of a
        # shared machine does not favour whichever ran in the quiet moment.
        best = {}
        for _ in range(args.repeats):
            for key, fn in (("seq", lambda: run_sequential(pipe, src, tmp / "seq.mkv")),
                            ("pipe", lambda: run_pipelined(pipe, src, tmp / "pipe.mkv")),
                            ("cv", lambda: run_opencv(src, tmp / "cv.mkv"))):
                res = fn()
                if key not in best or res[0] > best[key][0]:
                    best[key] = res
        (fps_seq, parts), (fps_pipe, rep), (fps_cv, cv_out) = best["seq"], best["pipe"], best["cv"]
        fps_multi = "-"
        if size == (640, 360):
            if n >= 5:
                fm, _ = run_opencv(src, tmp / "cvm.mkv", multi=True)
                fps_multi = f"{fm:.2f}"
            ours = sources.VideoFileSource(tmp / "pipe.mkv")
            outs = [f.image for f in ours]
            quality_rows.append(("default pipeline", np.mean([psnr(o, c) - psnr(z, c) for o, c, z in zip(outs, clean, noisy)]),
                                 np.mean([psnr(o, c) for o, c in zip(outs, clean)]), 1000 / fps_pipe))
            quality_rows.append(("OpenCV fastNlMeansDenoisingColored h=15", np.mean([psnr(o, c) - psnr(z, c) for o, c, z in zip(cv_out, clean, noisy)]),
                                 np.mean([psnr(o, c) for o, c in zip(cv_out, clean)]), 1000 / fps_cv))
            noisy_psnr = np.mean([psnr(z, c) for z, c in zip(noisy, clean)])
            for m in args.model:
                mp = Pipeline(f"model({m!r})")
                warm(mp, noisy[0])
                fps_m, rep_m = run_pipelined(mp, src, tmp / "model.mkv")
                mouts = [f.image for f in sources.VideoFileSource(tmp / "model.mkv")]
                quality_rows.append((f"`model({m!r})` on {rep_m.stages[0].get('backend')}",
                                     np.mean([psnr(o, c) - psnr(z, c) for o, c, z in zip(mouts, clean, noisy)]),
                                     np.mean([psnr(o, c) for o, c in zip(mouts, clean)]), 1000 / fps_m))
                mp.close()
        lines.append(f"| {size[0]}x{size[1]} | {n} | {fps_pipe:.2f} | {fps_seq:.2f} | {fps_pipe / fps_seq:.2f}x | {fps_cv:.2f} | {fps_multi} |")
        breakdown.append((size, parts, rep))
        print(lines[-1], flush=True)
    # Other pipelines at 640x360, same measurement: a kernel leaving a core free, the
    # faster NLM, and a two-engine chain (NLM on Numba, then the SR model on ONNX Runtime).
    src = tmp / "noisy_640.mkv"
    for spec in args.extra:
        other = Pipeline(spec)
        warm(other, load_clean(1, (640, 360))[0])
        best = {}
        for _ in range(args.repeats):
            for key, fn in (("seq", lambda: run_sequential(other, src, tmp / "seq1.mkv")),
                            ("pipe", lambda: run_pipelined(other, src, tmp / "pipe1.mkv"))):
                res = fn()
                if key not in best or res[0] > best[key][0]:
                    best[key] = res
        (f_seq, p_seq), (f_pipe, r_pipe) = best["seq"], best["pipe"]
        lines.append(f"| 640x360, `{spec}` = `{expand(spec)}` | {args.frames} | {f_pipe:.2f} | {f_seq:.2f} | "
                     f"{f_pipe / f_seq:.2f}x | | |")
        print(lines[-1], flush=True)
        breakdown.append(((640, 360, spec), p_seq, r_pipe))
        other.close()
    lines += ["", "Where the time goes. Sequential run: mean ms per frame of each part; their sum is "
              "the sequential frame time. With full overlap the pipelined frame time falls to the "
              "slowest part alone (decode and encode hidden behind the kernel):", "",
              "| run | parts, ms per frame (sequential) | sum | slowest part | pipelined, measured | offline latency p50 |",
              "|---|---|---|---|---|---|"]
    for size, parts, rep in breakdown:
        label = f"{size[0]}x{size[1]}" + (f" `{size[2]}`" if len(size) > 2 else "")
        total, slowest = sum(parts.values()), max(parts.values())
        lines.append(f"| {label} | " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
                     + f" | {total:.0f} ms | {slowest:.0f} ms | {1000 / rep.fps:.0f} ms | {rep.latency_ms['p50']:.0f} ms |")

    # Live mode: the 640x360 clip paced at its own 25 fps, above capacity.
    n_live = int(25 * args.live_seconds)
    clean = load_clean(n_live, (640, 360))
    src = write_ffv1(tmp / "live.mkv", add_noise(clean, SIGMA))
    lines += ["", "## Live mode (640x360 clip released at 25 fps, above capacity)", "",
              "| pipeline | frames in | frames out | dropped | fps out | latency p50 ms | p95 ms | max ms |",
              "|---|---|---|---|---|---|---|---|"]
    for spec in ("default", "denoise-fast"):
        live = Pipeline(spec, mode="live")
        warm(live, clean[0])
        rep = live.run(sources.VideoFileSource(src, realtime=True), None, progress=False)
        lines.append(f"| `{spec}` | {rep.frames_in} | {rep.frames_out} | {rep.frames_dropped} | {rep.fps:.2f} | "
                     f"{rep.latency_ms['p50']:.0f} | {rep.latency_ms['p95']:.0f} | {rep.latency_ms['max']:.0f} |")
        print(lines[-1], flush=True)

    # Quality on the shipped sample clip (noise through mp4v) vs its clean source.
    sample = REPO / "edgerestore" / "assets" / "sample_noisy.mp4"
    s_noisy = [f.image for f in sources.VideoFileSource(sample)][:10]
    s_clean = load_clean(len(s_noisy), (480, 270))
    codec_rows = []
    for spec in ("default", "nlm(estimate='white')", "opencv_nlm(h=10)"):
        p = Pipeline(spec)
        out = sinks.ListSink()
        r = p.run(sources.ArraySource(s_noisy), out, progress=False)
        gain = np.mean([psnr(o.image, c) - psnr(z, c) for o, c, z in zip(out.frames, s_clean, s_noisy)])
        codec_rows.append((spec, gain, r.stages[0]["mean_ms"]))

    lines += ["", f"## Quality, 640x360, white Gaussian noise sigma 15 ({args.frames} frames; noisy input {noisy_psnr:.2f} dB)", "",
              "| method | mean PSNR gain per frame (dB) | mean PSNR (dB) | ms/frame (file to file) |", "|---|---|---|---|"]
    for name, gain, p, ms in quality_rows:
        lines.append(f"| {name} | {gain:+.2f} | {p:.2f} | {ms:.0f} |")
    lines += ["", "## Quality on the shipped sample clip (480x270, noise sigma 15 then mp4v-encoded; 10 frames)", "",
              "| pipeline | mean PSNR gain per frame (dB) | stage ms/frame |", "|---|---|---|"]
    for spec, gain, ms in codec_rows:
        lines.append(f"| `{spec}` | {gain:+.2f} | {ms:.0f} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.partial")
    tmp_out.write_text(text)
    os.replace(tmp_out, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
