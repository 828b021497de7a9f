"""Network streams (``rtsp://``, ``http(s)://``, ``udp://``, ...) decoded by FFmpeg's
libraries (PyAV) with bounded waits, and the URL/DNS helpers their error messages use."""

from __future__ import annotations

import logging
import math
import re
import threading

from edgerestore.runtime.sources.capture import CaptureSource

log = logging.getLogger("edgerestore.runtime")

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
"""URL prefixes (lower case) that :func:`~edgerestore.runtime.sources.open_source` opens as a stream."""


class PyAVCapture:
    """A :class:`~edgerestore.runtime.video.VideoReader` behind the small capture
    interface :class:`CaptureSource` reconnects with: ``read() -> (ok, image)``,
    ``release()``. A read that fails or times out is ``(False, None)``: the stream is lost."""

    def __init__(self, reader):
        self.reader = reader
        self._frames = reader.frames()

    def read(self):
        try:
            img, _ = next(self._frames)
        except StopIteration:
            return False, None
        except Exception as exc:  # noqa: BLE001 - a lost stream, whatever FFmpeg says
            log.debug("stream read failed: %s", exc)
            return False, None
        return True, img

    def release(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


class StreamSource(CaptureSource):
    """A network stream (``rtsp://``, ``http(s)://``, ``rtmp://``, ``udp://``, ...), read
    by FFmpeg (PyAV). Also accepts a file path, which tests use to exercise reconnection.

    ``open_timeout`` / ``read_timeout`` (seconds) bound FFmpeg's waits on the network, so
    a dead stream is noticed and reopened instead of blocking the capture thread.
    ``rtsp_transport``: ``tcp`` or ``udp`` (None: FFmpeg's choice). ``follow_redirects``:
    an http(s) server's redirect is followed only when True (a redirect otherwise fails
    with a message naming where it points). ``options``: more FFmpeg format/protocol
    options. Frames are ``uint8`` BGR (or ``uint16`` for > 8-bit streams); ``timestamp``
    is seconds since the stream was opened.
    """

    def __init__(self, url: str, *, open_timeout: float = 10.0, read_timeout: float = 5.0,
                 rtsp_transport: str | None = None, follow_redirects: bool = False,
                 options: dict[str, str] | None = None, **kwargs):
        super().__init__(str(url), **kwargs)
        self.name = redact_url(str(url))
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.follow_redirects = follow_redirects
        self.options = dict(options or {})
        if rtsp_transport is not None:
            if rtsp_transport not in ("tcp", "udp"):
                raise ValueError(f"rtsp_transport must be 'tcp' or 'udp', got {rtsp_transport!r}")
            self.options["rtsp_transport"] = rtsp_transport
        if not follow_redirects and str(url).lower().startswith(("http://", "https://")):
            self.options.setdefault("max_redirects", "0")
        self._last_error: str | None = None

    def _try_open(self):
        from edgerestore.runtime.video import VideoReader, load_av

        av = load_av()
        try:
            reader = VideoReader(str(self.target), options=self.options,
                                 timeout=(self.open_timeout, self.read_timeout), threads=False)
        except (av.FFmpegError, OSError, UnicodeError) as exc:
            self._last_error = str(exc).replace(str(self.target), self.name)
            return None
        fps = reader.info.fps
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else None
        return PyAVCapture(reader)

    def _cannot_open_message(self) -> str:
        head = f"cannot open stream {self.name}"
        target = str(self.target)
        host = url_host(target)
        if host is not None and not host_resolves(host):
            return f"{head}: host {host!r} does not resolve (DNS); check the address in the URL"
        if getattr(self, "_open_s", 0.0) >= 0.9 * self.open_timeout:
            return (f"{head}: no answer within {self.open_timeout:g} s (open_timeout); the host or "
                    "port is not serving a stream, or a firewall drops the connection")
        where = http_redirect(target) if not self.follow_redirects else None
        if where is not None:
            return (f"{head}: the server redirects to {redact_url(where)}; redirects are followed only "
                    "when you allow them (--follow-redirects), or give that address instead")
        why = f" ({self._last_error})" if self._last_error else ""
        return (f"{head}{why}: unreachable host, refused connection, wrong URL or credentials, "
                "or a protocol this FFmpeg build lacks (check it with `ffprobe URL`)")


def http_redirect(url: str, timeout: float = 3.0) -> str | None:
    """Where an http(s) ``url`` redirects to (its ``Location``), None when it does not
    redirect, is not http(s), or does not answer within ``timeout`` seconds."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
        conn.request("GET", parts.path or "/" + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        location = resp.getheader("Location") if 300 <= resp.status < 400 else None
        conn.close()
        return location
    except (OSError, http.client.HTTPException):
        return None


def is_stream_url(text: str) -> bool:
    """Whether ``text`` starts with one of :data:`STREAM_SCHEMES` (case-insensitive)."""
    return text.lower().startswith(STREAM_SCHEMES)


def url_host(url: str) -> str | None:
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


def host_resolves(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host`` resolves; True when DNS does not answer within ``timeout`` seconds
    (unknown: the message then does not blame DNS)."""
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


def redact_url(url: str) -> str:
    """``url`` with a password in ``scheme://user:password@host`` replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", url)
