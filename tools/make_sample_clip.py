"""Make the shipped sample clip ``edgerestore/assets/sample_noisy.mp4``.

What ``edgerestore run`` restores when called without an input. Recipe (deterministic):

* source: ``dashcam_solidWhiteRight.mp4`` (Udacity self-driving-car lane-lines clip,
  MIT licence; 960x540, 25 fps), from ``../shared/data/video`` or ``--source``;
* the first 2 s (50 frames), resized to 480x270 with ``INTER_AREA``;
* additive Gaussian noise, sigma 15 on the 0-255 scale, ``numpy.random.default_rng(15)``,
  clipped and rounded to 8 bits;
* written with OpenCV as MPEG-4 part 2 (``mp4v``) at 25 fps, at the highest quality the
  writer offers, so the noise survives the encoder reasonably well (the encoder still
  smooths some of it: the noise in the file is not exactly i.i.d. Gaussian).

The clip is kept below ~2 MB. Usage::

    python tools/make_sample_clip.py [--source PATH] [--out edgerestore/assets/sample_noisy.mp4]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "video" / "dashcam_solidWhiteRight.mp4"
DEFAULT_OUT = REPO / "edgerestore" / "assets" / "sample_noisy.mp4"
SIZE = (480, 270)
FRAMES = 50
SIGMA = 15.0
SEED = 15


def make(source: Path, out: Path, *, frames: int = FRAMES, size=SIZE, sigma: float = SIGMA,
         seed: int = SEED) -> int:
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    rng = np.random.default_rng(seed)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
    n = 0
    try:
        while n < frames:
            ok, img = cap.read()
            if not ok:
                break
            small = cv2.resize(img, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            noisy = small + rng.normal(0.0, sigma, small.shape).astype(np.float32)
            writer.write(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
            n += 1
    finally:
        writer.release()
        cap.release()
    os.replace(tmp, out)
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    n = make(args.source, args.out)
    print(f"wrote {n} frames, {args.out.stat().st_size / 1e6:.2f} MB to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
