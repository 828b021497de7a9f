"""Encoding frames into a video file with PyAV: the codec's encoder (software or NVENC),
a quality target (CRF), presentation timestamps kept, audio/subtitle streams of another
file copied through untouched, colour tags, rotation and container tags kept.

Synchronous and single-threaded: the video sink runs it in its own encoder thread.
Errors are PyAV's (``av.FFmpegError`` subclasses, OSError); the sink names the file.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import numpy as np

from edgerestore.runtime.video.codecs import DEFAULT_CRF, EncoderChoice, exact_conversion, load_av

log = logging.getLogger("edgerestore.runtime")

PIXEL_FORMATS = {"ffv1": "bgr0", "mjpeg": "yuvj420p"}
"""Codec -> pixel format of the encoded pictures (others: ``yuv420p``, or ``yuv444p``
when the frame has an odd width or height, which 4:2:0 cannot hold)."""

AUDIO_LEAD_S = 0.0
"""Copied packets are muxed up to this far ahead of the last video frame written (the
muxer interleaves; 0 keeps the audio from running past a video cut short)."""

TEN_BIT_CODECS = ("h265", "av1", "ffv1")
"""Codecs written at 10 bits from ``uint16`` frames (``yuv420p10le``, or ``yuv444p10le`` for
an odd size, ``p010le`` on NVENC; FFV1 ``gbrp10le``); others are written at 8 bits."""

LIBX265_MIN_WIDTH = 64
"""libx265 4.2 (PyAV's wheel) corrupts the heap and aborts the process on pictures narrower
than this (one CTU), from the sink's encoder thread even at 8 bits: refused instead."""

_SKIP_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}


