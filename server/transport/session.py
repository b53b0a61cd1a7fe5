"""One websocket connection: a sans-I/O ServerConnection driven by the socket, jobs handed to the manager.

The session only calls the connection's transitions (``receive_*``, ``accept``, ``reject``, ``send``,
``send_frame``, ``close``); the connection decides what may still be sent. Everything outbound goes through
one queue, drained on the event loop, so the connection sees messages in the order the client gets them.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import WebSocket
from underpaint.protocol import errors
from underpaint.protocol.connection import State
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.jobs import JobRequest
from underpaint.protocol.messages import Cancel, Cancelled, Error, Hello, Message, Resume
from underpaint.protocol.server_connection import ServerConnection

from .security import check_origin, check_token
from .service import Service

_CLOSE = object()


class Session:
    """One websocket connection: a ServerConnection driven by the socket, jobs handed to the manager."""

    def __init__(self, service: Service, ws: WebSocket) -> None:
        self.service = service
        self.ws = ws
        self.conn = ServerConnection(service.limits)
        self.client = f"ws-{uuid.uuid4().hex[:12]}"
        # Message (encoded by conn.send), bytes (an encoded frame, checked by conn.send_frame),
        # str (text the connection already produced: welcome, rejection) or _CLOSE
        self.outbox: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def sink(self, item: object) -> None:
        """Thread-safe: called from the worker; big frames are encoded there, off the event loop."""
        if isinstance(item, Frame):
            item = item.encode()
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, item)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is _CLOSE:
                await self.ws.close(code=1008)
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
            self.outbox.put_nowait(_CLOSE)

    def refuse(self, exc: ProtocolError) -> None:
        """End the session before it starts (bad token, forbidden origin)."""
        self.outbox.put_nowait(self.conn.reject(exc))
        self.outbox.put_nowait(_CLOSE)

    async def run(self) -> None:
        await self.ws.accept()
        sender = asyncio.create_task(self._send_loop())
        try:
            try:
                check_origin(self.service.config, self.ws.headers.get("origin"))
            except ProtocolError as exc:
                self.refuse(exc)
                await sender
                return
            await self._receive_loop()
        finally:
            self.conn.close()
            self.service.jobs.disconnect(self.client)
            if not sender.done():
                self.outbox.put_nowait(_CLOSE)
                try:
                    await asyncio.wait_for(sender, timeout=5)
                except Exception:  # noqa: BLE001 - the peer is gone
                    sender.cancel()

    async def _receive_loop(self) -> None:
        while self.conn.state is not State.CLOSED:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    events = self.conn.receive_bytes(message["bytes"])
                else:
                    events = self.conn.receive_text(message.get("text") or "")
                for event in events:
                    self._handle(event)
            except ProtocolError as exc:
                self.fail(exc)

    def _handle(self, event: object) -> None:
        jobs = self.service.jobs
        if isinstance(event, Hello):
            try:
                check_token(self.service.config, event.token)
            except ProtocolError as exc:
                self.refuse(exc)
                return
            self.outbox.put_nowait(self.conn.accept(self.service.welcome()))
        elif isinstance(event, JobRequest):
            jobs.submit(self.client, event, self.sink)
        elif isinstance(event, Cancel):
            jobs.cancel(self.client, event.job)  # False: the job is finishing; its terminal event is on its way
        elif isinstance(event, Resume):
            if not jobs.resume(self.client, event.job, self.sink):
                raise ProtocolError(errors.UNKNOWN_JOB, f"no kept job {event.job!r} to resume (it was not submitted "
                                    "with keep_result, or it expired)", "job", event.job)
        elif isinstance(event, Cancelled):  # a job cancelled while its frames were still arriving
            self.outbox.put_nowait(event)
