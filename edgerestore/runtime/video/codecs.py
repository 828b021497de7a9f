"""The codecs of video outputs and the hardware-codec probe.

``--codec`` names a *codec* (``h264``, ``h265``, ``av1``, ``ffv1``); an *encoder* is the
FFmpeg implementation that writes it (``libx264`` in software, ``h264_nvenc`` on an
NVIDIA GPU). :func:`choose_encoder` picks the hardware encoder when it opens here (a
real probe: a tiny encoder is opened, once per process) and otherwise the software one,
with the reason; :func:`choose_decoder` does the same for NVDEC decoding (PyAV's
``HWAccel("cuda")``, software fallback on). :func:`available_codecs` is what
``edgerestore info`` lists.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

log = logging.getLogger("edgerestore.runtime")

CODEC_CHOICES: dict[str, tuple[str, ...]] = {
    "h264": ("libx264",),
    "h265": ("libx265",),
    "av1": ("libsvtav1", "libaom-av1"),
    "ffv1": ("ffv1",),
    "mjpeg": ("mjpeg",),
}
"""Codec name -> software encoders in order of preference. ``--codec`` takes the first
four; ``mjpeg`` is what ``.avi`` files get by default."""

HARDWARE_ENCODERS = {"h264": "h264_nvenc", "h265": "hevc_nvenc", "av1": "av1_nvenc"}
"""Codec -> NVIDIA NVENC encoder, tried first when ``hardware`` is ``auto``."""

CRF_RANGE = {"h264": (0, 51), "h265": (0, 51), "av1": (0, 63)}
"""Codec -> the ``--crf`` values its encoder accepts (lower = better, bigger files)."""

DEFAULT_CRF = {"h264": 23, "h265": 28, "av1": 35}
"""FFmpeg's (the encoders') own defaults: what ``ffmpeg -c:v libx264`` gives."""

CONTAINER_CODECS = {
    ".mp4": ("h264", "h265", "av1"), ".m4v": ("h264", "h265", "av1"), ".mov": ("h264", "h265", "av1"),
    ".mkv": ("h264", "h265", "av1", "ffv1", "mjpeg"), ".avi": ("mjpeg", "ffv1", "h264"),
}
"""Video extension -> the codecs its container takes (the first is the default)."""


def exact_conversion(*, deep_output: bool = False):
    """The swscale flags for BGR <-> YUV conversions that are not biased: bilinear chroma,
    full chroma interpolation, accurate rounding. swscale's default (OpenCV's too) darkens
    every conversion by about 0.8 levels on decode and 1-2 on encode (see
    benchmarks/results/video_io.md).

    ``deep_output``: for a conversion *to* 16-bit BGR (``bgr48le``, 10-bit sources):
    without full chroma interpolation, which in FFmpeg 8.1's swscale garbles 4:2:0
    10-bit -> ``bgr48le`` (a quarter of the samples come out 0; tested in
    ``tests/runtime/test_video_io.py``); bilinear chroma with accurate rounding is
    unbiased there too."""
    from av.video.reformatter import Interpolation

    if deep_output:
        return Interpolation.BILINEAR | Interpolation.ACCURATE_RND
    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def load_av():
    """The ``av`` module (PyAV), or an error saying how to install it."""
    from edgerestore._lazy import require

    return require("av", purpose="reading and writing video files and streams")


def default_codec_for(ext: str, *, lossless: bool = False) -> str:
    """The codec an output with extension ``ext`` gets: FFV1 when ``lossless``, MJPEG for
    ``.avi``, H.264 otherwise."""
    if lossless:
        return "ffv1"
    return CONTAINER_CODECS.get(ext.lower(), ("h264",))[0]


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder chosen for a codec: ``name`` (FFmpeg's), ``hardware``, and ``reason``
    (why the hardware one was not taken, or None)."""

    codec: str
    name: str
    hardware: bool
    reason: str | None = None


@functools.lru_cache(maxsize=None)
def probe_encoder(name: str) -> str | None:
    """None when encoder ``name`` opens here for a 256x256 yuv420p stream, else why not
    (the FFmpeg error). Cached: a probe costs milliseconds, a failing NVENC probe more."""
    av = load_av()
    from fractions import Fraction

    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - not in this FFmpeg build
        return f"{name} is not in this FFmpeg build"
    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height = 256, 256
        ctx.pix_fmt = {"ffv1": "bgr0", "mjpeg": "yuvj420p"}.get(name, "yuv420p")
        ctx.time_base = Fraction(1, 25)
        ctx.framerate = Fraction(25, 1)
        ctx.open()
    except Exception as exc:  # noqa: BLE001 - the reason is what the caller reports
        if "nvenc" in name:
            return f"no NVIDIA GPU with NVENC usable here ({name}: {exc})"
        return f"{name} does not open: {exc}"
    return None


