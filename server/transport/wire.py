"""The websocket layer under a session: what a client may have on the way before the session sees it.

uvicorn's websockets-sansio protocol with a message size per connection. Until the client is authenticated a
message is at most a hello's size (``MAX_HELLO_BYTES``): a bigger one is refused from its header (close code 1009)
before its payload is read. Once the session accepted the hello, the bytes of messages still on the way (in the
websocket parser's buffer, or received whole and waiting for the session) count against the connection's and the
server's input limits as they arrive, like the frames the session holds; a message that would pass either limit
closes the socket (1009, the reason names the limit)."""

from __future__ import annotations

import asyncio
from collections import deque

from underpaint.protocol.server_connection import BufferPool, ServerConnection
from underpaint.protocol.vocabulary import MAX_HELLO_BYTES

WIRE_KEY = "underpaint.wire"  # the scope extension through which the session reaches its connection's budget
FRAME_SLACK = 65536  # a frame a little over max_frame_bytes still reaches the session, which says too_large


class WireBudget:
    """The bytes one websocket has on the way to its session (used on the event loop only)."""

    def __init__(self) -> None:
        self.max_message = MAX_HELLO_BYTES
        self.counted = 0  # bytes on the way, included in the pool's count
        self._conn: ServerConnection | None = None
        self._pool: BufferPool | None = None

    def open(self, conn: ServerConnection, pool: BufferPool | None, max_message: int) -> None:
        """The client is authenticated: messages up to ``max_message``, counted against ``conn`` and ``pool``."""
        self._conn, self._pool, self.max_message = conn, pool, max_message

    def count(self, on_the_way: int) -> str | None:
        """Record the bytes on the way now; the sentence to close with when they pass a limit."""
        if self._conn is None:
            return None  # before authentication max_message (a hello's size) bounds them
        if self._pool is not None:
            self._pool.used += on_the_way - self.counted
        self.counted = on_the_way
        limit = self._conn.max_bytes
        if limit is not None and self._conn.counted + on_the_way > limit:
            return (f"this connection would hold more than its limit of {limit} bytes of input (a message still "
                    "arriving counts); wait for your jobs to finish")
        if self._pool is not None and self._pool.held() > self._pool.limit:
            return (f"the server holds its limit of {self._pool.limit} bytes of input (a message still arriving "
                    "counts); try again when jobs have finished")
        return None

    def close(self) -> None:
        """The socket is gone: give back what was counted."""
        if self._pool is not None:
            self._pool.used -= self.counted
        self.counted, self._conn, self._pool = 0, None, None


def guarded_websocket() -> type[asyncio.Protocol]:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    class GuardedWebSocket(WebSocketsSansIOProtocol):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self.wire = WireBudget()
            self.waiting: deque[int] = deque()  # sizes of the messages queued for the session, oldest first

        def handle_connect(self, event) -> None:  # type: ignore[no-untyped-def]
            super().handle_connect(event)
            scope = getattr(self, "scope", None)
            if scope is not None:
                scope["extensions"][WIRE_KEY] = self.wire

        def data_received(self, data: bytes) -> None:
            self.conn.max_size = self.wire.max_message  # read by the parser as each frame begins
            super().data_received(data)
            self._count()

        def send_receive_event_to_app(self) -> None:
            size, queued = sum(len(f) for f in self.frames), self.queue.qsize()
            super().send_receive_event_to_app()
            if self.queue.qsize() > queued:
                self.waiting.append(size)

        async def receive(self):  # type: ignore[no-untyped-def]
            message = await super().receive()
            if message["type"] == "websocket.receive" and self.waiting:
                self.waiting.popleft()
                self._count()  # the session counts it from here on
            return message

        def _count(self) -> None:
            if self.close_sent or self.disconnected or self.transport.is_closing():
                return
            on_the_way = len(self.conn.reader.buffer) + sum(len(f) for f in self.frames) + sum(self.waiting)
            why = self.wire.count(on_the_way)
            if why is not None:
                self.conn.fail(1009, why[:120])  # message too big
                self.transport.write(b"".join(self.conn.data_to_send()))
                self.queue.put_nowait({"type": "websocket.disconnect", "code": 1009, "reason": why})
                self.close_sent = True
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self.waiting.clear()
            self.wire.close()
            super().connection_lost(exc)

    return GuardedWebSocket
