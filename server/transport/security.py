"""Who may talk to the server: bind rules, token, Origin."""

from __future__ import annotations

import hmac

from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError

from ..config import ServerConfig


class UnsafeConfig(Exception):
    """The server refuses to start with these settings."""


def check_startup(config: ServerConfig) -> None:
    if not config.is_loopback and not config.token:
        raise UnsafeConfig(
            f"refusing to listen on {config.host} without a token: anyone on the network could drive your GPU. "
            "Set --token (or UNDERPAINT_TOKEN), or bind 127.0.0.1."
        )
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        raise UnsafeConfig("TLS needs both --ssl-certfile and --ssl-keyfile")


def check_token(config: ServerConfig, offered: str | None) -> None:
    """Constant-time comparison; no token configured means none is needed."""
    if not config.token:
        return
    if offered is None or not hmac.compare_digest(offered.encode(), config.token.encode()):
        raise ProtocolError(errors.BAD_TOKEN, "missing token" if offered is None else "wrong token", "token")


def check_origin(config: ServerConfig, origin: str | None) -> None:
    """Plugins send no Origin; a browser always does. Only origins allowed by the operator may connect."""
    if origin is None or origin in config.allow_origins:
        return
    raise ProtocolError(errors.FORBIDDEN_ORIGIN, f"requests from origin {origin!r} are not allowed (a web page must "
                        "not drive this server; see --allow-origin)", "origin")


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None
