"""A small threaded client over ``websockets`` (the only third-party import in protocol/).

Nothing here blocks the caller: ``connect``, ``submit`` and ``cancel`` return at once; a receiver thread and a
sender thread do the I/O, and every event reaches ``on_event`` (called on the receiver thread — hop to your
UI thread from there) or, without a callback, the ``events`` queue.

Events: ``Connected(welcome)``, ``Disconnected(error)``, and per job the protocol's ``Queued``, ``Started``,
``Progress``, ``PreviewReceived``, ``ResultReceived``, ``Error`` (``job`` set) and ``Cancelled``.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import errors
from .connection import ClientConnection, ResultReceived, check_job_frames, check_limits, tile_job
from .errors import ProtocolError
from .frames import Frame
from .messages import Cancelled, Error, Submit, Welcome

WS_PATH = "/v1/ws"
DEFAULT_TILE_SIDE = 1024  # 4096x4096 rgba8 = 16 frames: much faster than one 67 MB websocket message
_STOP = object()


@dataclass(frozen=True)
class Connected:
    welcome: Welcome


@dataclass(frozen=True)
class Disconnected:
    error: ProtocolError | None  # None after close()


def new_job_id(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def websocket_url(server: str) -> str:
    """Accept ``host:port``, ``http(s)://host:port`` or a full ``ws(s)://`` URL; return the websocket URL."""
    url = server.strip().rstrip("/")
    if "://" not in url:
        url = "ws://" + url
    scheme, rest = url.split("://", 1)
    scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    if "/" not in rest:
        rest += WS_PATH
    return f"{scheme}://{rest}"


