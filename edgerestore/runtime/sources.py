"""Sources: where frames come from.

Every source yields :class:`Frame` objects whose ``image`` is ``numpy.uint8``, ``H x W x 3``
BGR or ``H x W`` gray, with the frame's ``index`` (position in the source, 0-based) and
``timestamp`` (seconds of media time for files, seconds since the start for cameras and
streams).

A source is used as ``with src: for frame in src: ...`` or through a
:class:`~edgerestore.runtime.pipeline.Pipeline`. To write your own, subclass
:class:`Source` and implement ``_open``, ``_read`` (return a Frame, or None at the end)
and ``_close``.

:func:`open_source` turns what a user types into a source: a camera index (``0``) or
device path (``/dev/video0``), a stream URL (``rtsp://``, ``http(s)://``, ...), a folder
of images (sorted naturally: ``2.png`` before ``10.png``), ``synthetic`` (generated test
frames) or a video file (any container OpenCV reads).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edgerestore.runtime.errors import DecodeError, SourceError, SourceLost

log = logging.getLogger("edgerestore.runtime")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="reading and writing video")


@dataclass(slots=True)
class Frame:
    """One frame on its way through a pipeline.

    ``image``: uint8 ``H x W x 3`` BGR or ``H x W`` gray at the boundaries; float32 in
    [0, 1] between stages. ``t_capture`` is ``time.perf_counter()`` when the frame was
    read, used to measure latency.
    """

    image: np.ndarray
    index: int
    timestamp: float
    t_capture: float = field(default_factory=time.perf_counter)


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def as_uint8_frame(img: np.ndarray, *, what: str = "frame") -> np.ndarray:
    """Bring a decoded image to the boundary convention: uint8, HxW or HxWx3 BGR.

    16-bit images are scaled to 8 bits, BGRA loses its alpha, HxWx1 becomes HxW.
    """
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise SourceError(f"{what} has dtype {img.dtype}; sources must produce uint8 frames")
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            img = img[:, :, 0]
        elif c == 4:
            img = np.ascontiguousarray(img[:, :, :3])
        elif c != 3:
            raise SourceError(f"{what} has {c} channels; expected 1 (gray), 3 (BGR) or 4 (BGRA)")
    elif img.ndim != 2:
        raise SourceError(f"{what} has shape {img.shape}; expected H x W or H x W x 3")
    return img


class Source:
    """Base class of all sources.

    Attributes a pipeline reads: ``name`` (for messages), ``live`` (frames arrive in real
    time: cameras, streams, paced files), ``fps`` (None if unknown), ``frame_count``
    (None if unknown, e.g. a camera), ``skipped`` (files or frames skipped with a
    warning), ``reconnects`` (how often a lost camera/stream was reopened).
    """

    name: str = "source"
    live: bool = False
    fps: float | None = None
    frame_count: int | None = None

    def __init__(self) -> None:
        self._opened = False
        self._index = 0
        self._stop = threading.Event()
        self.skipped: list[str] = []
        self.reconnects = 0

    # -- to implement -----------------------------------------------------------------
    def _open(self) -> None:
        """Open the device or file; raise SourceError if impossible."""

    def _read(self) -> Frame | None:
        """Return the next frame, None at the end; raise DecodeError on a read failure."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release the device or file."""

    # -- public -----------------------------------------------------------------------
    def open(self) -> "Source":
        if not self._opened:
            self._stop.clear()
            self._open()
            self._opened = True
        return self

    def read(self) -> Frame | None:
        if not self._opened:
            self.open()
        return self._read()

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._close()

    def interrupt(self) -> None:
        """Ask a source waiting (pacing, reconnect back-off) to return soon."""
        self._stop.set()

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        self.open()
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _Pacer:
    """Releases frames at a fixed rate (to replay a file or synthetic source in real time)."""

    def __init__(self, fps: float | None, stop: threading.Event):
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self.stop = stop
        self.next_t: float | None = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.perf_counter()
        if self.next_t is None:
            self.next_t = now
        delay = self.next_t - now
        if delay > 0:
            self.stop.wait(delay)
        self.next_t = max(self.next_t + self.period, time.perf_counter() - self.period)


