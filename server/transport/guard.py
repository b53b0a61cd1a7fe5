"""TCP-level guard: an HTTP request (or websocket upgrade) must send its headers within ``header_timeout_s``.

uvicorn holds a connection that sends half a request forever (also the second request of a keep-alive
connection); this subclass of its HTTP protocol closes one whose headers have not all arrived in time. The
timer starts when a connection opens or a new request begins, and is moot once a request is being served or
the connection became a websocket."""

from __future__ import annotations

import asyncio


def guarded_http(header_timeout_s: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None
        _upgraded = False

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
            super().data_received(data)

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
