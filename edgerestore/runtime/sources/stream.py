"""Network streams (``rtsp://``, ``http(s)://``, ...) and the URL/DNS helpers their error
messages use."""

from __future__ import annotations

import re
import threading

from edgerestore.runtime.sources.capture import CaptureSource

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
"""URL prefixes (lower case) that :func:`~edgerestore.runtime.sources.open_source` opens as a stream."""


class StreamSource(CaptureSource):
    """A network stream (``rtsp://``, ``http(s)://``, ``rtmp://``, ``udp://``, ...).

    Also accepts any path OpenCV opens, which tests use to exercise reconnection.
    ``open_timeout`` / ``read_timeout`` (seconds) bound OpenCV's waits on the network, so
    a dead stream is noticed and reopened instead of blocking the capture thread.
    """

    def __init__(self, url: str, *, open_timeout: float = 10.0, read_timeout: float = 5.0, **kwargs):
        super().__init__(str(url), **kwargs)
        self.name = redact_url(str(url))
        self.open_timeout = float(open_timeout)
        self._timeouts_ms = (int(open_timeout * 1000), int(read_timeout * 1000))

    def _cannot_open_message(self) -> str:
        head = f"cannot open stream {self.name}"
        host = url_host(str(self.target))
        if host is not None and not host_resolves(host):
            return f"{head}: host {host!r} does not resolve (DNS); check the address in the URL"
        if getattr(self, "_open_s", 0.0) >= 0.9 * self.open_timeout:
            return (f"{head}: no answer within {self.open_timeout:g} s (open_timeout); the host or "
                    "port is not serving a stream, or a firewall drops the connection")
        return (f"{head}: unreachable host, refused connection, wrong URL or credentials, "
                "or a protocol this OpenCV build lacks (check it with `ffprobe URL`)")


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
