"""A flaky link for real-host tests: a second `underpaint serve` behind a relay (``bench.relay``) that a
scenario inside the host can tell, over a one-line TCP control port, to ``cut`` its live connections (the
network drops, the server keeps running) or to ``restart`` the server (it forgets every job).

Commands answer at once (the host's GUI thread must not wait): ``cut`` -> the number of connections cut,
``restart`` -> ``ok`` (the new server is up a few seconds later, behind the same address), ``count`` -> the
connections the relay accepted so far.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from bench.relay import Relay

from .server import running_process


class FlakyLink:
    def __init__(self, work: Path) -> None:
        self.work = work
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self.restarts = 0
        self._proc = None  # the server process behind the relay
        self.relay: Relay | None = None
        self._control = socket.create_server(("127.0.0.1", 0))
        self.control_port = self._control.getsockname()[1]

    @property
    def url(self) -> str:
        assert self.relay is not None
        return f"{self.relay.url}/v1/ws"

    def _start_server(self) -> int:
        url, self._proc = self._stack.enter_context(running_process(self.work))
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])

    def __enter__(self) -> FlakyLink:
        self.relay = Relay(self._start_server()).start()
        threading.Thread(target=self._serve_control, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._control.close()
        if self.relay is not None:
            self.relay.close()
        with self._lock:
            self._stack.close()

    def restart(self) -> None:
        """Stop the server (its jobs are gone), start a new one, point the relay at it."""
        with self._lock:
            old, self._stack = self._stack, contextlib.ExitStack()
            self._proc.kill()  # at once, as a crash or a power cut: a graceful stop could finish the job first
            old.close()
            assert self.relay is not None
            self.relay.cut()
            self.relay.target = ("127.0.0.1", self._start_server())
            self.restarts += 1

    def _serve_control(self) -> None:
        while True:
            try:
                conn, _ = self._control.accept()
            except OSError:
                return
            with conn:
                command = conn.makefile().readline().strip()
                assert self.relay is not None
                if command == "cut":
                    answer = str(self.relay.cut())
                elif command == "restart":
                    threading.Thread(target=self.restart, daemon=True).start()
                    answer = "ok"
                elif command == "count":
                    answer = str(self.relay.accepted)
                else:
                    answer = f"unknown command {command!r}"
                conn.sendall(answer.encode() + b"\n")


@contextlib.contextmanager
def flaky_link(work: Path) -> Iterator[FlakyLink]:
    with FlakyLink(work) as link:
        yield link


def command(port: int, text: str) -> str:
    """Send one control command (what the host-side scenario does); returns the answer line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(text.encode() + b"\n")
        return sock.makefile().readline().strip()
