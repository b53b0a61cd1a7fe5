"""One websocket connection: a sans-I/O ServerConnection driven by the socket, jobs handed to the manager.

The session only calls the connection's transitions (``receive_*``, ``accept``, ``reject``, ``send``,
``send_frame``, ``close``); the connection decides what may still be sent. Everything outbound goes through
one queue, drained on the event loop, so the connection sees messages in the order the client gets them.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
import uuid
from dataclasses import dataclass

from fastapi import WebSocket
from underpaint.protocol import errors
from underpaint.protocol.connection import State
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.jobs import JobRequest
from underpaint.protocol.messages import Cancel, Cancelled, Error, Hello, Message, Resume
from underpaint.protocol.server_connection import ServerConnection

from .live_events import handle_live
from .security import check_origin
from .service import Service
from .wire import FRAME_SLACK, WIRE_KEY, WireBudget


@dataclass(frozen=True)
class _Close:
    code: int = 1008  # policy violation
    reason: str = ""


_CLOSE = _Close()
log = logging.getLogger("underpaint.session")
TRIM_AFTER_BYTES = 16 * 1024 * 1024  # a session that received this much gives the freed heap back at its end
BEFORE_HELLO = 4  # messages a socket may send before its hello is accepted (each is at most MAX_HELLO_BYTES)


def give_back_memory() -> None:
    """glibc keeps freed multi-MiB buffers in its heap (its mmap threshold grows with use); hand them back to
    the OS after a connection that sent big frames, so an abusive client leaves no lasting footprint."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        pass


