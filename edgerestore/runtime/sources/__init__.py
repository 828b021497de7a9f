"""Sources: where frames come from.

Every source yields :class:`Frame` objects whose ``image`` is ``numpy.uint8``, ``H x W x 3``
BGR or ``H x W`` gray, with the frame's ``index`` (position in the source, 0-based) and
``timestamp`` (seconds of media time for files, seconds since the start for cameras and
streams).

A source is used as ``with src: for frame in src: ...`` or through a
:class:`~edgerestore.runtime.pipeline.Pipeline`. To write your own, subclass
:class:`Source` and implement ``_open``, ``_read`` (return a Frame, or None at the end)
and ``_close``.

One module per kind: ``files`` (video files), ``capture`` (cameras, and the reconnecting
base of live capture), ``stream`` (network streams, URL and DNS helpers), ``folder``
(folders of images), ``arrays`` (numpy arrays, generated frames); ``frame`` holds
:class:`Frame` and ``base`` the :class:`Source` base class.

:func:`open_source` turns what a user types into a source: a camera index (``0``) or
device path (``/dev/video0``), a stream URL (``rtsp://``, ``http(s)://``, ...), a folder
of images (sorted naturally: ``2.png`` before ``10.png``), ``synthetic`` (generated test
frames) or a video file (any container FFmpeg reads). Video files and streams are
decoded by FFmpeg's libraries (PyAV, ``edgerestore.runtime.video``); cameras and image
folders by OpenCV.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgerestore.imageio import IMAGE_EXTENSIONS, natural_key
from edgerestore.runtime.sources.arrays import ArraySource, SyntheticSource
from edgerestore.runtime.sources.base import Pacer, Source, as_uint8_frame, load_cv2
from edgerestore.runtime.sources.capture import CameraSource, CaptureSource
from edgerestore.runtime.sources.files import VideoFileSource
from edgerestore.runtime.sources.folder import ImageFolderSource
from edgerestore.runtime.sources.frame import Frame
from edgerestore.runtime.sources.stream import STREAM_SCHEMES, StreamSource, is_stream_url

__all__ = [
    "Frame", "Source", "open_source", "is_live", "as_uint8_frame", "load_cv2", "Pacer",
    "VideoFileSource", "CaptureSource", "CameraSource", "StreamSource", "ImageFolderSource",
    "SyntheticSource", "ArraySource", "STREAM_SCHEMES", "IMAGE_EXTENSIONS", "natural_key",
]


def open_source(spec, *, realtime: bool = False, pace_fps: float | None = None,
                stream_options: dict | None = None) -> Source:
    """Make a source from what a user types (see the module docstring).

    ``spec``: a :class:`Source` (returned as is), an int camera index, or a string: a
    digit string or ``/dev/video*`` is a camera, a URL a stream, a folder a folder of
    images, ``synthetic`` or ``synthetic:WxH[:N]`` generated frames, anything else a
    video file. ``realtime``/``pace_fps`` pace files and synthetic sources like a camera.
    ``stream_options``: keyword arguments for a :class:`StreamSource` (``rtsp_transport``,
    ``follow_redirects``, timeouts). Nothing is opened yet.
    """
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, int):
        return CameraSource(spec)
    text = str(spec)
    if text.isdigit():
        return CameraSource(int(text))
    if text.startswith("/dev/video"):
        return CameraSource(text)
    if is_stream_url(text):
        return StreamSource(text, **(stream_options or {}))
    m = re.fullmatch(r"synthetic(?::(\d+)x(\d+))?(?::(\d+))?", text)
    if m:
        w, h, n = m.groups()
        return SyntheticSource(int(w or 320), int(h or 180), int(n or 50),
                               fps=pace_fps or 25.0, realtime=realtime or pace_fps is not None)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, fps=pace_fps or 25.0, realtime=realtime or pace_fps is not None)
    return VideoFileSource(path, realtime=realtime, pace_fps=pace_fps)


def is_live(spec) -> bool:
    """Whether frames from ``spec`` (a :class:`Source`, or what :func:`open_source` takes)
    arrive in real time: a camera or a stream, or a file or synthetic source made with
    ``realtime=True``. ``edgerestore run`` picks live mode for these. Opens nothing."""
    return bool(open_source(spec).live)
