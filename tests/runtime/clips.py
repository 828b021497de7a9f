"""Helpers that write small real video clips and image folders with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_frames(n: int, w: int = 96, h: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` distinct uint8 BGR frames: smooth gradients with the frame number in the mean."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        base = (xx * 255 // max(w - 1, 1) + 3 * i) % 256
        img = np.stack([base, (yy * 255 // max(h - 1, 1)), np.full_like(base, (40 + 5 * i) % 256)], axis=-1)
        img = img + rng.integers(0, 8, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0, codec: str | None = None) -> Path:
    codec = codec or {".mkv": "FFV1", ".mp4": "mp4v", ".avi": "MJPG"}[path.suffix]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {codec} to {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_clip(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def truncate(src: Path, dst: Path, keep: float) -> Path:
    """Copy the first ``keep`` fraction of the bytes of ``src`` to ``dst``."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
