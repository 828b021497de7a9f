"""Bitstream-level cleaning of H.264/HEVC packets before they are decoded: bytes in,
bytes out, no decoding and no repair logic.

A lossy link or a recorder that loses data often leaves the lost bytes as zeros. Three
zero bytes in a row never occur inside an H.264/HEVC NAL unit (the encoder inserts
emulation-prevention bytes), so such a run marks damage. :func:`cut_zero_runs` cuts the
NAL unit holding it there and drops the rest of the packet, so that FFmpeg conceals from
the cut (its ``ec`` option, :data:`BEST_CONCEALMENT`) instead of decoding garbage until
it notices an error. An intact packet is never changed.

Used by the video source (``VideoFileSource(packet_filter="zero_runs")``, which the
``repair`` stage asks for) and by :mod:`edgerestore.repair.lossy_stream`.
"""

from __future__ import annotations

from typing import Callable

BEST_CONCEALMENT = "guess_mvs+deblock+favor_inter"
"""FFmpeg's strongest error concealment (the decoder's ``ec`` option): guess the motion
vectors of lost macroblocks, deblock the concealed ones, prefer the temporal guess."""

CUTTABLE_CODECS = frozenset({"h264", "hevc"})
"""Codecs whose NAL units cannot hold three zero bytes in a row."""


def nal_length_size(extradata: bytes | None) -> int | None:
    """NAL length-prefix size of an ``avcC``/``hvcC`` stream (MP4, MKV, AVI from FFmpeg),
    or ``None`` for an Annex B stream (start codes)."""
    if extradata and len(extradata) > 4 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return None


def cut_zero_runs(data: bytes, length_size: int | None) -> bytes | None:
    """``data`` cut where a zeroed run of bytes starts, or ``None`` if it has none (the
    packet is intact and is used as it is).

    ``length_size``: the NAL length-prefix size (:func:`nal_length_size`), ``None`` for
    Annex B (start codes; a zero run that ends in a start code is not damage). The NAL
    unit holding the run is cut there (its length prefix fixed) and the rest of the
    packet dropped; what is left may be empty (``b""``)."""
    if length_size is None:  # Annex B: zero runs not ending in a start code
        pos = 0
        while True:
            z = data.find(b"\0\0\0", pos)
            if z < 0:
                return None
            end = z
            while end < len(data) and data[end] == 0:
                end += 1
            if end < len(data) and data[end] != 1:
                cut = data[:z].rstrip(b"\0")
                return cut if len(cut) > 4 else b""
            pos = end
    out = bytearray()
    pos = 0
    while pos + length_size <= len(data):
        n = int.from_bytes(data[pos:pos + length_size], "big")
        body = data[pos + length_size:pos + length_size + n]
        z = body.find(b"\0\0\0")
        if n == 0 or n > len(data) - pos - length_size or z >= 0:
            if z < 0:  # a zeroed or broken length prefix: keep what came before
                return bytes(out) if out else b""
            cut = body[:z].rstrip(b"\0")
            if len(cut) > 2:
                out += len(cut).to_bytes(length_size, "big") + cut
            return bytes(out)
        out += data[pos:pos + length_size + n]
        pos += length_size + n
    return None


PACKET_FILTERS = ("zero_runs",)
"""The names :func:`packet_filter` takes (``VideoFileSource(packet_filter=...)``)."""


def packet_filter(name: str, codec: str, extradata: bytes | None) -> Callable[[bytes], bytes | None] | None:
    """The filter ``name`` for a stream of ``codec`` with ``extradata``: a function of a
    packet's bytes returning the bytes to decode instead, or None to decode them as
    they are; None when the filter does not apply to that codec (the stream is decoded
    untouched). Raises ValueError for an unknown name."""
    if name not in PACKET_FILTERS:
        raise ValueError(f"unknown packet filter {name!r}; known: {', '.join(PACKET_FILTERS)}")
    if codec not in CUTTABLE_CODECS:
        return None
    size = nal_length_size(extradata)
    return lambda data: cut_zero_runs(data, size)
