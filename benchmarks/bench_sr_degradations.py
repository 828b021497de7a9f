"""Super-resolution on real degradations: learned models minus bicubic interpolation of
the same low-resolution (LR) image, per image and mean, for several models side by side.

    python benchmarks/bench_sr_degradations.py                                   # shipped sr-x{s}
    python benchmarks/bench_sr_degradations.py --model old=/tmp/old/sr-x{s}.onnx --model new=sr-x{s}
    python benchmarks/bench_sr_degradations.py --scales 3 --sets Set14 --degradations matlab,cv2-cubic

How the LR image is made (this script's own code, written apart from the training's
``edgerestore/training/degrade.py``) from the 8-bit colour HR image cropped to a
multiple of the scale:

* ``matlab``: MATLAB-style antialiased bicubic (``edgerestore.resize.imresize``, the
  published definition of the SR papers' LR), rounded to 8 bits;
* ``cv2-cubic``: ``cv2.resize(HR, INTER_CUBIC)`` on uint8: no antialiasing (what most code does);
* ``cv2-area``: ``cv2.resize(HR, INTER_AREA)`` (box filter);
* ``jpeg60``: ``matlab``, then a colour JPEG at quality 60 (``cv2.imencode``, 4:2:0);
* ``h264``: frames of real clips (``--clips``, ``--frames`` each, cropped to a multiple
  of 12), ``matlab``-downscaled, encoded as one clip with libx264 CRF 28 (PyAV, preset
  medium, yuv420p) and decoded; each frame is an "image", PSNR against the original frame.

Each model upscales the LR colour image through the runtime's path
(``edgerestore.upscale.open_upscaler`` + ``upscale_array``: ONNX Runtime CPU, BT.601 Y
through the model, chroma bicubic); "bicubic" is MATLAB-style ``imresize(LR, scale)``.
PSNR on MATLAB's ``rgb2ycbcr`` Y (peak 255, ``scale`` border pixels shaved), as
``benchmarks/bench_sr.py``. ``--speed`` adds ms per 1080p output frame of each model,
interleaved in this one process (ratios only: the CPU is shared).

Writes ``benchmarks/results/sr_degradations.md`` (or ``--out``) and prints it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from _machine import cpu_description  # benchmarks/ is on sys.path when run as a script
from bench_sr import load_set, make_lr, psnr_y, to_u8

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

DEGRADATIONS = ("matlab", "cv2-cubic", "cv2-area", "jpeg60", "h264")
DEFAULT_CLIPS = ("dashcam_solidWhiteRight.mp4", "pedestrians_vtest.avi")
H264_CRF = 28
JPEG_QUALITY = 60


def crop(img: np.ndarray, multiple: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % multiple, : w - w % multiple]


def lr_image(hr: np.ndarray, scale: int, kind: str) -> np.ndarray:
    """The uint8 BGR LR image of ``hr`` (a multiple of ``scale``) for one still-image degradation."""
    import cv2

    h, w = hr.shape[:2]
    if kind == "matlab":
        return make_lr(hr, scale)
    if kind == "cv2-cubic":
        return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)
    if kind == "cv2-area":
        return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    if kind == "jpeg60":
        ok, buf = cv2.imencode(".jpg", make_lr(hr, scale), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    raise ValueError(kind)


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` decoded frames of a clip as uint8 BGR."""
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