class _ReleasesCapture:
    """Mixin for sources that read through an OpenCV ``VideoCapture`` held in ``_cap``."""

    _cap = None

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource(_ReleasesCapture, Source):
    """A video file in any container OpenCV reads (mp4, mkv, avi, mov, ...).

    ``realtime=True`` releases frames at the file's frame rate (or ``pace_fps``), as a
    camera would; used with live mode to simulate a camera from a recording.
    A read failure before the frame count the container announces raises
    :class:`DecodeError` naming the frame.
    """

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, pace_fps: float | None = None):
        super().__init__()
        self.path = Path(path)
        self.name = str(path)
        self.realtime = realtime or pace_fps is not None
        self.live = self.realtime
        self.pace_fps = pace_fps
        self._cap = None

    def _open(self) -> None:
        cv2 = _cv2()
        if not self.path.exists():
            raise SourceError(f"input video not found: {self.path}")
        if not self.path.is_file():
            raise SourceError(f"input {self.path} is not a file")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"input video {self.path} is not readable (permission denied)")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"cannot open {self.path} as a video: OpenCV found no container or codec it can "
                "decode. The file may be truncated (an .mp4 cut short loses its index and cannot "
                "be opened at all), corrupt, or use a codec this OpenCV build lacks; check it "
                "with `ffprobe`, or convert it: ffmpeg -i IN -c:v ffv1 OUT.mkv"
            )
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and math.isfinite(count) and count > 0 else None
        self._index = 0
        self._pacer = _Pacer(self.pace_fps or self.fps or 25.0, self._stop) if self.realtime else None

    def _read(self) -> Frame | None:
        cv2 = _cv2()
        if self._pacer is not None:
            self._pacer.wait()
        try:
            ok, img = self._cap.read()
        except cv2.error as exc:  # pragma: no cover - OpenCV rarely raises here
            ok, img = False, None
            log.debug("cv2 read error: %s", exc)
        if not ok or img is None or img.size == 0:
            expected = self.frame_count
            # Container frame counts can be estimates; only a clear shortfall is an error.
            if expected is not None and expected - self._index > max(1, round(0.01 * expected)):
                raise DecodeError(
                    f"{self.path}: decoding failed at frame {self._index} of {expected} "
                    f"announced by the container (the file is truncated or corrupt); "
                    f"frames 0-{self._index - 1} were read",
                    frame_index=self._index, expected=expected,
                )
            return None
        pos_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if self.fps and (not math.isfinite(pos_ms) or pos_ms <= 0 and self._index > 0):
            ts = self._index / self.fps
        else:
            ts = pos_ms / 1000.0
        frame = Frame(as_uint8_frame(img), self._index, ts)
        self._index += 1
        return frame


