"""One websocket connection: a sans-I/O ServerConnection driven by the socket, jobs handed to the manager."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import WebSocket
from underpaint.protocol import errors
from underpaint.protocol.connection import JobRequest, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import Cancel, Cancelled, Error, Hello, Resume

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
            if isinstance(item, bytes):
                await self.ws.send_bytes(item)
            else:
                await self.ws.send_text(self.conn.send(item))  # type: ignore[arg-type]

    def fail(self, exc: ProtocolError) -> None:
        self.outbox.put_nowait(Error.from_exception(exc))
        if self.conn.state == "closed" or exc.code in errors.FATAL_CODES:
            self.outbox.put_nowait(_CLOSE)

    async def run(self) -> None:
        await self.ws.accept()
        sender = asyncio.create_task(self._send_loop())
        try:
            try:
                check_origin(self.service.config, self.ws.headers.get("origin"))
            except ProtocolError as exc:
                self.conn.state = "closed"
                self.fail(exc)
                await sender
                return
            await self._receive_loop()
        finally:
            self.service.jobs.disconnect(self.client)
            if not sender.done():
                self.outbox.put_nowait(_CLOSE)
                try:
                    await asyncio.wait_for(sender, timeout=5)
                except Exception:  # noqa: BLE001 - the peer is gone
                    sender.cancel()

    async def _receive_loop(self) -> None:
        while self.conn.state != "closed":
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
                self.conn.state = "closed"
                raise exc
            self.outbox.put_nowait(self.service.welcome())
            self.conn.state = "ready"
        elif isinstance(event, JobRequest):
            jobs.submit(self.client, event, self.sink)
        elif isinstance(event, Cancel):
            if not jobs.cancel(self.client, event.job):
                raise ProtocolError(errors.UNKNOWN_JOB, f"no job {event.job!r} of yours to cancel", "job", event.job)
        elif isinstance(event, Resume):
            self.conn.active.add(event.job)
            if not jobs.resume(self.client, event.job, self.sink):
                self.conn.active.discard(event.job)
                raise ProtocolError(errors.UNKNOWN_JOB, f"no kept job {event.job!r} to resume (it was not submitted "
                                    "with keep_result, or it expired)", "job", event.job)
        elif isinstance(event, Cancelled):
            self.outbox.put_nowait(event)