def h264_round_trip(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Encode uint8 BGR frames (even size) as one libx264 clip at ``crf`` and decode them."""
    import av

    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25, 1)
    enc.options = {"crf": str(crf), "preset": "medium"}
    packets = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuv420p")
        vf.pts = i
        packets += enc.encode(vf)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    out = []
    for p in packets:
        out += [d.to_ndarray(format="bgr24") for d in dec.decode(p)]
    out += [d.to_ndarray(format="bgr24") for d in dec.decode(None)]
    assert len(out) == len(frames), (len(out), len(frames))
    return out


def cases(kind: str, scale: int, sets: dict, clips: list[tuple[str, list[np.ndarray]]]):
    """(set name, image name, HR uint8, LR uint8) for one degradation and scale."""
    from edgerestore.resize import modcrop

    if kind != "h264":
        for set_name, imgs in sets.items():
            for fname, img in imgs:
                hr = modcrop(img, scale)
                yield set_name, fname, hr, lr_image(hr, scale, kind)
        return
    for clip, frames in clips:
        hrs = [crop(f, 12 * scale // np.gcd(12, scale)) for f in frames]
        lrs = [make_lr(hr, scale) for hr in hrs]
        lh, lw = lrs[0].shape[:2]
        lrs = [lr[: lh - lh % 2, : lw - lw % 2] for lr in lrs]
        hrs = [hr[: lr.shape[0] * scale, : lr.shape[1] * scale] for hr, lr in zip(hrs, lrs)]
        for i, (hr, lr) in enumerate(zip(hrs, h264_round_trip(lrs, H264_CRF))):
            yield clip, f"frame {i}", hr, lr


def bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    from edgerestore.resize import imresize

    return to_u8(imresize(lr.astype(np.float64) / 255.0, scale))


def time_models(upscalers: dict, scale: int, repeat: int) -> dict[str, float]:
    """ms per 1080p output frame of each model, interleaved (median of ``repeat``)."""
    from edgerestore.upscale import upscale_array

    frame = np.random.default_rng(0).integers(0, 256, (1080 // scale, 1920 // scale, 3), dtype=np.uint8)
    ts = {k: [] for k in upscalers}
    for r in upscalers.values():
        upscale_array(r, frame)
    for _ in range(repeat):
        for k, r in upscalers.items():
            t0 = time.perf_counter()
            upscale_array(r, frame)
            ts[k].append(time.perf_counter() - t0)
    return {k: 1000 * statistics.median(v) for k, v in ts.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=TEMPLATE",
                    help="a model to measure: zoo name or .onnx path with {s} for the scale "
                    "(repeatable; default: shipped=sr-x{s})")
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--sets", default="Set5,Set14")
    ap.add_argument("--degradations", default=",".join(DEGRADATIONS))
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS), help="clips in ../shared/data/video for h264")
    ap.add_argument("--frames", type=int, default=12, help="frames per clip for h264")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed", type=int, default=0, metavar="REPEAT",
                    help="also time every model (REPEAT interleaved runs per scale)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sr_degradations.md"))
    args = ap.parse_args(argv)

    from edgerestore.upscale import open_upscaler, upscale_array

    models = dict(m.split("=", 1) for m in args.model) or {"shipped": "sr-x{s}"}
    scales = [int(s) for s in args.scales.split(",")]
    kinds = [k for k in args.degradations.split(",") if k]
    bad = [k for k in kinds if k not in DEGRADATIONS]
    if bad:
        ap.error(f"unknown degradation(s) {bad}; choose from {', '.join(DEGRADATIONS)}")
    sets = {name: load_set(name) for name in args.sets.split(",") if name}
    clips = ([(c, read_frames(DATA / "video" / c, args.frames)) for c in args.clips.split(",") if c]
             if "h264" in kinds else [])

    rows, per_image, speed, provenance = [], [], {}, {}
    for s in scales:
        ups = {label: open_upscaler(t.format(s=s), s, backend="ort-cpu", threads=args.threads)
               for label, t in models.items()}
        for label, r in ups.items():
            provenance[(label, s)] = (r.spec.name, str(r.spec.path), r.spec.provenance.get("steps"),
                                      r.spec.provenance.get("export_commit"))
        for kind in kinds:
            res: dict[str, dict[str, list[float]]] = {}
            for group, name, hr, lr in cases(kind, s, sets, clips):
                b = psnr_y(hr, bicubic(lr, s), s)
                gains = {label: psnr_y(hr, upscale_array(r, lr), s) - b for label, r in ups.items()}
                res.setdefault(group, {label: [] for label in ups})
                for label, g in gains.items():
                    res[group][label].append(g)
                per_image.append((kind, s, group, name, b, gains))
            for group, by_model in res.items():
                rows.append((kind, s, group, {k: (float(np.mean(v)), float(np.min(v)), int(np.sum(np.asarray(v) < 0)),
                                                  len(v)) for k, v in by_model.items()}))
                print(f"{kind} x{s} {group}: " + ", ".join(f"{k} {v[0]:+.2f}" for k, v in rows[-1][3].items()),
                      file=sys.stderr)
        if args.speed:
            speed[s] = time_models(ups, s, args.speed)
        for r in ups.values():
            r.close()

    labels = list(models)
    lines = ["# Super-resolution on real degradations (`benchmarks/bench_sr_degradations.py`)", "",
             f"Command: `python benchmarks/bench_sr_degradations.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip() + "  ",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_description()}, "
             f"ONNX Runtime CPU {args.threads} thread(s).", "",
             "Luma PSNR gain (dB) of each model over MATLAB-style bicubic interpolation of the same LR "
             "image: mean over the set, worst image, and images below bicubic. LR: `matlab` antialiased "
             "bicubic; `cv2-cubic` OpenCV INTER_CUBIC (aliased); `cv2-area` INTER_AREA; `jpeg60` matlab + "
             f"JPEG q{JPEG_QUALITY}; `h264` matlab + libx264 CRF {H264_CRF} on {args.frames} frames of each clip. "
             "See the script's docstring.", "",
             "Models: " + "; ".join(f"`{label}` = `{models[label]}`" for label in labels), "",
             "| degradation | scale | set | " + " | ".join(f"{k}: mean / worst / below" for k in labels) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in labels) + " |"]
    for kind, s, group, by_model in rows:
        cells = [f"**{m:+.2f}** / {w:+.2f} / {n}/{t}" for m, w, n, t in (by_model[k] for k in labels)]
        lines.append(f"| {kind} | x{s} | {group} | " + " | ".join(cells) + " |")
    lines += ["", "Model files:", ""]
    for (label, s), (name, path, steps, commit) in provenance.items():
        lines.append(f"* `{label}` x{s}: `{name}` ({Path(path).name}), {steps} training steps, "
                     f"exported at commit {str(commit)[:10]}")
    if speed:
        lines += ["", f"Speed, ms per 1080p output frame through `upscale_array` (colour), ONNX Runtime CPU "
                  f"{args.threads} thread(s), median of {args.speed} interleaved runs (shared CPU: compare ratios):", "",
                  "| scale | " + " | ".join(labels) + " | ratio to " + labels[0] + " |",
                  "| --- | " + " | ".join("---" for _ in labels) + " | --- |"]
        for s, ms in speed.items():
            lines.append(f"| x{s} | " + " | ".join(f"{ms[k]:.0f} ms" for k in labels) + " | "
                         + ", ".join(f"{ms[k] / ms[labels[0]]:.2f}" for k in labels[1:]) + " |")
    lines += ["", "Per image: bicubic PSNR, then each model's gain over it:", ""]
    for kind, s, group, name, b, gains in per_image:
        lines.append(f"* {kind} x{s} {group} {name}: bicubic {b:.2f}, "
                     + ", ".join(f"{k} {g:+.2f}" for k, g in gains.items()))
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
