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


def write_av_clip(path: Path, frames: list[np.ndarray], times: list[float] | None = None, *,
                  codec: str = "ffv1", pix_fmt: str = "bgr0", time_base=None, fps: float = 25.0,
                  options: dict | None = None, audio_s: float | None = None) -> Path:
    """Write ``frames`` (uint8 BGR, or uint16 BGR for > 8-bit formats) with PyAV, each at
    its time in ``times`` (seconds; default i / fps), in ``time_base`` (default 1/1000).
    ``audio_s``: add an AAC (mp4) or FLAC (mkv) track of that many seconds of a 440 Hz tone."""
    from fractions import Fraction

    import av

    tb = Fraction(time_base) if time_base else Fraction(1, 1000)
    times = times if times is not None else [i / fps for i in range(len(frames))]
    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=options or {})
        h, w = frames[0].shape[:2] if frames else (64, 96)
        st.width, st.height, st.pix_fmt = w, h, pix_fmt
        st.time_base = tb
        st.codec_context.time_base = tb
        ast = None
        if not frames:
            c.start_encoding()
        if audio_s:
            ast = c.add_stream("aac" if path.suffix in (".mp4", ".mov") else "flac", rate=48000)
        for img, t in zip(frames, times):
            f = av.VideoFrame.from_ndarray(img, format="bgr48le" if img.dtype == np.uint16 else "bgr24")
            f.pts = int(round(Fraction(t).limit_denominator(10**6) / tb))
            f.time_base = tb
            for p in st.encode(f):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
        if ast is not None:
            n = int(audio_s * 48000)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
            fmt = "fltp" if ast.codec_context.name == "aac" else "s16"
            for k in range(0, n, 1024):
                chunk = tone[k:k + 1024]
                data = chunk[None, :] if fmt == "fltp" else (chunk * 32767).astype(np.int16)[None, :]
                af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                af.sample_rate, af.pts = 48000, k
                for p in ast.encode(af):
                    c.mux(p)
            for p in ast.encode(None):
                c.mux(p)
    return path


def video_times(path: Path) -> list[float]:
    """Presentation times (s) of the video frames of ``path``, decoded with PyAV."""
    import av

    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]
