"""``streams.toml``: the streams of a multi-stream run, with per-stream source, output
and options (``edgerestore run --streams streams.toml``).

::

    # run-wide settings (all optional; the command line wins where it gives them)
    pipeline = "model(name='dn-gray', sigma=15)"
    mode = "offline"              # or "live"
    output_dir = "restored/"      # outputs of the streams that name none
    batch_wait_ms = 20

    [[stream]]
    source = "cam0.mp4"           # file, camera index, device, URL, folder
    output = "front.mkv"          # optional: default <output_dir>/<source stem>_restored.mkv

    [[stream]]
    source = "rtsp://host/cam2"
    source_fps = 15               # optional per stream: source_fps, max_frames, crf,
    rtsp_transport = "tcp"        #   codec, lossless, rtsp_transport

Relative paths are taken from the TOML file's folder. Unknown keys are refused with the
list of known ones, so a typo does not pass silently.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgerestore.errors import InputError

RUN_KEYS = ("pipeline", "mode", "output_dir", "batch_wait_ms", "stream")
STREAM_KEYS = ("source", "output", "source_fps", "max_frames", "crf", "codec", "lossless", "rtsp_transport")


@dataclass
class StreamEntry:
    """One ``[[stream]]``: ``source`` (a path made absolute, or a camera/URL as written),
    ``output`` (None: named after the source), and its ``options`` (the other keys)."""

    source: str
    output: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamsFile:
    """What a streams file holds: the run-wide settings and the streams in order."""

    path: Path
    streams: list[StreamEntry]
    pipeline: str | None = None
    mode: str | None = None
    output_dir: str | None = None
    batch_wait_ms: float | None = None


def is_path_like(text: str) -> bool:
    """False for a camera index, a device and a URL (kept as written), True for a path."""
    return not ("://" in text or text.isdigit() or text == "synthetic")


def read_streams_file(path: str | Path) -> StreamsFile:
    """Read and check a streams file; raises :class:`InputError` naming the file, the key
    and the fix."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"streams file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the streams file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"streams file {p} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(RUN_KEYS))
    if unknown:
        raise InputError(f"streams file {p}: unknown key(s) {', '.join(unknown)}; known: {', '.join(RUN_KEYS)}")
    entries = data.get("stream")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"streams file {p} lists no stream; add one [[stream]] table per stream with "
                         "source = \"...\"")
    base = p.resolve().parent

    def resolved(text: str) -> str:
        return str(base / text) if is_path_like(text) and not Path(text).is_absolute() else text

    streams = []
    for k, e in enumerate(entries):
        where = f"streams file {p}, stream {k + 1}"
        if not isinstance(e, dict):
            raise InputError(f"{where}: expected a [[stream]] table")
        unknown = sorted(set(e) - set(STREAM_KEYS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(STREAM_KEYS)}")
        source = e.get("source")
        if source is None or not isinstance(source, (str, int)):
            raise InputError(f"{where} has no source; give source = \"cam0.mp4\" (a file, camera, URL)")
        output = e.get("output")
        if output is not None and not isinstance(output, str):
            raise InputError(f"{where}: output must be a string (a file or a folder ending with /)")
        options = {key: e[key] for key in STREAM_KEYS if key in e and key not in ("source", "output")}
        for key in ("source_fps", "max_frames"):
            if key in options and not (isinstance(options[key], (int, float)) and options[key] > 0):
                raise InputError(f"{where}: {key} must be a number > 0, got {options[key]!r}")
        out = None if output is None else (resolved(output) + ("/" if output.endswith("/") else ""))
        streams.append(StreamEntry(resolved(str(source)), out, options))
    mode = data.get("mode")
    if mode is not None and mode not in ("offline", "live"):
        raise InputError(f"streams file {p}: mode must be \"offline\" or \"live\", got {mode!r}")
    wait = data.get("batch_wait_ms")
    if wait is not None and not (isinstance(wait, (int, float)) and wait >= 0):
        raise InputError(f"streams file {p}: batch_wait_ms must be a number >= 0, got {wait!r}")
    out_dir = data.get("output_dir")
    return StreamsFile(p, streams, pipeline=data.get("pipeline"), mode=mode,
                       output_dir=None if out_dir is None else resolved(str(out_dir)), batch_wait_ms=wait)