class _CaptureSource(_ReleasesCapture, Source):
    """A camera or network stream: live, and reopened with back-off when lost.

    ``reconnect``: reopen a lost device (True in live mode; in offline mode the run stops
    cleanly with what was written). None lets the pipeline decide from its mode.
    ``reconnect_timeout``: give up (raise :class:`SourceLost`) after this many seconds
    without a frame. Back-off between attempts: 0.25 s doubling up to 4 s.
    """

    live = True

    def __init__(self, target, *, reconnect: bool | None = None, reconnect_timeout: float = 30.0,
                 backend: int | None = None, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        super().__init__()
        self.target = target
        self.reconnect = reconnect
        self.reconnect_timeout = reconnect_timeout
        self.backend = backend
        self.want = (width, height, fps)
        self._cap = None
        self._t0 = None

    _timeouts_ms: tuple[int, int] | None = None  # (open, read) for network streams

    def _try_open(self):
        cv2 = _cv2()
        if self._timeouts_ms and hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):
            # Bounded waits, so a dead stream is noticed (and reopened) instead of hanging.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeouts_ms[0],
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeouts_ms[1]]
            backend = self.backend if self.backend is not None else cv2.CAP_FFMPEG
            cap = cv2.VideoCapture(self.target, backend, params)
        elif self.backend is not None:
            cap = cv2.VideoCapture(self.target, self.backend)
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            return None
        w, h, fps = self.want
        if w:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        if h:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        got = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(got) if got and math.isfinite(got) and 0 < got < 1000 else None
        return cap

    def _open(self) -> None:
        t = time.perf_counter()
        self._cap = self._try_open()
        self._open_s = time.perf_counter() - t
        if self._cap is None:
            raise SourceError(self._cannot_open_message())
        self._t0 = time.perf_counter()
        self._index = 0

    def _cannot_open_message(self) -> str:
        return f"cannot open {self.name}"

    def _reopen(self) -> bool:
        """Back-off reopen loop; True when a frame source is back, False on timeout/stop."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        deadline = time.perf_counter() + self.reconnect_timeout
        delay = 0.25
        while not self._stop.is_set():
            log.warning("%s lost at frame %d; reopening in %.2g s", self.name, self._index, delay)
            if self._stop.wait(min(delay, max(0.0, deadline - time.perf_counter()))):
                return False
            cap = self._try_open()
            if cap is not None:
                ok, img = cap.read()
                if ok and img is not None and img.size:
                    self._cap = cap
                    self.reconnects += 1
                    self._pending = img
                    log.warning("%s reopened (reconnect %d)", self.name, self.reconnects)
                    return True
                cap.release()
            if time.perf_counter() >= deadline:
                return False
            delay = min(delay * 2, 4.0)
        return False

    _pending = None

    def _read(self) -> Frame | None:
        img = None
        if self._pending is not None:
            img, self._pending = self._pending, None
        elif self._cap is not None:
            ok, img = self._cap.read()
            if not ok or img is None or img.size == 0:
                img = None
        if img is None:
            if self._stop.is_set():
                return None
            if not self.reconnect:
                raise DecodeError(
                    f"{self.name}: no frame at index {self._index} (device or stream lost)",
                    frame_index=self._index,
                )
            if not self._reopen():
                if self._stop.is_set():
                    return None
                raise SourceLost(
                    f"{self.name}: lost at frame {self._index} and not back after "
                    f"{self.reconnect_timeout:g} s of reconnect attempts",
                    frame_index=self._index,
                )
            return self._read()
        frame = Frame(as_uint8_frame(img), self._index, time.perf_counter() - self._t0)
        self._index += 1
        return frame


class CameraSource(_CaptureSource):
    """A camera: an index (``0``) or a device path (``/dev/video0``).

    ``width``, ``height``, ``fps`` request a capture mode (the camera may ignore them).
    """

    def __init__(self, device: int | str = 0, **kwargs):
        super().__init__(device, **kwargs)
        self.name = f"camera {device}"

    def _cannot_open_message(self) -> str:
        return (f"cannot open {self.name}: no such camera, it is busy, or permission is "
                "missing (on Linux: ls /dev/video*, and add yourself to the 'video' group)")


class StreamSource(_CaptureSource):
    """A network stream (``rtsp://``, ``http(s)://``, ``rtmp://``, ``udp://``, ...).

    Also accepts any path OpenCV opens, which tests use to exercise reconnection.
    ``open_timeout`` / ``read_timeout`` (seconds) bound OpenCV's waits on the network, so
    a dead stream is noticed and reopened instead of blocking the capture thread.
    """

    def __init__(self, url: str, *, open_timeout: float = 10.0, read_timeout: float = 5.0, **kwargs):
        super().__init__(str(url), **kwargs)
        self.name = _redact(str(url))
        self.open_timeout = float(open_timeout)
        self._timeouts_ms = (int(open_timeout * 1000), int(read_timeout * 1000))

    def _cannot_open_message(self) -> str:
        head = f"cannot open stream {self.name}"
        host = _url_host(str(self.target))
        if host is not None and not _resolves(host):
            return f"{head}: host {host!r} does not resolve (DNS); check the address in the URL"
        if getattr(self, "_open_s", 0.0) >= 0.9 * self.open_timeout:
            return (f"{head}: no answer within {self.open_timeout:g} s (open_timeout); the host or "
                    "port is not serving a stream, or a firewall drops the connection")
        return (f"{head}: unreachable host, refused connection, wrong URL or credentials, "
                "or a protocol this OpenCV build lacks (check it with `ffprobe URL`)")


def _url_host(url: str) -> str | None:
    """The host name of a URL, None for a plain path or an IP address."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def _resolves(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host`` resolves; True when DNS does not answer within ``timeout`` (unknown)."""
    import socket

    result: list[bool] = []

    def look() -> None:
        try:
            socket.getaddrinfo(host, None)
            result.append(True)
        except (OSError, UnicodeError):
            result.append(False)

    t = threading.Thread(target=look, name="er-dns", daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else True


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host``."""
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", url)


class ImageFolderSource(Source):
    """A folder of images, sorted naturally (``2.png`` before ``10.png``).

    Unreadable or 0-pixel files are skipped with a warning and listed in ``skipped``.
    Frames may differ in size and colour; sinks that need one size (video files) adapt.
    """

    def __init__(self, folder: str | os.PathLike, *, fps: float = 25.0,
                 extensions: Iterable[str] = IMAGE_EXTENSIONS, realtime: bool = False):
        super().__init__()
        self.folder = Path(folder)
        self.name = str(folder)
        self.fps = float(fps)
        self.extensions = tuple(e.lower() for e in extensions)
        self.realtime = realtime
        self.live = realtime
        self._files: list[Path] = []

    def _open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"input folder not found: {self.folder}")
        files = [p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in self.extensions]
        if not files:
            raise SourceError(
                f"no images in {self.folder} (looked for {', '.join(self.extensions)})"
            )
        self._files = sorted(files, key=lambda p: natural_key(p.name))
        self.frame_count = len(self._files)
        self._pos = 0
        self._index = 0
        self._pacer = _Pacer(self.fps, self._stop) if self.realtime else None

    def _read(self) -> Frame | None:
        cv2 = _cv2()
        while self._pos < len(self._files):
            path = self._files[self._pos]
            self._pos += 1
            try:
                data = np.fromfile(path, dtype=np.uint8)
            except OSError as exc:
                data = None
                reason = f"cannot read it ({exc.strerror})"
            else:
                reason = "0 bytes" if data.size == 0 else "not an image OpenCV can decode"
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
            if img is None or img.size == 0:
                if img is not None:
                    reason = "0 pixels"
                log.warning("skipping %s: %s", path, reason)
                self.skipped.append(f"{path.name}: {reason}")
                continue
            if self._pacer is not None:
                self._pacer.wait()
            frame = Frame(as_uint8_frame(img, what=str(path)), self._index, self._index / self.fps)
            self._index += 1
            return frame
        return None


class SyntheticSource(Source):
    """Generated frames for tests and benchmarks: a moving scene with edges and texture.

    ``noise_sigma`` (0-255 scale) adds seeded Gaussian noise; ``realtime=True`` releases
    frames at ``fps`` like a camera (set ``live``). ``gray=True`` yields HxW frames.
    """

    def __init__(self, width: int = 320, height: int = 180, frames: int | None = 50, *,
                 fps: float = 25.0, noise_sigma: float = 0.0, seed: int = 0,
                 realtime: bool = False, gray: bool = False):
        super().__init__()
        if width < 1 or height < 1:
            raise SourceError(f"synthetic source size must be at least 1x1, got {width}x{height}")
        self.size = (int(width), int(height))
        self.frame_count = frames
        self.fps = float(fps)
        self.noise_sigma = float(noise_sigma)
        self.seed = seed
        self.realtime = realtime
        self.live = realtime
        self.gray = gray
        self.name = f"synthetic {width}x{height}"

    def _open(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._index = 0
        self._pacer = _Pacer(self.fps, self._stop) if self.realtime else None
        w, h = self.size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self._yy, self._xx = yy, xx

    def clean(self, index: int) -> np.ndarray:
        """The noise-free frame ``index`` (uint8 BGR, or gray if ``gray``)."""
        w, h = self.size
        yy, xx = self._yy, self._xx
        t = index / self.fps
        base = 0.5 + 0.25 * np.sin(xx / max(w, 1) * 6.0 + t) * np.cos(yy / max(h, 1) * 4.0)
        img = np.stack([base, 0.8 * base + 0.1, 1.0 - 0.7 * base], axis=-1)
        cx, cy = (0.2 + 0.6 * ((t * 0.3) % 1.0)) * w, 0.5 * h
        r = 0.2 * min(w, h)
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[disk] = (0.9, 0.3, 0.1)
        img[(xx.astype(int) // 8 + yy.astype(int) // 8) % 2 == 0, :] *= 0.85  # texture
        out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out.mean(axis=2).astype(np.uint8) if self.gray else out

    def _read(self) -> Frame | None:
        if self.frame_count is not None and self._index >= self.frame_count:
            return None
        if self._pacer is not None:
            self._pacer.wait()
        img = self.clean(self._index)
        if self.noise_sigma > 0:
            noisy = img.astype(np.float32) + self._rng.normal(0, self.noise_sigma, img.shape).astype(np.float32)
            img = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
        frame = Frame(img, self._index, self._index / self.fps)
        self._index += 1
        return frame


class ArraySource(Source):
    """Frames from numpy arrays (any iterable of uint8 HxW or HxWx3 BGR arrays)."""

    def __init__(self, frames: Iterable[np.ndarray], *, fps: float = 25.0, name: str = "arrays"):
        super().__init__()
        self._frames = frames
        self.fps = float(fps)
        self.name = name
        try:
            self.frame_count = len(frames)  # type: ignore[arg-type]
        except TypeError:
            self.frame_count = None

    def _open(self) -> None:
        self._it = iter(self._frames)
        self._index = 0

    def _read(self) -> Frame | None:
        img = next(self._it, None)
        if img is None:
            return None
        img = np.asarray(img)
        if img.dtype != np.uint8:
            raise SourceError(
                f"array frame {self._index} has dtype {img.dtype}; frames are uint8 "
                "(for float images in [0, 1]: (img * 255).round().astype(np.uint8))"
            )
        frame = Frame(as_uint8_frame(img, what=f"array frame {self._index}"), self._index, self._index / self.fps)
        self._index += 1
        return frame


def open_source(spec, *, realtime: bool = False, pace_fps: float | None = None) -> Source:
    """Make a source from what a user types (see the module docstring).

    ``spec``: a :class:`Source` (returned as is), an int camera index, or a string: a
    digit string or ``/dev/video*`` is a camera, a URL a stream, a folder a folder of
    images, ``synthetic`` or ``synthetic:WxH[:N]`` generated frames, anything else a
    video file. ``realtime``/``pace_fps`` pace files and synthetic sources like a camera.
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
    if text.lower().startswith(STREAM_SCHEMES):
        return StreamSource(text)
    m = re.fullmatch(r"synthetic(?::(\d+)x(\d+))?(?::(\d+))?", text)
    if m:
        w, h, n = m.groups()
        return SyntheticSource(int(w or 320), int(h or 180), int(n or 50),
                               fps=pace_fps or 25.0, realtime=realtime or pace_fps is not None)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, fps=pace_fps or 25.0, realtime=realtime or pace_fps is not None)
    return VideoFileSource(path, realtime=realtime, pace_fps=pace_fps)
