"""A TCP relay between a plugin and the server: adds a one-way delay (an emulated WAN's latency) and can cut every
live connection (a dropped Wi-Fi/VPN link) while the server keeps running. Used by the remote-link bench and
the real-host reconnect tests; loopback (or a local veth) only.
"""

from __future__ import annotations

import heapq
import socket
import threading
import time

CHUNK = 256 * 1024


class Relay:
    """``Relay(target_port).start()`` listens on ``host:port`` (0: any free port) and forwards to
    ``target_host:target_port``; each direction's bytes arrive ``delay`` seconds late (RTT = 2 x delay)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", host: str = "127.0.0.1", port: int = 0,
                 delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        self.accepted = 0
        self.bytes_up = 0  # plugin -> server, for the bench's report
        self.bytes_down = 0

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> Relay:
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        return self

    def cut(self) -> int:
        """Drop every live connection (both sides see a reset); new connections are still accepted."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _abort(sock)
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        _abort(self._listener)
        self.cut()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                _abort(client)
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, server))
                self.accepted += 1
            for src, dst, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up), name="relay-pump", daemon=True).start()

    def _count(self, up: bool, size: int) -> None:
        with self._lock:
            if up:
                self.bytes_up += size
            else:
                self.bytes_down += size

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        if self.delay <= 0:
            try:
                while data := src.recv(CHUNK):
                    self._count(up, len(data))
                    dst.sendall(data)
            except OSError:
                pass
            _shutdown(dst)
            return
        queue: list[tuple[float, int, bytes]] = []  # (due, seq, data): delivered in order, ``delay`` late
        ready = threading.Condition()
        done = [False]

        def deliver() -> None:
            while True:
                with ready:
                    while not queue and not done[0]:
                        ready.wait()
                    if not queue:
                        break
                    due, _, data = queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        ready.wait(wait)
                        continue
                    heapq.heappop(queue)
                try:
                    dst.sendall(data)
                except OSError:
                    return
            _shutdown(dst)

        threading.Thread(target=deliver, name="relay-deliver", daemon=True).start()
        seq = 0
        try:
            while data := src.recv(CHUNK):
                self._count(up, len(data))
                with ready:
                    heapq.heappush(queue, (time.monotonic() + self.delay, seq, data))
                    seq += 1
                    ready.notify()
        except OSError:
            pass
        with ready:
            done[0] = True
            ready.notify()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a dropped link looks to the peers."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.shutdown(socket.SHUT_RD)  # wakes this relay's thread blocked in recv; sends nothing
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
