"""Damage synthesis for tests and benchmarks: what a lossy link or a bad sensor does.

:func:`damage_clip` takes clean uint8 frames and returns a :class:`DamagedClip`: the
damaged frames, their timestamps and the ground truth (a per-pixel mask per frame and
damage kind, the indexes of frozen frames and the gaps left by dropped frames). Every
draw comes from one ``numpy.random.Generator`` seeded by ``seed``, so a clip is
reproducible.

Damage kinds (see ``docs/repair.md``):

* ``packet_loss``: rectangular runs of 16x16 macroblocks, aligned on the macroblock grid,
  that are flat grey or smeared copies of the pixel row above (or column to the left of)
  the run; a slice never overlaps a slice of the previous frame, so it appears in one
  frame and not the next.
* ``dead_pixels``: fixed positions stuck at 0 or 255 (all channels) in every frame.
* ``frozen``: a frame replaced by an exact copy of the frame before it.
* ``dropped``: a frame removed; its timestamp is missing from the output (a gap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgerestore.errors import InputError

BLOCK = 16


@dataclass(frozen=True, kw_only=True)
class DamageSpec:
    """How much damage :func:`damage_clip` makes.

    ``slices_per_frame``: mean number of packet-loss slices per frame (Poisson);
    ``slice_width``/``slice_height``: inclusive ranges in macroblocks;
    ``smear_fraction``: share of slices that are smeared rather than flat grey;
    ``grey_values``: the flat values a decoder shows for a lost block;
    ``dead_pixels``: number of stuck pixel positions (same in every frame);
    ``frozen_rate``/``drop_rate``: chance per frame (never the first frame).
    """

    slices_per_frame: float = 1.0
    slice_width: tuple[int, int] = (2, 10)
    slice_height: tuple[int, int] = (1, 3)
    smear_fraction: float = 0.5
    grey_values: tuple[int, ...] = (128,)
    dead_pixels: int = 0
    frozen_rate: float = 0.0
    drop_rate: float = 0.0
    block: int = BLOCK


@dataclass
class DamagedClip:
    """A damaged clip and its ground truth (all lists are aligned with ``frames``)."""

    frames: list[np.ndarray]
    timestamps: list[float]
    clean: list[np.ndarray]
    source_index: list[int]
    masks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    frozen: list[int] = field(default_factory=list)
    gaps: dict[int, int] = field(default_factory=dict)  # output index -> frames missing before it
    dropped: list[int] = field(default_factory=list)    # source indexes dropped

    def damage_mask(self, i: int) -> np.ndarray:
        """All damaged pixels of frame ``i`` (union of the kinds)."""
        out = np.zeros(self.frames[i].shape[:2], bool)
        for m in self.masks.values():
            out |= m[i]
        return out


def _check_frames(frames: Sequence[np.ndarray]) -> None:
    if len(frames) == 0:
        raise InputError("damage_clip needs at least one frame")
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.shape != shape or f.ndim not in (2, 3):
            raise InputError(f"frame {i}: expected uint8 frames of one shape {shape}, got {f.dtype} {f.shape}")


def _slice_rects(rng: np.random.Generator, h: int, w: int, spec: DamageSpec,
                 avoid: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Macroblock-aligned rectangles (y0, y1, x0, x1) in pixels, not overlapping ``avoid``."""
    b = spec.block
    nby, nbx = h // b, w // b
    if nby < 1 or nbx < 1:
        return []
    n = rng.poisson(spec.slices_per_frame)
    rects: list[tuple[int, int, int, int]] = []
    taken = avoid.copy()
    for _ in range(n):
        for _try in range(20):
            bw = int(rng.integers(spec.slice_width[0], spec.slice_width[1] + 1))
            bh = int(rng.integers(spec.slice_height[0], spec.slice_height[1] + 1))
            bw, bh = min(bw, nbx), min(bh, nby)
            by = int(rng.integers(0, nby - bh + 1))
            bx = int(rng.integers(0, nbx - bw + 1))
            y0, y1, x0, x1 = by * b, (by + bh) * b, bx * b, (bx + bw) * b
            # one macroblock of margin so two slices never touch
            if taken[max(0, y0 - b):y1 + b, max(0, x0 - b):x1 + b].any():
                continue
            taken[y0:y1, x0:x1] = True
            rects.append((y0, y1, x0, x1))
            break
    return rects


