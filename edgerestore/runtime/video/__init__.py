"""Video files and streams on FFmpeg's libraries (PyAV): decoding with the container's
timestamps (``reader``), encoding with quality-targeted codecs, stream copy of audio and
subtitles and kept metadata (``writer``), and the codec table with the hardware-codec
probe (``codecs``).

The runtime's video sources (``sources/files.py``, ``sources/stream.py``) and the video
sink (``sinks/video.py``) are built on this package; it imports nothing else of the
runtime but its errors, so ``sysinfo``/``cli info`` can list codecs without a pipeline.
"""

from edgerestore.runtime.video.codecs import (
    CODEC_CHOICES, CRF_RANGE, DEFAULT_CRF, EncoderChoice, available_codecs, choose_decoder,
    choose_encoder, default_codec_for, load_av,
)
from edgerestore.runtime.video.reader import VideoInfo, VideoReader
from edgerestore.runtime.video.writer import VideoWriter

__all__ = ["CODEC_CHOICES", "CRF_RANGE", "DEFAULT_CRF", "EncoderChoice", "available_codecs",
           "choose_decoder", "choose_encoder", "default_codec_for", "load_av", "VideoInfo",
           "VideoReader", "VideoWriter"]