class Session:
    """One websocket connection: a ServerConnection driven by the socket, jobs handed to the manager."""

    def __init__(self, service: Service, ws: WebSocket) -> None:
        self.service = service
        self.ws = ws
        self.client = f"ws-{uuid.uuid4().hex[:12]}"
        self.address = ws.client.host if ws.client else "unknown"  # the owner of this client's kept jobs
        self.conn = ServerConnection(service.limits, service.config.max_connection_bytes, service.buffers,
                                     elsewhere=lambda: service.jobs.kept.of(self.address))
        self.opened = self.last_seen = time.monotonic()
        self.received = 0  # bytes of frames received
        self.close_reason = "the client closed it"  # for the log line when the session ends
        self.unknown = 0  # messages received before the hello was accepted
        # Message (encoded by conn.send), bytes (an encoded frame, checked by conn.send_frame),
        # str (text the connection already produced: welcome, rejection) or _CLOSE
        self.outbox: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.wire: WireBudget | None = ws.scope.get("extensions", {}).get(WIRE_KEY)  # None outside our uvicorn

    def sink(self, item: object) -> None:
        """Thread-safe: called from the worker; big frames are encoded there, off the event loop."""
        if isinstance(item, Frame):
            item = item.encode()
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, item)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, _Close):
                await self.ws.close(code=item.code, reason=item.reason[:120])
                return
            if isinstance(item, str):
                await self.ws.send_text(item)
            elif isinstance(item, (bytes, bytearray, memoryview)):
                data = self.conn.send_frame(bytes(item))
                if data is not None:  # None: a late preview of a job that already ended
                    await self.ws.send_bytes(data)
            elif isinstance(item, Message):
                text = self.conn.send(item)
                if text is not None:  # None: anything about a job after its terminal event
                    await self.ws.send_text(text)

    def fail(self, exc: ProtocolError) -> None:
        """Tell the client; an error that names a job ends that job, a fatal one ends the session."""
        self.outbox.put_nowait(Error.from_exception(exc))
        if exc.code in errors.FATAL_CODES:
            self.close_reason = f"error {exc.code}: {exc.message}"
            self.outbox.put_nowait(_CLOSE)

    def refuse(self, exc: ProtocolError) -> None:
        """End the session before it starts (bad token, forbidden origin)."""
        self.close_reason = f"refused ({exc.code}): {exc.message}"
        self.outbox.put_nowait(self.conn.reject(exc))
        self.outbox.put_nowait(_CLOSE)

    def end(self, code: int, reason: str, error: ProtocolError | None = None) -> None:
        """Close the session from the server's side (timeouts), with the reason in the close frame."""
        if error is not None:
            self.outbox.put_nowait(Error.from_exception(error))
        self.close_reason = f"closed by the server: {reason}"
        self.outbox.put_nowait(_Close(code, reason))

    async def run(self) -> None:
        refusal = self.service.admit(self.address)
        await self.ws.accept()
        if refusal is not None:
            log.info("connection from %s refused: %s", self.address, refusal)
            await self.ws.close(code=1013, reason=refusal[:120])  # 1013: try again later
            return
        log.info("connection %s opened from %s", self.client, self.address)
        sender = asyncio.create_task(self._send_loop())
        receiver: asyncio.Task | None = None
        watchdog: asyncio.Task | None = None
        try:
            try:
                check_origin(self.service.config, self.ws.headers.get("origin"))
            except ProtocolError as exc:
                self.refuse(exc)
                await sender
                return
            receiver = asyncio.create_task(self._receive_loop())
            watchdog = asyncio.create_task(self._watch(sender))
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            log.info("connection %s from %s closed after %.1f s: %s", self.client, self.address,
                     time.monotonic() - self.opened, self.close_reason)
            for task in (receiver, watchdog):
                if task is not None:
                    task.cancel()
            self.service.leave(self.address)
            held = self.conn.detach_kept()  # kept jobs go on: the job manager counts their bytes from here
            self.conn.close()
            if self.wire is not None:
                self.wire.close()
            self.service.jobs.disconnect(self.client, held)
            self.service.live.disconnect(self.client)
            if self.received > TRIM_AFTER_BYTES:
                await asyncio.get_running_loop().run_in_executor(None, give_back_memory)
            if not sender.done():
                self.outbox.put_nowait(_CLOSE)
                try:
                    await asyncio.wait_for(sender, timeout=5)
                except Exception:  # noqa: BLE001 - the peer is gone
                    sender.cancel()

    async def _watch(self, sender: asyncio.Task) -> None:
        """Hello timeout, idle timeout, submits whose frames stopped coming."""
        config = self.service.config
        while not sender.done():
            await asyncio.sleep(min(1.0, config.hello_timeout_s / 4))
            now = time.monotonic()
            if self.conn.state in (State.NEW, State.HELLO_RECEIVED) and now - self.opened > config.hello_timeout_s:
                why = f"no hello within {config.hello_timeout_s:g} s"
                self.end(1008, why, ProtocolError(errors.NOT_READY, why))
                return
            for exc in self.conn.expire(config.frames_timeout_s, now):
                self.fail(exc)
            busy = self.conn.active or self.conn.buffered
            if not busy and now - self.last_seen > config.idle_timeout_s:
                self.end(1000, f"idle for {config.idle_timeout_s:g} s")
                return

    async def _receive_loop(self) -> None:
        while self.conn.state is not State.CLOSED:
            message = await self.ws.receive()
            self.last_seen = time.monotonic()
            if message["type"] == "websocket.disconnect":
                self.close_reason = f"the client closed it (code {message.get('code', 1000)})"
                return
            if self.conn.state is State.NEW:
                self.unknown += 1
                if self.unknown > BEFORE_HELLO:  # a stranger gets a few tries, not the hello timeout's worth
                    why = f"no hello in the first {BEFORE_HELLO} messages"
                    self.end(1008, why, ProtocolError(errors.NOT_READY, why))
                    return
            try:
                if message.get("bytes") is not None:
                    self.received += len(message["bytes"])
                    events = self.conn.receive_bytes(message["bytes"])
                else:
                    events = self.conn.receive_text(message.get("text") or "")
                for event in events:
                    self._handle(event)
            except ProtocolError as exc:
                self.fail(exc)

    def _handle(self, event: object) -> None:
        jobs = self.service.jobs
        if handle_live(self.service.live, self.client, event, self.sink):
            return
        if isinstance(event, Hello):
            try:
                self.service.auth.check(self.service.config, self.address, event.token)
            except ProtocolError as exc:
                self.refuse(exc)
                return
            self.outbox.put_nowait(self.conn.accept(self.service.welcome()))
            if self.wire is not None:  # authenticated: bigger messages, counted as they arrive
                self.wire.open(self.conn, self.service.buffers, self.service.config.max_frame_bytes + FRAME_SLACK)
        elif isinstance(event, JobRequest):
            cap = self.service.config.max_kept_jobs
            if event.submit.keep_result and jobs.kept_count(self.address) >= cap:
                raise ProtocolError(errors.QUEUE_FULL, f"{self.address} already has {cap} kept jobs (keep_result) "
                                    "waiting to run or to be resumed (the limit per client address); resume or "
                                    "cancel them, or submit without keep_result", "keep_result", event.submit.job)
            jobs.submit(self.client, event, self.sink, send_key="resume_key" in self.conn.features,
                        owner=self.address)
        elif isinstance(event, Cancel):
            jobs.cancel(self.client, event.job)  # False: the job is finishing; its terminal event is on its way
        elif isinstance(event, Resume):
            if not jobs.resume(self.client, event.job, event.key, self.sink):
                hint = "" if event.key else "; a resume needs the job's resume_key"
                raise ProtocolError(errors.UNKNOWN_JOB, f"no kept job {event.job!r} with this key to resume (it was "
                                    f"not submitted with keep_result, was already delivered, or expired){hint}",
                                    "job", event.job)
        elif isinstance(event, Cancelled):  # a job cancelled while its frames were still arriving
            self.outbox.put_nowait(event)
