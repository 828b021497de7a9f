"""Repair of a compressed stream with lost or damaged packets, using what the decoder knows.

A damaged packet does not only spoil its own frame: every P/B frame that follows refers
to it, so the error drifts through motion compensation until the next keyframe. FFmpeg
conceals the macroblocks it *knows* are lost (its ``ec`` option) but leaves the drift,
and the macroblocks decoded from garbage before the error was noticed.

:func:`repair_decoded` works on the decoded frames and their decoder flags
(:class:`DecodedFrame`: ``corrupt`` from PyAV's ``VideoFrame.is_corrupt``, ``key``):

1. In a frame flagged corrupt, the newly damaged region is found against the previous
   *repaired* output: flow from the frame to it (DIS), per 16x16 block the mean absolute
   difference to the warped previous output; blocks far above the frame's typical
   difference are damaged. They are filled from the previous output through flow
   (:func:`edgerestore.repair.fill.temporal_fill`). Where FFmpeg's concealment was
   already good, the difference is small and the block is left as decoded.
2. The damage is followed forward: each next frame's flow to the previous decoded frame
   (both carry the same drift, so the flow is sound) carries the damaged mask and the
   *correction* (repaired minus decoded) into place; the frame gets its decoded pixels
   plus the carried correction. This keeps what the following packets add (the residual
   of new content) and removes the drifted error, until a keyframe resets everything.

Only pixels in the damaged mask are written: frames before the first loss, and every
pixel outside the followed damage, come out bit for bit as decoded.
:func:`repair_lossy_stream` does it from a file (decode with PyAV, FFmpeg's best
concealment on, then repair). Frames: uint8 BGR at the boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from edgerestore.imageio import round_to_uint8
from edgerestore.repair.fill import FlowEstimator, Neighbour, gray, temporal_fill, warp
from edgerestore.runtime.video.bitstream import BEST_CONCEALMENT, cut_zero_runs, nal_length_size



def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="lossy stream repair")


@dataclass
class PacketData:
    """One demuxed packet: payload ``data`` and its timing (in ``time_base`` units)."""

    data: bytes
    pts: int | None
    dts: int | None
    key: bool
    time_base: object


@dataclass
class EncodedStream:
    """The packets of a file's first video stream and what decoding them needs."""

    codec: str
    extradata: bytes | None
    packets: list[PacketData] = field(default_factory=list)


@dataclass
class DecodedFrame:
    """A decoded frame: ``image`` uint8 BGR, ``pts``, ``corrupt`` (the decoder found
    errors in it: ``VideoFrame.is_corrupt``), ``key`` (a keyframe)."""

    image: np.ndarray
    pts: int | None
    corrupt: bool
    key: bool


@dataclass(frozen=True, kw_only=True)
class LossyRepairConfig:
    """``block``: the codec's macroblock size; a block of a corrupt frame is damaged when
    its mean absolute difference (gray levels, 0-255) to the motion-compensated previous
    output exceeds both ``min_residual`` and ``residual_ratio`` times the frame's median
    block difference; ``mask_grow``: pixels added around the followed mask per frame
    (flow is not exact at its border); ``flow_scale``: flow computed at this fraction of
    the frame size."""

    block: int = 16
    min_residual: float = 10.0
    residual_ratio: float = 4.0
    mask_grow: int = 2
    flow_scale: float = 0.5
    flow_preset: str = "fast"


def read_stream(path: str | os.PathLike) -> EncodedStream:
    """Demux the first video stream of ``path`` into :class:`EncodedStream`."""
    import av

    with av.open(os.fspath(path)) as c:
        s = c.streams.video[0]
        out = EncodedStream(codec=s.codec_context.name, extradata=s.codec_context.extradata)
        for p in c.demux(s):
            if p.size == 0:
                continue
            out.packets.append(PacketData(bytes(p), p.pts, p.dts, bool(p.is_keyframe), p.time_base))
    return out


def cut_damaged_packets(stream: EncodedStream) -> tuple[EncodedStream, list[int]]:
    """A copy of ``stream`` with every packet holding a zeroed run cut there
    (:func:`~edgerestore.runtime.video.bitstream.cut_zero_runs`, the one the video source
    applies with ``packet_filter="zero_runs"``); also the indexes of those packets."""
    size = nal_length_size(stream.extradata)
    packets, cut_at = [], []
    for i, p in enumerate(stream.packets):
        cut = cut_zero_runs(p.data, size)
        if cut is None:
            packets.append(p)
        else:
            cut_at.append(i)
            packets.append(PacketData(cut, p.pts, p.dts, p.key, p.time_base))
    return EncodedStream(stream.codec, stream.extradata, packets), cut_at


