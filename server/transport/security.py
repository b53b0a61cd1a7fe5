"""Who may talk to the server: bind rules, token, Origin."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque

from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError

from ..config import ServerConfig


class UnsafeConfig(Exception):
    """The server refuses to start with these settings."""


MIN_TOKEN_CHARS = 16  # off loopback


def generate_token() -> str:
    """A fresh token for ``underpaint serve --token generate`` (printed once)."""
    return secrets.token_urlsafe(24)


def check_startup(config: ServerConfig) -> None:
    if not config.is_loopback and not config.token:
        raise UnsafeConfig(
            f"refusing to listen on {config.host} without a token: anyone on the network could drive your GPU. "
            "Set UNDERPAINT_TOKEN (or --token generate), or bind 127.0.0.1."
        )
    token = config.token or ""
    if not config.is_loopback and (len(token.strip()) < MIN_TOKEN_CHARS or token != token.strip()):
        raise UnsafeConfig(
            f"refusing to listen on {config.host} with a weak token: off loopback the token needs at least "
            f"{MIN_TOKEN_CHARS} characters and no surrounding spaces. Use --token generate for a random one."
        )
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        raise UnsafeConfig("TLS needs both --ssl-certfile and --ssl-keyfile")


def check_token(config: ServerConfig, offered: str | None) -> None:
    """Constant-time comparison; no token configured means none is needed."""
    if not config.token:
        return
    if offered is None or not hmac.compare_digest(offered.encode(), config.token.encode()):
        raise ProtocolError(errors.BAD_TOKEN, "missing token" if offered is None else "wrong token", "token")


class AuthLimiter:
    """Failed token checks per address: after ``limit`` failures within ``window`` s the address is refused
    (``rate_limited``) until its failures are older than the window. Thread-safe (REST runs in threads)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            self._failures.pop(address, None)
        return times

    def check(self, config: ServerConfig, address: str, offered: str | None) -> None:
        """``check_token``, refused outright for an address with too many recent failures."""
        if not config.token:
            return
        now = time.monotonic()
        with self._lock:
            times = self._recent(address, now)
            if self.limit and len(times) >= self.limit:
                wait = int(self.window - (now - times[0])) + 1
                raise ProtocolError(errors.RATE_LIMITED, f"too many wrong tokens from {address}: try again in "
                                    f"{wait} s", "token")
        try:
            check_token(config, offered)
        except ProtocolError:
            with self._lock:
                self._failures.setdefault(address, deque()).append(now)
                while len(self._failures) > 10_000:  # bounded even under a spray from many addresses
                    del self._failures[next(iter(self._failures))]
            raise


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