def damage_clip(frames: Sequence[np.ndarray], spec: DamageSpec | None = None, *, seed: int = 0,
                fps: float = 25.0) -> DamagedClip:
    """Damage clean uint8 frames (BGR HxWx3 or gray HxW) as ``spec`` says; reproducible by ``seed``."""
    _check_frames(frames)
    spec = spec or DamageSpec()
    rng = np.random.default_rng(seed)
    h, w = frames[0].shape[:2]

    # Dead pixels: fixed positions, one value each, away from the border.
    dead = np.zeros((h, w), bool)
    dead_val = np.zeros((h, w), np.uint8)
    if spec.dead_pixels > 0 and h > 2 and w > 2:
        ys = rng.integers(1, h - 1, spec.dead_pixels)
        xs = rng.integers(1, w - 1, spec.dead_pixels)
        vals = rng.choice(np.array([0, 255], np.uint8), spec.dead_pixels)
        dead[ys, xs] = True
        dead_val[ys, xs] = vals

    clip = DamagedClip(frames=[], timestamps=[], clean=[], source_index=[],
                       masks={"packet_loss": [], "dead_pixels": []})
    prev_slices = np.zeros((h, w), bool)
    missing = 0
    for i, clean in enumerate(frames):
        if i > 0 and rng.random() < spec.drop_rate:
            clip.dropped.append(i)
            missing += 1
            prev_slices = np.zeros((h, w), bool)
            continue
        frozen = i > 0 and len(clip.frames) > 0 and rng.random() < spec.frozen_rate
        if frozen:
            img = clip.frames[-1].copy()
            loss = clip.masks["packet_loss"][-1].copy()
            clip.frozen.append(len(clip.frames))
        else:
            img = clean.copy()
            loss = np.zeros((h, w), bool)
            if dead.any():  # the sensor comes before the link: slices may cover dead pixels
                img[dead] = dead_val[dead][:, None] if img.ndim == 3 else dead_val[dead]
            for (y0, y1, x0, x1) in _slice_rects(rng, h, w, spec, prev_slices):
                if rng.random() < spec.smear_fraction:
                    if rng.random() < 0.5:  # vertical smear: the row above (below at the top)
                        src = img[y0 - 1] if y0 > 0 else img[min(y1, h - 1)]
                        img[y0:y1, x0:x1] = src[x0:x1][None]
                    else:                   # horizontal smear: the column left (right at the edge)
                        src = img[:, x0 - 1] if x0 > 0 else img[:, min(x1, w - 1)]
                        img[y0:y1, x0:x1] = src[y0:y1][:, None]
                else:
                    img[y0:y1, x0:x1] = rng.choice(np.asarray(spec.grey_values, np.uint8))
                loss[y0:y1, x0:x1] = True
        if missing:
            clip.gaps[len(clip.frames)] = missing
            missing = 0
        prev_slices = loss
        clip.frames.append(img)
        clip.timestamps.append(i / fps)
        clip.clean.append(clean)
        clip.source_index.append(i)
        clip.masks["packet_loss"].append(loss)
        clip.masks["dead_pixels"].append(dead & ~loss)
    return clip


def read_frames(path, *, count: int | None = None, start: int = 0, size: tuple[int, int] | None = None,
                crop: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
    """Frames ``start .. start+count`` of a video as uint8 BGR (optionally cropped
    ``(y0, y1, x0, x1)`` then resized to ``size=(w, h)``) - for tests and benchmarks."""
    from edgerestore._lazy import require

    cv2 = require("cv2", purpose="reading video frames")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"cannot open video {path}")
    out: list[np.ndarray] = []
    try:
        i = 0
        while count is None or len(out) < count:
            ok, img = cap.read()
            if not ok:
                break
            if i >= start:
                if crop is not None:
                    y0, y1, x0, x1 = crop
                    img = np.ascontiguousarray(img[y0:y1, x0:x1])
                if size is not None:
                    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                out.append(img)
            i += 1
    finally:
        cap.release()
    return out


def h264_round_trip(frames: Sequence[np.ndarray], bit_rate: int, *, fps: int = 25,
                    gop: int = 12) -> list[np.ndarray]:
    """Encode uint8 BGR frames (even width and height) with H.264 (libx264, ``bit_rate`` in
    bit/s, a keyframe every ``gop`` frames) through PyAV and decode them back: clean
    footage with real compression artefacts, for tests and benchmarks."""
    import io

    from edgerestore._lazy import require

    av = require("av", purpose="H.264 re-encoding")
    _check_frames(frames)
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.bit_rate = int(bit_rate)
        st.codec_context.gop_size = gop
        st.codec_context.options = {"preset": "veryfast", "tune": "zerolatency"}
        for f in frames:
            vf = f if f.ndim == 3 else np.repeat(f[:, :, None], 3, axis=2)
            out.mux(st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(vf), format="bgr24")))
        out.mux(st.encode(None))
    buf.seek(0)
    with av.open(buf) as inp:
        dec = [fr.to_ndarray(format="bgr24") for fr in inp.decode(video=0)]
    return dec if frames[0].ndim == 3 else [d[:, :, 1].copy() for d in dec]
