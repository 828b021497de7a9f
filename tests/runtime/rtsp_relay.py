"""A small real RTSP relay for the stream tests, and a publisher that feeds it a real clip.

Why a relay of our own: Debian's ``rtsp-server-perl`` (the other server the tests use,
when installed) takes publishers and players over UDP only; a player asking for
``rtsp_transport=tcp`` gets ``400 Bad Request``, and a publisher over TCP wedges it
until it is restarted (docs/runtime.md, "RTSP"). This relay speaks both transports to
players, so the transport choice can be tested on any machine, with nothing to install.

It is a real server on a real socket, written from RFC 2326, not from our reader:

* a **publisher** (FFmpeg's ``rtsp`` muxer) sends ``ANNOUNCE`` (its SDP), ``SETUP`` with
  ``RTP/AVP/TCP;interleaved=...`` and ``RECORD``, then ``$``-framed RTP/RTCP packets on
  the same connection; when it goes away, its path is unpublished and the sessions of
  its players are ended (their connections closed, their UDP packets stopped);
* a **player** sends ``DESCRIBE`` (gets the publisher's SDP; 404 while nothing is
  published), ``SETUP`` with either ``RTP/AVP/TCP;interleaved=a-b`` (packets relayed on
  the RTSP connection) or ``RTP/AVP;unicast;client_port=a-b`` (packets relayed over UDP
  to those ports), ``PLAY``, ``GET_PARAMETER`` (keep-alive) and ``TEARDOWN``.

:func:`publish` sends a clip's packets as they are (stream copy, no re-encoding) with
PyAV at their presentation times; the relay, the Debian server and the publisher each
run in their own process (:class:`RelayProcess`, :class:`PerlServerProcess`,
:class:`PublisherProcess`), which a test can stall (SIGSTOP) or restart.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Player:
    conn: socket.socket | None  # TCP interleaved: the RTSP connection
    channels: dict[int, int] = field(default_factory=dict)  # track -> first interleaved channel
    udp: dict[int, tuple[socket.socket, tuple[str, int]]] = field(default_factory=dict)  # track -> (sock, addr)
    lock: threading.Lock = field(default_factory=threading.Lock)
    playing: bool = False

    def send(self, track: int, rtcp: bool, payload: bytes) -> bool:
        try:
            if track in self.udp:
                sock, (host, port) = self.udp[track]
                sock.sendto(payload, (host, port + int(rtcp)))
            elif track in self.channels and self.conn is not None:
                ch = self.channels[track] + int(rtcp)
                with self.lock:
                    self.conn.sendall(b"$" + bytes([ch]) + len(payload).to_bytes(2, "big") + payload)
            return True
        except OSError:
            return False


class RtspRelay:
    """The relay, listening on 127.0.0.1 (``port`` 0: any free port). ``url(path)`` is
    where to publish and to play ``path``. ``stop()`` closes every connection."""

    def __init__(self, port: int = 0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sdp: dict[str, str] = {}
        self.players: dict[str, list[_Player]] = {}
        self.lock = threading.Lock()
        self.sessions = itertools.count(0x1000)
        self.conns: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True, name="rtsp-relay").start()

    def url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        self.running = False
        self.sock.close()
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    @staticmethod
    def _read_exact(f, n: int) -> bytes:
        data = f.read(n)
        if len(data) < n:
            raise ConnectionError("closed")
        return data

    def _serve(self, conn: socket.socket, addr) -> None:
        f = conn.makefile("rb")
        published: str | None = None
        player = _Player(conn)
        played: str | None = None
        session = f"{next(self.sessions):08X}"
        try:
            while self.running:
                first = f.read(1)
                if not first:
                    return
                if first == b"$":  # interleaved packet: from a publisher, relay; from a player (RTCP RR), drop
                    ch = self._read_exact(f, 1)[0]
                    payload = self._read_exact(f, int.from_bytes(self._read_exact(f, 2), "big"))
                    if published is not None:
                        self._relay(published, ch // 2, ch % 2 == 1, payload)
                    continue
                head = first + f.readline()
                headers: dict[str, str] = {}
                while (line := f.readline().decode("latin-1").strip()):
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = self._read_exact(f, int(headers.get("content-length", 0)))
                method, uri = head.decode("latin-1").split()[:2]
                path = re.sub(r"^rtsp://[^/]+/", "", uri).split("/")[0]
                cseq = headers.get("cseq", "0")
                extra: dict[str, str] = {"Session": f"{session};timeout=60"}
                status, content = "200 OK", b""
                if method == "OPTIONS":
                    extra["Public"] = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"
                elif method == "ANNOUNCE":
                    with self.lock:
                        if path in self.sdp:
                            status = "403 Forbidden"
                        else:
                            self.sdp[path], published = body.decode("latin-1"), path
                            self.players.setdefault(path, [])
                elif method == "DESCRIBE":
                    sdp = self.sdp.get(path)
                    if sdp is None:
                        status = "404 Not Found"
                    else:
                        content = sdp.encode("latin-1")
                        extra["Content-Type"] = "application/sdp"
                        extra["Content-Base"] = f"rtsp://127.0.0.1:{self.port}/{path}/"
                elif method == "SETUP":
                    transport = headers.get("transport", "")
                    track = int(m.group(1)) if (m := re.search(r"streamid=(\d+)", uri)) else 0
                    inter = re.search(r"interleaved=(\d+)", transport)
                    ports = re.search(r"client_port=(\d+)", transport)
                    if inter:
                        player.channels[track] = int(inter.group(1))
                        extra["Transport"] = transport
                    elif ports and published is None:
                        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        udp.bind(("127.0.0.1", 0))
                        player.udp[track] = (udp, (addr[0], int(ports.group(1))))
                        sp = udp.getsockname()[1]
                        extra["Transport"] = f"RTP/AVP/UDP;unicast;client_port={ports.group(1)}-{int(ports.group(1)) + 1};server_port={sp}-{sp}"
                    else:
                        status = "461 Unsupported Transport"  # a publisher must use TCP here
                elif method == "PLAY":
                    with self.lock:
                        if path not in self.sdp:
                            status = "404 Not Found"
                        else:
                            self.players[path].append(player)
                            played = path
                    print(f"PLAY {path} {'udp' if player.udp else 'tcp'}", flush=True)
                elif method == "TEARDOWN":
                    return
                elif method not in ("RECORD", "GET_PARAMETER"):
                    status = "405 Method Not Allowed"
                lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *(f"{k}: {v}" for k, v in extra.items())]
                if content:
                    lines.append(f"Content-Length: {len(content)}")
                with player.lock:
                    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content)
        except (OSError, ConnectionError, ValueError):
            return
        finally:
            dropped: list[_Player] = []
            with self.lock:
                if published is not None:  # unpublished: its players' sessions end, as in mediamtx
                    self.sdp.pop(published, None)
                    dropped = self.players.pop(published, [])
                if played is not None and player in self.players.get(played, []):
                    self.players[played].remove(player)
            for sock, _ in player.udp.values():
                sock.close()
            for p in dropped:
                for sock, _ in p.udp.values():
                    sock.close()
                if p.conn is not None:
                    try:
                        p.conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            try:
                conn.close()
            except OSError:
                pass

    def _relay(self, path: str, track: int, rtcp: bool, payload: bytes) -> None:
        with self.lock:
            players = list(self.players.get(path, []))
        for p in players:
            if not p.send(track, rtcp, payload):
                with self.lock:
                    if p in self.players.get(path, []):
                        self.players[path].remove(p)


def publish(url: str, clip: str, transport: str = "tcp", loops: int = 1) -> int:
    """Publish the video of ``clip`` to ``url`` with PyAV's ``rtsp`` muxer (for a
    ``udp://host:port`` URL: MPEG-TS datagrams, once a receiver holds the port), packets copied
    as they are, each sent at its presentation time (real time), ``loops`` times (each
    loop shifted by the clip's span, so timestamps keep increasing). Returns the packets
    sent. Run it in its own process (:class:`PublisherProcess`): PyAV holds the GIL
    while the muxer talks to the network, so a server or reader in the same process
    would deadlock with it."""
    import av

    if url.startswith("udp://"):
        fmt, options = "mpegts", {}
        wait_udp_receiver(url)
    else:
        fmt, options = "rtsp", {"rtsp_transport": transport}
    sent = 0
    with av.open(clip) as src, av.open(url, "w", format=fmt, options=options) as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        tb, span, start, last, period = vin.time_base, 0, None, None, 1
        t0 = time.perf_counter()
        for loop in range(loops):
            if loop:
                src.seek(0, stream=vin)
            for p in src.demux(vin):
                if not p.size or p.pts is None:
                    continue
                if start is None:
                    start = p.pts
                if loop == 0:
                    last, period = max(last or p.pts, p.pts), (p.duration or period)
                shift = loop * span
                time.sleep(max(0.0, t0 + float((p.pts - start + shift) * tb) - time.perf_counter()))
                p.pts, p.dts = p.pts + shift, p.dts + shift
                p.stream = vout
                out.mux(p)
                sent += 1
            if loop == 0:
                span = last - start + period
    return sent


def wait_udp_receiver(url: str, timeout: float = 15.0) -> None:
    """Wait until a receiver has bound the port of ``udp://host:port`` (binding it here
    then fails): datagrams sent before would be lost. RuntimeError after ``timeout`` s."""
    m = re.match(r"udp://([^:/]+):(\d+)", url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((m.group(1), int(m.group(2))))
        except OSError:
            return
        finally:
            s.close()
        time.sleep(0.02)
    raise RuntimeError(f"nothing received on {url} after {timeout:g} s")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free now for sockets of ``kind`` (``SOCK_STREAM`` or ``SOCK_DGRAM``)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Process:
    def __init__(self, args: list[str]):
        # stdin: a pipe the process never gets data on; the relay and the publisher end
        # when it closes, so they never outlive the test process (even one killed)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def stall(self) -> None:
        """Stop the process (SIGSTOP): its connections stay open and silent."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, *, clean: bool = False) -> None:
        """End the process: SIGTERM (it dies without a goodbye, like a camera losing
        power), or with ``clean`` SIGINT (a publisher closes its output: TEARDOWN)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGINT if clean else signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


class RelayProcess(_Process):
    """:class:`RtspRelay` in its own process; ``url(path)`` to publish and play."""

    def __init__(self):
        super().__init__([sys.executable, __file__, "relay"])
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the RTSP relay did not start: {line!r}")
        self.port = int(line.split()[1])
        self.log: list[str] = []  # what the relay printed: one ``PLAY path tcp|udp`` per player
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line.strip())

    def url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    publish_url = url  # publishers and players use the same address


class PerlServerProcess(_Process):
    """Debian's ``rtsp-server-perl`` on free loopback ports: publishers to
    ``publish_url``, players from ``url``; UDP only (see the module docstring)."""

    EXECUTABLE = "rtsp-server-perl"

    def __init__(self):
        self.player_port, self.publisher_port = free_port(), free_port()
        exe = shutil.which(self.EXECUTABLE)
        super().__init__([exe, "--clientport", str(self.player_port), "--serverport", str(self.publisher_port)])
        deadline = time.monotonic() + 10
        while not _listening(self.publisher_port) or not _listening(self.player_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.poll() is not None else "not listening after 10 s"
                self.stop()
                raise RuntimeError(f"rtsp-server-perl did not start: {err}")
            time.sleep(0.05)

    def url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.player_port}/{path}"

    def publish_url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.publisher_port}/{path}"


def wait_published(url: str, timeout: float = 15.0) -> None:
    """Wait until the server at ``url`` answers ``DESCRIBE`` with 200 (something is
    published there), asking it directly over RTSP; RuntimeError after ``timeout`` s."""
    m = re.match(r"rtsp://([^:/]+):(\d+)/", url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((m.group(1), int(m.group(2))), timeout=2) as s:
                s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
                if s.recv(64).startswith(b"RTSP/1.0 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing published at {url} after {timeout:g} s")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class PublisherProcess(_Process):
    """:func:`publish` in its own process."""

    def __init__(self, url: str, clip: Path, *, transport: str = "tcp", loops: int = 1):
        super().__init__([sys.executable, __file__, "publish", url, str(clip), transport, str(loops)])

    def wait(self, timeout: float) -> str:
        """Wait for the end; what it printed (``sent N`` or the error)."""
        out, err = self.proc.communicate(timeout=timeout)
        return (out + err).strip()


def _exit_when_parent_goes() -> None:
    sys.stdin.read()  # EOF: the test process closed the pipe or is gone
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    if sys.argv[1] == "relay":
        relay = RtspRelay()
        print(f"port {relay.port}", flush=True)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        threading.Event().wait()
    else:
        print(f"sent {publish(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))}", flush=True)
