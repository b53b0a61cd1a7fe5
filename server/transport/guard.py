"""TCP-level guard: an HTTP request (or websocket upgrade) must send its headers within ``header_timeout_s``,
in at most ``MAX_HEAD_BYTES`` and ``MAX_HEADERS`` headers.

uvicorn holds a connection that sends half a request forever (also the second request of a keep-alive
connection), and its httptools parser keeps every header line it is sent; this subclass of its HTTP protocol
closes one whose headers have not all arrived in time, or that sends more than a request's head may hold. The
timer starts when a connection opens or a new request begins, and is moot once a request is being served or
the connection became a websocket."""

from __future__ import annotations

import asyncio

MAX_HEAD_BYTES = 1 << 20  # bytes received before a request's headers are complete (the first read may hold body)
MAX_HEADERS = 128  # header lines of one request (each is kept as Python objects until the request ends)

def guarded_http(header_timeout_s: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None
        _upgraded = False
        _head = 0  # bytes received towards the current request's head
        _cycle: object = None  # the request cycle they were counted after

        def _between_requests(self) -> bool:
            return not self._upgraded and (self.cycle is None or self.cycle.response_complete)

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(header_timeout_s, self._headers_late)

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._between_requests():
                self._arm()  # a new request begins: its headers must arrive in time
                if self.cycle is not self._cycle:
                    self._cycle, self._head = self.cycle, 0
                self._head += len(data)
                if self._head > MAX_HEAD_BYTES:
                    self._refuse(f"request headers over {MAX_HEAD_BYTES} bytes")
                    return
            super().data_received(data)

        def on_header(self, name: bytes, value: bytes) -> None:  # the httptools parser's callback
            if len(self.headers) >= MAX_HEADERS:
                raise ValueError(f"more than {MAX_HEADERS} headers")  # the parser answers 400 and closes
            super().on_header(name, value)

        def _refuse(self, why: str) -> None:
            self._stop_deadline()
            body = why.encode()
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                                 b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
                                 + body)
            self.transport.close()

        def _headers_late(self) -> None:
            self._deadline = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()  # nothing to answer: the request never arrived

        def _stop_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def handle_websocket_upgrade(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            self._upgraded = True
            self._stop_deadline()
            return super().handle_websocket_upgrade(*args, **kwargs)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_deadline()
            super().connection_lost(exc)

    return GuardedHTTP
