"""Damage for the repair benchmark, written apart from the detector and from
``edgerestore.repair.synth`` (issue #26: the benchmark's own synthetic damage was what
the detector had been tuned on).

What differs from ``synth``: lost slices run in *raster order* over macroblocks (as
H.264 slices do: a run of macroblocks that wraps to the next macroblock row), not
rectangles; grey slices take a grey level drawn per slice (not only 128); smeared slices
repeat, for each macroblock, the pixel row just above it (the concealment of a decoder
that copies the last good row down); stuck pixels may sit anywhere, the frame's edges
included; a separate kind passes stuck pixels through a lossy H.264 encode (so they no
longer read 0/255); frozen frames come in runs of 1-5 frames. Every draw comes from
``numpy.random.default_rng(seed)``.

Each function takes clean uint8 BGR frames and returns ``(damaged, reference, masks)``:
the damaged frames, the frames to compare a repair with (the clean frames; for the
encoded kind the clean frames through the same encode) and one bool ``H x W`` mask per
frame of the damaged pixels (for frozen frames: the whole frame).
"""

from __future__ import annotations

import io

import numpy as np

MB = 16

Result = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


def _raster_slices(rng, h: int, w: int, per_frame: float, length: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """Lists of (mb_row, mb_col) runs in raster order, for one frame."""
    rows, cols = h // MB, w // MB
    total = rows * cols
    runs = []
    for _ in range(rng.poisson(per_frame)):
        start = int(rng.integers(0, total))
        n = int(rng.integers(length[0], length[1] + 1))
        runs.append([divmod(k, cols) for k in range(start, min(total, start + n))])
    return runs


def lost_slices(frames, seed: int, *, per_frame: float = 1.5, length=(4, 40), smeared: bool = False) -> Result:
    """Slices of ``length`` macroblocks lost in raster order: flat grey (a level in
    96..160 per slice) or smeared (each macroblock repeats the pixel row above it;
    the top macroblock row repeats the row below it). Every other frame is left intact,
    so each loss has clean neighbours to be repaired from (and frames without loss are
    measured for false repairs)."""
    rng = np.random.default_rng(seed)
    out, masks = [], []
    for i, f in enumerate(frames):
        img = f.copy()
        m = np.zeros(f.shape[:2], bool)
        if i % 2 == 1:
            for run in _raster_slices(rng, *f.shape[:2], per_frame, length):
                level = int(rng.integers(96, 161))
                for r, c in run:
                    y0, x0 = r * MB, c * MB
                    if smeared:
                        src = img[y0 - 1] if y0 > 0 else img[y0 + MB]
                        img[y0:y0 + MB, x0:x0 + MB] = src[x0:x0 + MB][None]
                    else:
                        img[y0:y0 + MB, x0:x0 + MB] = level
                    m[y0:y0 + MB, x0:x0 + MB] = True
        out.append(img)
        masks.append(m)
    return out, list(frames), masks


def stuck_pixels(frames, seed: int, *, count: int = 40) -> Result:
    """``count`` positions stuck at 0 or 255 (all channels) in every frame."""
    rng = np.random.default_rng(seed)
    h, w = frames[0].shape[:2]
    ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
    vals = rng.choice(np.array([0, 255], np.uint8), count)
    m = np.zeros((h, w), bool)
    m[ys, xs] = True
    out = []
    for f in frames:
        img = f.copy()
        img[ys, xs] = vals[:, None]
        out.append(img)
    return out, list(frames), [m.copy() for _ in frames]


def encode_decode(frames, bit_rate: int) -> list[np.ndarray]:
    """H.264 (libx264 through PyAV) at ``bit_rate`` and back: even sizes only."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt, st.bit_rate = w, h, "yuv420p", bit_rate
        for f in frames:
            c.mux(st.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        c.mux(st.encode(None))
    buf.seek(0)
    with av.open(buf) as c:
        return [fr.to_ndarray(format="bgr24") for fr in c.decode(video=0)]


def stuck_pixels_encoded(frames, seed: int, *, count: int = 40, bits_per_pixel: float = 0.15) -> Result:
    """Stuck pixels, then the clip through a lossy H.264 encode (the FFV1 step of the
    issue's FFV1 -> H.264 -> decode chain is lossless and left out): the stuck pixels
    are smeared by the codec and no longer read exactly 0/255. The reference is the
    clean clip through the same encode; the mask is the stuck positions."""
    damaged, _, masks = stuck_pixels(frames, seed, count=count)
    h, w = frames[0].shape[:2]
    rate = int(bits_per_pixel * h * w * 25)
    return encode_decode(damaged, rate), encode_decode(list(frames), rate), masks


def frozen_runs(frames, seed: int, *, runs: int = 3, length=(1, 5)) -> Result:
    """``runs`` runs of 1-5 frames that repeat the frame before the run (a stalled
    camera or link), not overlapping, never the first frame."""
    rng = np.random.default_rng(seed)
    n = len(frames)
    out = [f.copy() for f in frames]
    masks = [np.zeros(frames[0].shape[:2], bool) for _ in frames]
    taken = np.zeros(n, bool)
    for _ in range(runs):
        for _try in range(20):
            k = int(rng.integers(length[0], length[1] + 1))
            s = int(rng.integers(1, max(2, n - k - 1)))
            if taken[max(0, s - 2):s + k + 1].any():
                continue
            for j in range(s, min(n, s + k)):
                out[j] = frames[s - 1].copy()
                masks[j][:] = True
            taken[s:s + k] = True
            break
    return out, list(frames), masks


KINDS = {
    "grey slices": lambda f, s: lost_slices(f, s),
    "smeared slices": lambda f, s: lost_slices(f, s, smeared=True),
    "stuck pixels": stuck_pixels,
    "stuck pixels after H.264": stuck_pixels_encoded,
    "frozen runs 1-5": frozen_runs,
}
