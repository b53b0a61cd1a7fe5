"""ASGI middleware in front of the REST uploads: the token, the Origin and the declared size are checked from
the headers, before a byte of the body is read (FastAPI would spool a whole multipart body to disk first), and
a body without Content-Length is cut off once it passes the limit."""

from __future__ import annotations

import json

from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError

from .security import bearer_token, check_origin
from .service import Service

GUARDED = {("POST", "/v1/jobs")}
STATUS = {errors.BAD_TOKEN: 401, errors.RATE_LIMITED: 429, errors.FORBIDDEN_ORIGIN: 403, errors.TOO_LARGE: 413,
          errors.BAD_MESSAGE: 400}


def max_body_bytes(service: Service) -> int:
    """An image and a mask file, each at most a frame's bytes, plus the form around them."""
    return 2 * service.limits.max_frame_bytes + (1 << 20)


class _TooLarge(Exception):
    pass


class UploadGuard:
    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in GUARDED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        address = scope["client"][0] if scope.get("client") else "unknown"
        limit = max_body_bytes(self.service)
        try:
            check_origin(self.service.config, headers.get("origin"))
            self.service.auth.check(self.service.config, address, bearer_token(headers.get("authorization")))
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise ProtocolError(errors.TOO_LARGE, f"the upload of {length} bytes exceeds the limit of {limit} "
                                    "bytes", "content-length")
        except ProtocolError as exc:
            await _answer(send, exc)
            return
        seen, started, answered = 0, False, False

        async def bounded_receive():
            nonlocal seen, answered
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                if not started and not answered:
                    answered = True
                    await _answer(send, ProtocolError(errors.TOO_LARGE, f"the upload exceeds the limit of {limit} "
                                                      "bytes", "content-length"))
                raise _TooLarge
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if answered:
                return  # the 413 went out already; whatever the app says after the cut-off is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _TooLarge:
            pass


async def _answer(send, exc: ProtocolError) -> None:
    body = json.dumps({"detail": {"code": exc.code, "message": exc.message, "field": exc.field}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if exc.code == errors.BAD_TOKEN:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": STATUS.get(exc.code, 400), "headers": headers})
    await send({"type": "http.response.body", "body": body})
