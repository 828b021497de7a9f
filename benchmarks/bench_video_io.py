"""Video I/O on FFmpeg (PyAV) against OpenCV, in the same process (issue #27).

* decode fps at 720p (pedestrians_vtest.avi, 1280x720 H.264) and 1080p (the dashcam
  clip scaled to 1920x1080 and encoded with libx264 CRF 18 once, here): the runtime's
  ``VideoFileSource`` against ``cv2.VideoCapture``;
* encode fps at 720p and 1080p: the runtime's ``VideoWriter`` (H.264 libx264 at the
  default preset and CRF 23; FFV1) against ``cv2.VideoWriter`` (mp4v, FFV1);
* the default pipeline's fps at 720p (``nlm()`` on the same frames), so the encoder can
  be compared with what it has to keep up with;
* duration in = duration out through ``edgerestore``'s pipeline (``none``) on both real
  clips and on a variable-frame-rate clip made here.

Run: ``nice -n 10 python benchmarks/bench_video_io.py`` (about 3 minutes on 2 cores);
writes ``benchmarks/results/video_io.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av  # noqa: E402
import cv2  # noqa: E402

from edgerestore.cpuinfo import cpu_model  # noqa: E402
from edgerestore.runtime import Pipeline, sinks, sources  # noqa: E402
from edgerestore.runtime.video import VideoWriter, choose_encoder  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "video"


def decode_pyav(path: Path, n: int, exact: bool = True) -> float:
    src = sources.VideoFileSource(path, hardware="off", exact_colour=exact)
    t0 = time.perf_counter()
    k = 0
    with src:
        for _ in range(n):
            if src.read() is None:
                break
            k += 1
    return k / (time.perf_counter() - t0)


def decode_opencv(path: Path, n: int) -> float:
    cap = cv2.VideoCapture(str(path))
    t0 = time.perf_counter()
    k = 0
    for _ in range(n):
        ok, _img = cap.read()
        if not ok:
            break
        k += 1
    cap.release()
    return k / (time.perf_counter() - t0)


def encode_pyav(frames, out: Path, codec: str) -> float:
    w = VideoWriter(str(out), encoder=choose_encoder(codec, hardware="off"), fps=25)
    t0 = time.perf_counter()
    for i, img in enumerate(frames):
        w.write(img, i / 25)
    w.close()
    return len(frames) / (time.perf_counter() - t0)


def encode_opencv(frames, out: Path, fourcc: str) -> float:
    h, wd = frames[0].shape[:2]
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), 25.0, (wd, h))
    t0 = time.perf_counter()
    for img in frames:
        w.write(img)
    w.release()
    return len(frames) / (time.perf_counter() - t0)


def make_1080p(tmp: Path) -> Path:
    out = tmp / "dashcam_1080p.mp4"
    src = sources.VideoFileSource(DATA / "dashcam_solidWhiteRight.mp4", hardware="off")
    w = VideoWriter(str(out), encoder=choose_encoder("h264", hardware="off"), fps=25, crf=18)
    with src:
        for f in src:
            w.write(cv2.resize(f.image, (1920, 1080), interpolation=cv2.INTER_CUBIC), f.timestamp)
    w.close()
    return out


def make_vfr(tmp: Path) -> Path:
    out = tmp / "vfr.mkv"
    times = np.cumsum([0.0] + [0.04, 0.04, 0.12, 0.02, 0.04, 0.2, 0.033, 0.033, 0.5, 0.04] * 3)
    frames = [f.image for _, f in zip(range(len(times)), sources.VideoFileSource(DATA / "dashcam_solidWhiteRight.mp4"))]
    tb = Fraction(1, 1000)
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        st.time_base = st.codec_context.time_base = tb
        for img, t in zip(frames, times):
            fr = av.VideoFrame.from_ndarray(img, format="bgr24")
            fr.pts, fr.time_base = int(round(t * 1000)), tb
            for p in st.encode(fr):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return out


def colour_bias(path: Path) -> dict:
    """Bias of swscale's default conversion (OpenCV's) and of the exact one."""
    from edgerestore.runtime.video.codecs import exact_conversion

    with av.open(str(path)) as c:
        frames = [f for _, f in zip(range(10), c.decode(video=0))]
    out = {}
    for name, kw in (("swscale default (OpenCV's)", {}), ("exact (runtime default)", {"interpolation": exact_conversion()})):
        bias, mae, rt = [], [], []
        for f in frames:
            h, w = f.height, f.width
            yuv = f.to_ndarray(format="yuv420p").astype(np.float64)
            y = (yuv[:h] - 16) / 219
            u = cv2.resize((yuv[h:h + h // 4].reshape(h // 2, w // 2) - 128) / 224, (w, h), interpolation=cv2.INTER_LINEAR)
            v = cv2.resize((yuv[h + h // 4:].reshape(h // 2, w // 2) - 128) / 224, (w, h), interpolation=cv2.INTER_LINEAR)
            kr, kb = 0.2126, 0.0722
            r, b = y + 2 * (1 - kr) * v, y + 2 * (1 - kb) * u
            g = (y - kr * r - kb * b) / (1 - kr - kb)
            ref = np.clip(np.stack([b, g, r], -1) * 255, 0, 255)
            bgr = f.to_ndarray(format="bgr24", **kw)
            bias.append((bgr - ref).mean(axis=(0, 1)))
            mae.append(np.abs(bgr - ref).mean())
            enc = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1, **kw)
            back = enc.to_ndarray(format="bgr24", src_colorspace=1, src_color_range=1, **kw)
            rt.append((back.astype(np.float64) - bgr).mean(axis=(0, 1)))
        out[name] = (np.mean(bias, axis=0), float(np.mean(mae)), np.mean(rt, axis=0))
    return out


def durations(path: Path, tmp: Path) -> dict:
    src = sources.VideoFileSource(path, hardware="off")
    out = tmp / f"{path.stem}_out.mp4"
    sink = sinks.VideoFileSink(out, source=src, hardware="off")
    report = Pipeline("none").run(src, sink, progress=False)
    report.add_video_io(src, [sink])
    return {"clip": path.name, "frames": report.frames_out, "in": report.duration_in_s,
            "out": report.duration_out_s, "announced": src.duration_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120, help="frames per decode/encode measurement")
    ap.add_argument("--pipeline-frames", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "video_io.md")
    args = ap.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = {"720p": DATA / "pedestrians_vtest.avi", "1080p": make_1080p(tmp)}
        rows = []
        for label, path in clips.items():
            frames = []
            with sources.VideoFileSource(path, hardware="off") as src:
                for _ in range(min(args.frames, 60)):
                    f = src.read()
                    if f is None:
                        break
                    frames.append(f.image)
            # alternate the two so that a change of machine load hits both alike
            dec = {"pyav": [], "pyav fast": [], "opencv": []}
            for _ in range(2):
                dec["pyav"].append(decode_pyav(path, args.frames))
                dec["pyav fast"].append(decode_pyav(path, args.frames, exact=False))
                dec["opencv"].append(decode_opencv(path, args.frames))
            enc = {
                "pyav h264 (libx264 medium, crf 23)": encode_pyav(frames, tmp / "e.mp4", "h264"),
                "opencv mp4v": encode_opencv(frames, tmp / "e_cv.mp4", "mp4v"),
                "pyav ffv1": encode_pyav(frames, tmp / "e.mkv", "ffv1"),
                "opencv ffv1": encode_opencv(frames, tmp / "e_cv.mkv", "FFV1"),
            }
            rows.append((label, path.name, dec, enc, frames))
        # what the encoder must keep up with: the default pipeline at 720p
        frames720 = rows[0][4][: args.pipeline_frames]
        with Pipeline("default") as pipe:
            pipe.process(frames720[0])  # compile, warm up
            t0 = time.perf_counter()
            for img in frames720:
                pipe.process(img)
            default_fps = len(frames720) / (time.perf_counter() - t0)
        durs = [durations(DATA / "pedestrians_vtest.avi", tmp), durations(DATA / "dashcam_solidWhiteRight.mp4", tmp),
                durations(make_vfr(tmp), tmp)]

    lines += ["# Video I/O: FFmpeg (PyAV) against OpenCV", "",
              f"`python benchmarks/bench_video_io.py --frames {args.frames}` on {cpu_model()} "
              f"({platform.machine()}), PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.ffmpeg_version_info)) if isinstance(av.ffmpeg_version_info, tuple) else av.ffmpeg_version_info}), "
              f"OpenCV {cv2.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
              "Same process, measurements alternated; the machine is shared (2 CPUs), so ratios "
              "in one run matter more than absolute figures.", "",
              "## Decode (frames per second, two runs each)", "",
              "PyAV exact: the runtime's default, YUV -> BGR without swscale's bias; PyAV fast: "
              "swscale's default conversion, the one OpenCV uses (`exact_colour=False`).", "",
              "| clip | size | PyAV exact | PyAV fast | OpenCV VideoCapture | exact / OpenCV | fast / OpenCV |",
              "|---|---|---|---|---|---|---|"]
    for label, name, dec, _, _ in rows:
        p, q, o = max(dec["pyav"]), max(dec["pyav fast"]), max(dec["opencv"])
        lines.append(f"| {name} | {label} | {', '.join(f'{x:.1f}' for x in dec['pyav'])} | "
                     f"{', '.join(f'{x:.1f}' for x in dec['pyav fast'])} | "
                     f"{', '.join(f'{x:.1f}' for x in dec['opencv'])} | {p / o:.2f} | {q / o:.2f} |")
    lines += ["", "## Colour conversion bias (mean signed error in levels, B / G / R)", "",
              "Decode: 10 frames of pedestrians_vtest.avi against a float64 BT.709 limited-range "
              "conversion of the same YUV planes (bilinear chroma). Round trip: those BGR frames "
              "-> yuv420p (BT.709) -> BGR.", "",
              "| conversion | decode bias | decode mean abs error | round-trip bias |", "|---|---|---|---|"]
    for name, (bias, mae, rt) in colour_bias(DATA / "pedestrians_vtest.avi").items():
        lines.append(f"| {name} | {' / '.join(f'{b:+.2f}' for b in bias)} | {mae:.2f} | "
                     f"{' / '.join(f'{b:+.2f}' for b in rt)} |")
    lines += ["", "## Encode (frames per second, 60 frames)", "",
              "| size | " + " | ".join(rows[0][3]) + " |", "|---|" + "---|" * len(rows[0][3])]
    for label, _, _, enc, _ in rows:
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in enc.values()) + " |")
    h264_720 = rows[0][3]["pyav h264 (libx264 medium, crf 23)"]
    lines += ["", f"Default pipeline (`nlm()`) at 720p: **{default_fps:.2f} fps** "
              f"({args.pipeline_frames} frames after warm-up); H.264 encoding at 720p runs at "
              f"{h264_720:.1f} fps, {h264_720 / default_fps:.1f}x the pipeline: not the bottleneck.", "",
              "## Duration in = duration out (pipeline `none`, output .mp4 H.264)", "",
              "| clip | frames | announced by the container (s) | in: decoded (s) | out: measured on the file (s) |",
              "|---|---|---|---|---|"]
    for r in durs:
        lines.append(f"| {r['clip']} | {r['frames']} | {r['announced']:.3f} | {r['in']:.3f} | {r['out']:.3f} |")
    lines += ["", "In and out are the span from the first frame's timestamp to the end of the last "
              "frame (its timestamp plus its duration). The AVI's container duration counts from 0 "
              "while its first frame is at 0.04 s; its last index entry carries a guessed timestamp "
              "(681 instead of 682 at 1/50 s).", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