def decode_stream(stream: EncodedStream, *, concealment: str | None = BEST_CONCEALMENT) -> list[DecodedFrame]:
    """Decode ``stream`` with FFmpeg's error concealment ``concealment`` (its ``ec``
    option; ``None``: FFmpeg's default). Packets the decoder refuses are skipped (their
    frame is then missing). One decoder thread, so the concealment is deterministic."""
    import av

    ctx = av.CodecContext.create(stream.codec, "r")
    if stream.extradata:
        ctx.extradata = stream.extradata
    if concealment is not None:
        ctx.options = {"ec": concealment}
    ctx.thread_count = 1
    frames: list[DecodedFrame] = []
    for p in [*stream.packets, None]:
        pkt = None
        if p is not None:
            pkt = av.Packet(p.data)
            pkt.pts, pkt.dts, pkt.time_base = p.pts, p.dts, p.time_base
        try:
            decoded = ctx.decode(pkt)
        except av.error.InvalidDataError:
            continue
        for f in decoded:
            frames.append(DecodedFrame(f.to_ndarray(format="bgr24"), f.pts, bool(f.is_corrupt), bool(f.key_frame)))
    return frames


def _block_residual(img: np.ndarray, ref: np.ndarray, block: int) -> np.ndarray:
    """Mean absolute gray difference per ``block`` x ``block`` block (partial blocks at
    the right/bottom edge included)."""
    d = np.abs(gray(img).astype(np.float32) - gray(ref).astype(np.float32))
    h, w = d.shape
    bh, bw = -(-h // block), -(-w // block)
    pad = np.zeros((bh * block, bw * block), np.float32)
    cnt = np.zeros_like(pad)
    pad[:h, :w] = d
    cnt[:h, :w] = 1.0
    s = pad.reshape(bh, block, bw, block).sum(axis=(1, 3))
    n = cnt.reshape(bh, block, bw, block).sum(axis=(1, 3))
    return s / np.maximum(n, 1.0)


def new_damage(img: np.ndarray, prev_out: np.ndarray, flow: FlowEstimator,
               cfg: LossyRepairConfig = LossyRepairConfig()) -> np.ndarray:
    """Mask (bool H x W) of the blocks of a corrupt frame ``img`` that its motion-compensated
    previous output ``prev_out`` does not explain (see :class:`LossyRepairConfig`)."""
    f = flow(gray(img), gray(prev_out))
    warped, _ = warp(prev_out, f)
    r = _block_residual(img, warped, cfg.block)
    bad = (r > cfg.min_residual) & (r > cfg.residual_ratio * float(np.median(r)))
    h, w = img.shape[:2]
    m = np.repeat(np.repeat(bad, cfg.block, axis=0), cfg.block, axis=1)
    return m[:h, :w]


def damage_from_concealment(decoded: list[DecodedFrame], other: list[DecodedFrame], grow: int = 2
                            ) -> list[np.ndarray]:
    """Per frame, the pixels that depend on lost data (bool H x W): where two decodes of
    the same packets with different concealment differ (grown by ``grow`` pixels for the
    deblocking filter's reach). Intact macroblocks decode the same whatever the
    concealment; the concealed ones differ, and so does everything predicted from them
    in the following frames, through the decoder's own motion vectors."""
    cv2 = _cv2()
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * grow + 1,) * 2)
    other_by_pts = {f.pts: f.image for f in other}
    out = []
    for f in decoded:
        o = other_by_pts.get(f.pts)
        if o is None or o.shape != f.image.shape:
            out.append(np.zeros(f.image.shape[:2], bool))
            continue
        d = np.any(o != f.image, axis=2) if f.image.ndim == 3 else o != f.image
        out.append(cv2.dilate(d.astype(np.uint8), kernel).astype(bool) if d.any() else d)
    return out


def boundary_mismatch(img: np.ndarray, region: np.ndarray, valid: np.ndarray) -> float:
    """Mean absolute step (0-255) across the border of ``region`` in ``img``: between each
    pixel of the region and its 4-neighbours outside it that are ``valid``. Content that
    continues its surroundings steps little; a wrong fill shows a seam (the boundary
    matching criterion of classic error concealment). ``inf`` without a valid border."""
    x = img.astype(np.float32)
    total, count = 0.0, 0
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        q = np.roll(region, (-dy, -dx), axis=(0, 1))
        v = np.roll(valid, (-dy, -dx), axis=(0, 1))
        pairs = region & ~q & v
        if dy:
            pairs[-1 if dy > 0 else 0, :] = False
        else:
            pairs[:, -1 if dx > 0 else 0] = False
        if pairs.any():
            xs = np.roll(x, (-dy, -dx), axis=(0, 1))
            total += float(np.abs(x[pairs] - xs[pairs]).sum())
            count += int(pairs.sum()) * (x.shape[2] if x.ndim == 3 else 1)
    return total / count if count else float("inf")


