"""A small threaded client over ``websockets`` (the only third-party import in protocol/).

Nothing here blocks the caller: ``connect``, ``submit`` and ``cancel`` return at once; a receiver thread and a
sender thread do the I/O, and every event reaches ``on_event`` (called on the receiver thread — hop to your
UI thread from there) or, without a callback, the ``events`` queue.

Events: ``Connected(welcome)``, ``Disconnected(error)``, and per job the protocol's ``Queued``, ``Started``,
``Progress``, ``PreviewReceived``, and exactly one terminal event: ``ResultReceived``, ``Error`` (``job`` set)
or ``Cancelled``. All checks and all session state (the handshake, resume keys) live in ``ClientConnection``; this
module only moves bytes.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import errors
from .connection import ClientConnection, Connected, PreparedJob, ResultReceived, State
from .errors import ProtocolError
from .frames import Frame
from .jobs import Inputs
from .live_messages import LiveFrameMessage, LiveStart, LiveStopped
from .messages import Cancelled, Error, Submit, Welcome
from .vocabulary import WS_PATH

DEFAULT_TILE_SIDE = 1024  # 4096x4096 rgba8 = 16 frames: much faster than one 67 MB websocket message


# Typed commands for the sender thread, in the order the caller gave them.
@dataclass(frozen=True)
class SendSubmit:
    prepared: PreparedJob
    tile_side: int


@dataclass(frozen=True)
class SendCancel:
    job: str


@dataclass(frozen=True)
class SendResume:
    job: str
    key: str | None = None


@dataclass(frozen=True)
class SendLive:
    """Live-stream messages and tiles the connection already checked and encoded (``live_*``)."""

    items: tuple[str | bytes, ...]


@dataclass(frozen=True)
class Stop:
    pass


Command = SendSubmit | SendCancel | SendResume | SendLive | Stop


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
                 open_timeout: float = 10.0, tile_side: int = DEFAULT_TILE_SIDE,
                 features: tuple[str, ...] | None = None) -> None:
        self.url = websocket_url(url)
        self.tile_side = tile_side  # split images bigger than this (0 = never); results come back tiled alike
        self.token = token or None
        self.client_name = client_name
        self.client_version = client_version
        self.features = features  # None = everything this protocol library implements
        self.on_event = on_event
        self.open_timeout = open_timeout
        self.events: queue.Queue[object] = queue.Queue()
        self.welcome: Welcome | None = None
        self._conn: ClientConnection | None = None
        self._ws = None
        self._lock = threading.Lock()
        self._outbox: queue.Queue[Command] = queue.Queue()
        # job -> resume_key of jobs kept by the server (keep_result): every connection of this client keeps it
        self.resume_keys: dict[str, str] = {}
        self._waiters: dict[str, queue.Queue[object]] = {}
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._last_state: Connected | Disconnected | None = None  # latest connection event
        self._live_listeners: dict[str, Callable[[object], None]] = {}  # stream -> its events (LiveSession)

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

    def submit(self, submit: Submit, inputs: Inputs) -> str:
        """Queue a job for sending; raises ProtocolError at once for anything invalid.

        ``inputs`` maps each input role to its frame (or its tiles, or None to leave it out):
        ``{"image": frame, "mask": mask}``. ``submit.inputs`` is filled in from them. Every check is the
        connection's (``begin_submit``); an input wider or taller than ``tile_side`` is split into tiles on the
        sender thread, and ``ResultReceived`` still carries one frame per image.
        """
        with self._lock:
            conn = self._conn
            if conn is None or self.welcome is None:
                raise ProtocolError(errors.NOT_READY, "not connected to a server")
            prepared = conn.begin_submit(submit, inputs)
        self._outbox.put(SendSubmit(prepared, self.tile_side))
        return prepared.job

    def cancel(self, job: str) -> None:
        self._outbox.put(SendCancel(job))

    def resume(self, job: str, key: str | None = None) -> None:
        """Re-attach a kept job after ``reconnect()``; ``key`` defaults to the ``resume_key`` this client was
        given for it (``resume_keys``: save them to resume after a restart)."""
        self._outbox.put(SendResume(job, key))

    # ------------------------------------------------------------------ live streams (feature ``live``)
    def live_start(self, msg: LiveStart, listener: Callable[[object], None] | None = None) -> None:
        """Open a live stream; its events (``LiveStarted``, ``LiveResultReceived``, ``LiveSkipped``,
        ``LiveError``, ``LiveStopped``) go to ``listener`` (receiver thread) instead of ``on_event``."""
        with self._lock:
            conn = self._require_conn()
            text = conn.live_start(msg)
            if listener is not None:
                self._live_listeners[msg.stream] = listener
        self._outbox.put(SendLive((text,)))

    def live_frame(self, msg: LiveFrameMessage, tiles: list[Frame]) -> bool:
        """Queue a live frame and its tiles (``live.DeltaEncoder``); False when the stream is not open."""
        with self._lock:
            items = self._require_conn().live_frame(msg, tiles)
        if items:
            self._outbox.put(SendLive(tuple(items)))
        return bool(items)

    def live_stop(self, stream: str) -> None:
        """End a live stream: nothing of it is sent after this; ``LiveStopped`` is its last event."""
        with self._lock:
            text = self._conn.live_stop(stream) if self._conn is not None and self.welcome is not None else None
        if text is not None:
            self._outbox.put(SendLive((text,)))

    def _require_conn(self) -> ClientConnection:
        if self._conn is None or self.welcome is None:
            raise ProtocolError(errors.NOT_READY, "not connected to a server")
        return self._conn

    def close(self, wait: bool = False) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket must not raise
                pass
        self._outbox.put(Stop())
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(timeout=5)

    def run_job(self, submit: Submit, inputs: Inputs, timeout: float | None = None,
                on_event: Callable[[object], None] | None = None) -> ResultReceived:
        """Blocking helper for scripts and the CLI: submit, wait, return the result or raise ProtocolError."""
        waiter: queue.Queue[object] = queue.Queue()
        self._waiters[submit.job] = waiter
        try:
            self.submit(submit, inputs)
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
        listener = self._live_listeners.get(getattr(event, "stream", None) or "")
        if listener is not None:
            if getattr(event, "ended", False) or isinstance(event, LiveStopped):
                self._live_listeners.pop(event.stream, None)  # type: ignore[attr-defined]
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener bug must not kill the connection
                import traceback

                traceback.print_exc()
            return
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
        conn = ClientConnection(self.client_name, self.client_version, self.token, features=self.features,
                                resume_keys=self.resume_keys)
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
                    if isinstance(event, Connected):
                        self.welcome = event.welcome
                    elif isinstance(event, Error) and event.job is None and conn.state is State.CLOSED:
                        error = event.to_exception()
                    self._emit(event)
                if conn.state is State.CLOSED:  # a fatal error: the session cannot go on
                    ws.close()
        except ConnectionClosed as exc:
            if not self._closing and error is None:
                error = ProtocolError(errors.CONNECTION_LOST, f"connection to {self.url} lost: {exc}")
        except Exception as exc:  # noqa: BLE001
            if not self._closing:
                error = ProtocolError(errors.CONNECTION_LOST, f"connection to {self.url} failed: {exc}")
        finally:
            with self._lock:
                orphans = conn.close(error)  # one connection_lost per job in flight
                self._ws, self._conn, self.welcome = None, None, None
            self._outbox.put(Stop())
            for event in orphans:
                self._emit(event)
            self._emit(Disconnected(error))

    def _sender(self, ws, conn: ClientConnection) -> None:
        while True:
            command = self._outbox.get()
            if isinstance(command, Stop):
                return
            if isinstance(command, SendLive):
                try:
                    for data in command.items:
                        ws.send(data)
                except Exception:  # noqa: BLE001 - the receiver reports the lost connection
                    return
                continue
            job = command.prepared.job if isinstance(command, SendSubmit) else command.job
            try:
                if isinstance(command, SendSubmit):  # tiles and encodes outside the lock: the receiver goes on
                    out: list[str | bytes] = conn.encode_submit(command.prepared, command.tile_side)
                else:
                    with self._lock:
                        text = (conn.cancel(job) if isinstance(command, SendCancel)
                                else conn.resume(job, command.key))
                    out = [] if text is None else [text]
                for data in out:
                    ws.send(data)
            except ProtocolError as exc:  # the connection ended the job: this is its terminal event
                self._emit(Error(code=exc.code, message=exc.message, job=job, field=exc.field))
            except Exception:  # noqa: BLE001 - the receiver reports the lost connection
                return
