"""Sinks: where restored frames go (one module per kind: ``video``, ``folder``, ``display``,
``memory``; the protocol in ``base``).

A sink receives uint8 frames (``H x W x 3`` BGR or ``H x W`` gray). Protocol:

* ``check()``: before any work, raise :class:`SinkError` if the output cannot be written
  (so a run never spends minutes restoring frames it cannot save);
* ``write(frame)`` for each frame, in order;
* ``close()``: finalise: files are written under a temporary name in the target folder
  and moved into place with ``os.replace`` here, so a crash never leaves a half file that
  looks finished; an interrupted run (Ctrl-C, truncated input) still gets a playable file;
* ``abort()``: discard what was written (used when a stage fails).

:func:`open_sink` turns what a user types into a sink: a folder (trailing ``/``, an
existing folder or no extension), ``-`` / ``null`` (discard), or a video file whose
extension picks the codec (``.mp4``/``.mkv``/``.mov``/``.m4v``: H.264 at CRF 23;
``.avi``: MJPEG; ``lossless=True``: FFV1 in ``.mkv``), encoded by FFmpeg (PyAV).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgerestore.runtime.sinks.base import Sink, check_writable_folder, to_bgr
from edgerestore.runtime.sinks.display import WindowSink
from edgerestore.runtime.sinks.folder import IMAGE_OUTPUT_EXTENSIONS, ImageFolderSink
from edgerestore.runtime.sinks.memory import CallbackSink, ListSink, NullSink
from edgerestore.runtime.sinks.video import CODECS, VideoFileSink

__all__ = ["Sink", "VideoFileSink", "ImageFolderSink", "WindowSink", "CallbackSink", "ListSink",
           "NullSink", "CODECS", "IMAGE_OUTPUT_EXTENSIONS", "check_writable_folder", "to_bgr",
           "is_folder_target", "open_sink"]


def is_folder_target(text: str) -> bool:
    """True when ``text`` names a folder output: a trailing separator, an existing folder,
    or no extension."""
    p = Path(text)
    return text.endswith(("/", os.sep)) or p.is_dir() or p.suffix == ""


def open_sink(spec, *, fps: float | None = None, codec: str | None = None, overwrite: bool = False,
              **video_options) -> Sink:
    """Make a sink from what a user types (see the module docstring). ``overwrite`` goes
    to an :class:`ImageFolderSink` (a folder holding an earlier run's frames);
    ``video_options`` (``crf``, ``lossless``, ``audio``, ``source``, ``hardware``) go to a
    :class:`VideoFileSink`; each is ignored by the other kinds."""
    if isinstance(spec, Sink):
        return spec
    if callable(spec):
        return CallbackSink(spec)
    text = str(spec)
    if text in ("-", "null"):
        return NullSink()
    if is_folder_target(text):
        return ImageFolderSink(text, overwrite=overwrite)
    return VideoFileSink(text, fps=fps, codec=codec, **video_options)