class Client:
    def __init__(self, url: str, token: str | None = None, client_name: str = "underpaint",
                 client_version: str = "", on_event: Callable[[object], None] | None = None,
                 open_timeout: float = 10.0, tile_side: int = DEFAULT_TILE_SIDE) -> None:
        self.url = websocket_url(url)
        self.tile_side = tile_side  # split images bigger than this (0 = never); results come back tiled alike
        self.token = token or None
        self.client_name = client_name
        self.client_version = client_version
        self.on_event = on_event
        self.open_timeout = open_timeout
        self.events: queue.Queue[object] = queue.Queue()
        self.welcome: Welcome | None = None
        self._conn: ClientConnection | None = None
        self._ws = None
        self._lock = threading.Lock()
        self._outbox: queue.Queue[object] = queue.Queue()
        self._waiters: dict[str, queue.Queue[object]] = {}
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._last_state: Connected | Disconnected | None = None  # latest connection event

    # ------------------------------------------------------------------ public API (any thread)
    @property
    def connected(self) -> bool:
        return self.welcome is not None and self._ws is not None

    def connect(self) -> None:
        """Start connecting in the background; ``Connected`` or ``Disconnected`` follows."""
        self.close(wait=True)
        self._closing = False
        self._last_state = None
        self._outbox = queue.Queue()
        thread = threading.Thread(target=self._receiver, name="underpaint-recv", daemon=True)
        self._threads = [thread]
        thread.start()

    def reconnect(self) -> None:
        self.connect()

    def submit(self, submit: Submit, image: Frame, mask: Frame | None = None) -> str:
        """Queue a job for sending; raises ProtocolError at once for anything invalid.

        An image wider or taller than ``tile_side`` is split into tiles on the sender thread (``submit.tiles``
        and ``submit.result_tile`` are set there); ``ResultReceived`` still carries one frame per image.
        """
        with self._lock:
            conn, welcome = self._conn, self.welcome
            if conn is None or welcome is None:
                raise ProtocolError(errors.NOT_READY, "not connected to a server")
            if submit.job in conn.jobs:
                raise ProtocolError(errors.DUPLICATE_JOB, f"job {submit.job!r} is still in flight", "job",
                                    submit.job)
            check_job_frames(submit, image, mask)
            check_limits(submit, welcome.limits, image)
            conn.jobs.add(submit.job)  # reserved now, encoded on the sender thread
        self._outbox.put(("submit", submit, image, mask, self.tile_side))
        return submit.job

    def cancel(self, job: str) -> None:
        self._outbox.put(("cancel", job))

    def resume(self, job: str) -> None:
        self._outbox.put(("resume", job))

    def close(self, wait: bool = False) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket must not raise
                pass
        self._outbox.put(_STOP)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(timeout=5)

    def run_job(self, submit: Submit, image: Frame, mask: Frame | None = None, timeout: float | None = None,
                on_event: Callable[[object], None] | None = None) -> ResultReceived:
        """Blocking helper for scripts and the CLI: submit, wait, return the result or raise ProtocolError."""
        waiter: queue.Queue[object] = queue.Queue()
        self._waiters[submit.job] = waiter
        try:
            self.submit(submit, image, mask)
            while True:
                event = waiter.get(timeout=timeout)
                if on_event is not None:
                    on_event(event)
                if isinstance(event, ResultReceived):
                    return event
                if isinstance(event, Error):
                    raise event.to_exception()
                if isinstance(event, Cancelled):
                    raise ProtocolError(errors.CANCELLED, f"job {submit.job} was cancelled", job=submit.job)
        except queue.Empty:
            self.cancel(submit.job)
            raise ProtocolError(errors.CONNECTION_LOST, f"job {submit.job} timed out after {timeout} s",
                                job=submit.job) from None
        finally:
            self._waiters.pop(submit.job, None)

    def wait_connected(self, timeout: float = 10.0) -> Welcome:
        """Blocking helper: wait for the handshake started by ``connect``."""
        event = self._await(lambda e: isinstance(e, (Connected, Disconnected)), timeout)
        if isinstance(event, Disconnected):
            raise event.error or ProtocolError(errors.CONNECTION_FAILED, "connection closed")
        assert isinstance(event, Connected)
        return event.welcome

    # ------------------------------------------------------------------ internals
    def _await(self, wanted: Callable[[object], bool], timeout: float) -> object:
        waiter: queue.Queue[object] = queue.Queue()
        self._waiters["*"] = waiter
        try:
            last = self._last_state
            if last is not None and wanted(last):
                return last
            while True:
                event = waiter.get(timeout=timeout)
                if wanted(event):
                    return event
        except queue.Empty:
            raise ProtocolError(errors.CONNECTION_FAILED, f"no answer from {self.url} within {timeout} s") from None
        finally:
            self._waiters.pop("*", None)

    def _emit(self, event: object) -> None:
        if isinstance(event, (Connected, Disconnected)):
            self._last_state = event
        job = getattr(event, "job", None)
        for key in (job, "*"):
            waiter = self._waiters.get(key) if key else None
            if waiter is not None:
                waiter.put(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - a UI callback bug must not kill the connection
                import traceback

                traceback.print_exc()
        elif job is None or job not in self._waiters:
            self.events.put(event)

    def _open(self):
        from websockets.sync.client import connect

        return connect(self.url, max_size=None, compression=None,
                       open_timeout=self.open_timeout, close_timeout=2, user_agent_header=None)

    def _receiver(self) -> None:
        conn = ClientConnection(self.client_name, self.client_version, self.token)
        try:
            from websockets.exceptions import ConnectionClosed  # a missing websockets is a failure to connect

            ws = self._open()
        except Exception as exc:  # noqa: BLE001 - every failure to connect becomes one clear event
            self._emit(Disconnected(ProtocolError(errors.CONNECTION_FAILED, f"cannot connect to {self.url}: {exc}")))
            return
        with self._lock:
            self._ws, self._conn = ws, conn
        error: ProtocolError | None = None
        try:
            ws.send(conn.hello())
            sender = threading.Thread(target=self._sender, args=(ws, conn), name="underpaint-send", daemon=True)
            self._threads.append(sender)
            sender.start()
            while True:
                data = ws.recv()
                try:
                    with self._lock:
                        events = conn.receive_bytes(data) if isinstance(data, bytes) else conn.receive_text(data)
                except ProtocolError as exc:
                    events = [Error.from_exception(exc)]
                for event in events:
                    if isinstance(event, Welcome):
                        self.welcome = event
                        event = Connected(event)
                    elif isinstance(event, Error) and event.job is None and conn.state == "closed":
                        error = event.to_exception()
                    self._emit(event)
                if conn.state == "closed":  # a fatal error: the session cannot go on
                    ws.close()
        except ConnectionClosed as exc:
            if not self._closing and error is None:
                error = ProtocolError(errors.CONNECTION_LOST, f"connection to {self.url} lost: {exc}")
        except Exception as exc:  # noqa: BLE001
            if not self._closing:
                error = ProtocolError(errors.CONNECTION_LOST, f"connection to {self.url} failed: {exc}")
        finally:
            with self._lock:
                orphans = sorted(conn.jobs)
                conn.jobs.clear()
                self._ws, self._conn, self.welcome = None, None, None
            self._outbox.put(_STOP)
            for job in orphans:
                why = error.message if error else "the client closed the connection"
                self._emit(Error(code=errors.CONNECTION_LOST, message=why, job=job))
            self._emit(Disconnected(error))

    def _sender(self, ws, conn: ClientConnection) -> None:
        while True:
            item = self._outbox.get()
            if item is _STOP:
                return
            kind, *args = item  # type: ignore[misc]
            try:
                if kind == "submit":
                    args = list(tile_job(*args))  # split outside the lock: the receiver keeps going
                with self._lock:
                    if kind == "submit":
                        conn.jobs.discard(args[0].job)
                        out = conn.submit(*args)
                    elif kind == "cancel":
                        out = [conn.cancel(args[0])]
                    else:
                        out = [conn.resume(args[0])]
                for data in out:
                    ws.send(data)
            except ProtocolError as exc:
                job = args[0].job if kind == "submit" else args[0]
                with self._lock:
                    conn.jobs.discard(job)
                self._emit(Error(code=exc.code, message=exc.message, job=job, field=exc.field))
            except Exception:  # noqa: BLE001 - the receiver reports the lost connection
                return