def choose_encoder(codec: str, *, hardware: str = "auto") -> EncoderChoice:
    """The encoder for ``codec``: with ``hardware='auto'`` the NVENC one when it opens
    here, otherwise the first software encoder that does; ``'off'`` software only.
    Raises ValueError naming the choices for an unknown codec, and RuntimeError when no
    encoder of the codec opens."""
    if codec not in CODEC_CHOICES:
        raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(list(CODEC_CHOICES)[:4])}")
    reason = None
    hw = HARDWARE_ENCODERS.get(codec)
    if hardware == "auto" and hw is not None:
        reason = probe_encoder(hw)
        if reason is None:
            return EncoderChoice(codec, hw, True)
        log.info("not using %s: %s; encoding %s in software", hw, reason, codec)
    for name in CODEC_CHOICES[codec]:
        why = probe_encoder(name)
        if why is None:
            return EncoderChoice(codec, name, False, reason)
        reason = why if reason is None else f"{reason}; {why}"
    raise RuntimeError(f"no encoder for {codec} works here: {reason}")


@functools.lru_cache(maxsize=None)
def cuda_decoding() -> str | None:
    """None when FFmpeg can open a CUDA device here (NVDEC decoding), else why not."""
    av = load_av()
    from av.codec.hwaccel import hwdevices_available

    if "cuda" not in hwdevices_available():
        return "this FFmpeg build has no CUDA hardware device support"
    try:  # the encoder probe also opens CUDA; NVDEC needs only the device
        from av.codec.hwaccel import HWAccel

        ctx = av.CodecContext.create("h264", "r", hwaccel=HWAccel("cuda", allow_software_fallback=False))
        ctx.open()
    except Exception as exc:  # noqa: BLE001
        return f"no NVIDIA GPU usable for NVDEC here (CUDA device: {exc})"
    return None


def choose_decoder(hardware: str = "auto"):
    """What :class:`~edgerestore.runtime.video.VideoReader` takes as ``hwaccel``: PyAV's
    ``HWAccel``, a device type name, or None (software).

    ``'auto'``: PyAV's ``HWAccel('cuda')`` (NVDEC, with FFmpeg's software fallback for
    streams NVDEC cannot take) when a CUDA device opens here, else None, logging why;
    ``'off'``: None; any other name: that FFmpeg hardware device type (``vaapi``,
    ``qsv``, ...), not probed. A device that then fails when the input is opened or at
    its first frame is dropped by :class:`~edgerestore.runtime.video.VideoReader`, which
    decodes in software and logs why."""
    if hardware == "off":
        return None
    if hardware != "auto":
        return hardware  # VideoReader makes the HWAccel, so a bad name falls back like a failure
    from av.codec.hwaccel import HWAccel

    reason = cuda_decoding()
    if reason is not None:
        log.info("decoding in software: %s", reason)
        return None
    return HWAccel("cuda", allow_software_fallback=True)


SOFTWARE_DECODERS = {"h264": ("h264",), "h265": ("hevc",), "av1": ("libdav1d", "av1"), "vp9": ("vp9",),
                     "ffv1": ("ffv1",), "mjpeg": ("mjpeg",), "mpeg4": ("mpeg4",)}
"""Codec -> FFmpeg's software decoders listed by ``edgerestore info``."""


def decoder_state(name: str) -> str:
    """'yes' when FFmpeg decoder ``name`` is in this build, else why not."""
    try:
        load_av().codec.Codec(name, "r")
    except Exception:  # noqa: BLE001 - not in this FFmpeg build
        return f"{name} is not in this FFmpeg build"
    return "yes"


def available_codecs() -> dict[str, dict[str, str]]:
    """For ``edgerestore info``: codec -> {encoder name: 'yes' or why not}, hardware
    encoders included, plus ``decode`` -> {'nvdec (cuda)': 'yes' or why not, then each
    software decoder of :data:`SOFTWARE_DECODERS`: 'yes' or why not}."""
    out: dict[str, dict[str, str]] = {}
    for codec, names in CODEC_CHOICES.items():
        entry = {}
        for name in ([HARDWARE_ENCODERS[codec]] if codec in HARDWARE_ENCODERS else []) + list(names):
            why = probe_encoder(name)
            entry[name] = "yes" if why is None else why
        out[codec] = entry
    why = cuda_decoding()
    out["decode"] = {"nvdec (cuda)": "yes" if why is None else why}
    for names in SOFTWARE_DECODERS.values():
        for name in names:
            out["decode"][name] = decoder_state(name)
    return out
