"""TCP-level guard: an HTTP request (or websocket upgrade) must send its headers within ``header_timeout_s``.

uvicorn holds a connection that sends half a request forever; this subclass of its HTTP protocol closes one
whose headers have not all arrived in time. A completed upgrade or request cancels the timer."""

from __future__ import annotations

import asyncio


def guarded_http(header_timeout_s: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline = self.loop.call_later(header_timeout_s, self._headers_late)

        def _headers_late(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()  # nothing to answer: the request never arrived

        def _stop_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def handle_websocket_upgrade(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            self._stop_deadline()
            return super().handle_websocket_upgrade(*args, **kwargs)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_deadline()
            super().connection_lost(exc)

    return GuardedHTTP