def choose_fill(img: np.ndarray, fresh: np.ndarray, candidates: list[np.ndarray], valid: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per connected region of ``fresh``, the candidate (``img`` itself first: the
    decoder's concealment) with the smallest :func:`boundary_mismatch`. Returns the image
    and the mask of pixels whose value came from another candidate than ``img``."""
    cv2 = _cv2()
    out = img.copy()
    changed = np.zeros(fresh.shape, bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fresh.astype(np.uint8), connectivity=4)
    h, w = fresh.shape
    for lab in range(1, n):
        x0, y0, bw, bh, _ = stats[lab]
        ya, yb, xa, xb = max(0, y0 - 2), min(h, y0 + bh + 2), max(0, x0 - 2), min(w, x0 + bw + 2)
        r = labels[ya:yb, xa:xb] == lab
        v = valid[ya:yb, xa:xb]
        errs = [boundary_mismatch(c[ya:yb, xa:xb], r, v) for c in [img, *candidates]]
        best = int(np.argmin(errs))
        if best > 0:
            o = out[ya:yb, xa:xb]
            o[r] = candidates[best - 1][ya:yb, xa:xb][r]
            changed[ya:yb, xa:xb] |= r
    return out, changed


def repair_decoded(frames: list[DecodedFrame], damage: list[np.ndarray] | None = None,
                   cfg: LossyRepairConfig = LossyRepairConfig(), *, carry: bool = True
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Repair decoded frames (in display order, with their decoder flags).

    ``damage``: per frame, the pixels known to depend on lost data
    (:func:`damage_from_concealment`); ``None``: found from the frames (corrupt-flagged
    frames against the motion-compensated previous output, then followed by flow).
    Returns ``(images, masks)``: uint8 BGR frames, and per frame the bool mask of the
    pixels written (empty where the frame is returned as decoded)."""
    cv2 = _cv2()
    flow = FlowEstimator(cfg.flow_preset, cfg.flow_scale)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * cfg.mask_grow + 1,) * 2)
    outs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    prev_dec = prev_out = None
    mask = None  # followed damage (bool H x W) or None
    corr = None  # correction (repaired - decoded, float32) on the followed damage
    for k, fr in enumerate(frames):
        img = fr.image
        known = damage[k] if damage is not None else None
        if fr.key and not fr.corrupt and (known is None or not known.any()):
            mask = corr = None
        out = img
        written = np.zeros(img.shape[:2], bool)
        usable_prev = prev_out is not None and prev_out.shape == img.shape
        if known is not None and not known.any():
            mask = corr = None
        carried = np.zeros(img.shape[:2], bool)
        if carry and mask is not None and usable_prev:
            f = flow(gray(img), gray(prev_dec))
            moved, inside = warp(mask.astype(np.uint8) * 255, f)
            carried = (moved > 0) & inside
            if known is None:
                carried = cv2.dilate(carried.astype(np.uint8), kernel).astype(bool)
            else:
                carried &= known
            c, _ = warp(corr, f)
            est = img.astype(np.float32) + c
            out = img.copy()
            out[carried] = round_to_uint8(est[carried])
            written |= carried
        fresh = None
        if known is not None:
            fresh = known & ~carried
        elif fr.corrupt and usable_prev:
            fresh = new_damage(out, prev_out, flow, cfg)
        if fresh is not None and fresh.any() and usable_prev:
            tf, _ = temporal_fill(out, fresh, [Neighbour(prev_out, np.zeros(fresh.shape, bool))], flow)
            out, filled = choose_fill(out, fresh, [tf, prev_out], ~fresh)
            written |= filled
        mask = written if written.any() else None
        if mask is not None:
            corr = out.astype(np.float32) - img.astype(np.float32)
            corr[~mask] = 0.0
        outs.append(out)
        masks.append(written)
        prev_dec, prev_out = img, out
    return outs, masks


def repair_lossy_stream(path: str | os.PathLike, cfg: LossyRepairConfig = LossyRepairConfig(), *,
                        concealment: str | None = BEST_CONCEALMENT, refill: bool = False) -> list[np.ndarray]:
    """Decode ``path`` (first video stream) with PyAV and repair its packet loss: uint8
    BGR frames in display order.

    Packets holding zeroed runs are cut there (:func:`cut_damaged_packets`) and the
    stream is decoded with FFmpeg's concealment ``concealment``. ``refill=True`` also
    re-fills the concealed regions and their drift (:func:`repair_decoded` on the damage
    :func:`damage_from_concealment` finds); off by default: it measured worse than
    FFmpeg's concealment (``benchmarks/results/repair_lossy.md``)."""
    stream, _cut = cut_damaged_packets(read_stream(path))
    frames = decode_stream(stream, concealment=concealment)
    if not refill:
        return [f.image for f in frames]
    other = decode_stream(stream, concealment="0" if concealment != "0" else BEST_CONCEALMENT)
    return repair_decoded(frames, damage_from_concealment(frames, other), cfg)[0]