class VideoWriter:
    """One output file (a path; PyAV encodes a surrogate-escaped name back to its bytes).

    ``encoder``: :class:`EncoderChoice`; ``time_base``: the unit of the output
    timestamps (give the input's, so its timestamps are kept exactly; default
    1/90000 s); ``fps``: the nominal rate (encoder rate control, players); ``crf``: the
    quality target (None: the encoder's default); ``colour``: FFmpeg's colorspace /
    color_range / color_primaries / color_trc numbers of the input (BT.601 limited range
    is used and tagged when unknown); ``rotation``: degrees for the display matrix;
    ``metadata``: container tags to keep; ``copy_from``: a file whose audio and subtitle
    streams are copied in (stream copy, no re-encoding), interleaved with the video; a
    stream the container cannot hold is skipped with a warning naming ``name`` (the file
    the user asked for; default ``target``, which may be a temporary name).
    """

    def __init__(self, target: str, *, encoder: EncoderChoice, time_base: Fraction | None = None,
                 fps: float | None = None, crf: int | None = None, colour: dict[str, int] | None = None,
                 rotation: int = 0, metadata: dict[str, str] | None = None, copy_from: str | None = None,
                 name: str | None = None):
        av = load_av()
        self.name = name or target
        self.av = av
        self.encoder = encoder
        self.time_base = Fraction(time_base) if time_base else Fraction(1, 90000)
        self.fps = Fraction(fps).limit_denominator(100000) if fps else None
        self.crf = crf
        self.colour = dict(colour or {})
        self.rotation = rotation
        self.container = av.open(target, "w")
        self.stream = None
        self.frames = 0
        self.first_pts: int | None = None
        self._held = None
        self.last_pts: int | None = None
        self.last_end: Fraction | None = None
        self.last_duration = Fraction(0)
        if metadata:
            for k, v in metadata.items():
                if k.lower() not in _SKIP_TAGS:
                    self.container.metadata[k] = v
        self._copy_in = None
        self._copies: dict[int, Any] = {}
        self._next_packet = None
        self._packets = None
        if copy_from is not None:
            self._open_copies(copy_from)

    # -- audio / subtitles --------------------------------------------------------------
    def _open_copies(self, path: str) -> None:
        av = self.av
        try:
            src = av.open(path, "r")
        except (av.FFmpegError, OSError) as exc:
            log.warning("not copying audio from %s: %s", path, exc)
            return
        streams = [s for s in src.streams if s.type in ("audio", "subtitle")]
        for s in streams:
            try:
                out = self.container.add_stream_from_template(s)
            except (av.FFmpegError, ValueError, OSError) as exc:
                log.warning("not copying %s stream %d (%s) into %s: %s", s.type, s.index,
                            s.codec_context.name if s.codec_context else "?", self.name, exc)
                continue
            self._copies[s.index] = out
        if not self._copies:
            src.close()
            return
        self._copy_in = src
        self._packets = src.demux(*[s for s in streams if s.index in self._copies])

    def _copy_until(self, t: float | None) -> None:
        """Mux the copied streams' packets that start before ``t`` seconds (all: None)."""
        if self._packets is None:
            return
        while True:
            pkt = self._next_packet
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._packets = None
                    return
                except (self.av.FFmpegError, OSError) as exc:
                    log.warning("copying audio stopped: %s", exc)
                    self._packets = None
                    return
                if pkt.dts is None or pkt.size == 0:
                    continue
            when = float((pkt.pts if pkt.pts is not None else pkt.dts) * pkt.time_base)
            if t is not None and when >= t:
                self._next_packet = pkt
                return
            self._next_packet = None
            pkt.stream = self._copies[pkt.stream.index]
            self.container.mux(pkt)

    # -- video ----------------------------------------------------------------------------
    def _open_stream(self, width: int, height: int, bits16: bool) -> None:
        enc = self.encoder
        rate = self.fps or Fraction(25)
        stream = self.container.add_stream(enc.name, rate=rate)
        stream.width, stream.height = width, height
        odd = width % 2 or height % 2
        pix = PIXEL_FORMATS.get(enc.codec, "yuv444p" if odd else "yuv420p")
        if enc.name == "libx265" and width < LIBX265_MIN_WIDTH:
            raise ValueError(f"libx265 cannot encode pictures narrower than {LIBX265_MIN_WIDTH} pixels "
                             f"(this one is {width}); write h264 or ffv1 instead")
        if bits16 and enc.codec == "ffv1":
            pix = "gbrp10le"
        elif bits16 and enc.codec in TEN_BIT_CODECS:
            pix = "p010le" if enc.hardware and not odd else ("yuv444p10le" if odd else "yuv420p10le")
        stream.pix_fmt = pix
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        options: dict[str, str] = {}
        if enc.codec in DEFAULT_CRF:
            crf = self.crf if self.crf is not None else DEFAULT_CRF[enc.codec]
            if enc.hardware:
                options.update({"rc": "vbr", "cq": str(max(crf, 1)), "b": "0"})
            else:
                options["crf"] = str(crf)
        stream.options = options
        cs = self.colour.get("colorspace") or 0
        rgb = pix in ("bgr0", "gbrp10le")
        if cs in (0, 2) or rgb:
            cs = 5 if not rgb else 0  # BT.601, what swscale uses for an untagged frame
        self._dst_colorspace = cs
        rng = self.colour.get("color_range") or 1
        if pix.startswith("yuvj"):
            rng = 2
        self._dst_range = rng
        cc = stream.codec_context
        if not rgb:
            cc.colorspace = cs
            cc.color_range = rng
            for k in ("color_primaries", "color_trc"):
                v = self.colour.get(k) or 0
                if v not in (0, 2):
                    setattr(cc, k, v)
        if self.rotation:
            try:
                stream.set_display_rotation(self.rotation)
            except Exception as exc:  # noqa: BLE001 - a tag, not worth failing the run
                log.warning("rotation %d not kept: %s", self.rotation, exc)
        self.stream = stream

    def write(self, img: np.ndarray, timestamp: float) -> None:
        """Encode one uint8 (or uint16) BGR / gray frame shown at ``timestamp`` seconds.
        Timestamps must increase; one that does not is moved one tick after the last."""
        av = self.av
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        bits16 = img.dtype == np.uint16
        if self.stream is None:
            self._open_stream(img.shape[1], img.shape[0], bits16)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr48le" if bits16 else "bgr24")
        target = self.stream.pix_fmt
        if target in ("bgr0", "gbrp10le"):
            frame = frame.reformat(format=target)
        else:
            frame = frame.reformat(format=target, dst_colorspace=self._dst_colorspace,
                                   dst_color_range=self._dst_range, interpolation=exact_conversion())
        pts = int(round(Fraction(timestamp).limit_denominator(10**9) / self.time_base))
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        frame.pts = pts
        frame.time_base = self.time_base
        self._copy_until(float(pts * self.time_base) + AUDIO_LEAD_S)
        if self._held is not None:
            self._encode(self._held, pts - self._held.pts)
        self._held = frame
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = pts
        self.frames += 1

    def _encode(self, frame, duration: int) -> None:
        """Encode ``frame`` shown for ``duration`` ticks (the muxer takes the last packet's
        duration as the end of the stream, so the output lasts as long as the input)."""
        frame.duration = max(1, int(duration))
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.last_end = (frame.pts + frame.duration) * self.time_base
        self.last_duration = frame.duration * self.time_base

    def close(self, *, copy_all: bool = True, last_duration_s: float | None = None) -> None:
        """Encode the last frame (shown for ``last_duration_s``, the input's last frame's
        duration, else one period), flush the encoder, copy the
        rest of the audio (all of it with ``copy_all``, else up to the end of the video),
        write the trailer. Raises on a write error."""
        try:
            if self._held is not None:
                period = (1 / self.fps if self.fps else Fraction(1, 25)) / self.time_base
                duration = period
                if last_duration_s:
                    duration = Fraction(last_duration_s).limit_denominator(10**9) / self.time_base
                self._encode(self._held, round(duration))
                self._held = None
            if self.stream is not None:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
            if self._copies:
                self._copy_until(None if copy_all else (float(self.last_end) if self.last_end else 0.0))
        finally:
            self._close_input()
        self.container.close()

    def abort(self) -> None:
        """Close without caring about errors (the file is discarded by the caller)."""
        self._close_input()
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - discarding
            pass

    def _close_input(self) -> None:
        if self._copy_in is not None:
            self._copy_in.close()
            self._copy_in = None
            self._packets = None
