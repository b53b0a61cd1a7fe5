"""The server URL and token a painter types: checked, with a sentence naming the setting when wrong."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..vocabulary import WS_PATH

DEFAULT_URL = f"ws://127.0.0.1:7860{WS_PATH}"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class SettingsError(ValueError):
    """A setting the plugin cannot use; the message names the setting (as the host labels it)."""


def server_url(text: str, label: str = "Server URL") -> str:
    """Accept ``host:port``, ``http(s)://`` or ``ws(s)://`` addresses; return the websocket URL.

    http maps to ws, https to wss, a missing path becomes the protocol's endpoint; raises SettingsError.
    """
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise SettingsError(f"{label} is empty; use e.g. {DEFAULT_URL}")
    if any(c.isspace() for c in raw):
        raise SettingsError(f"{label} must not contain spaces: {text!r}")
    full = raw if "://" in raw else "ws://" + raw
    parts = urlsplit(full)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise SettingsError(f"{label} must start with ws://, wss://, http:// or https:// (got {parts.scheme}://)")
    try:
        port = parts.port
    except ValueError:
        raise SettingsError(f"{label} has an invalid port: {raw}") from None
    if not parts.hostname:
        raise SettingsError(f"{label} has no host name: {raw}")
    if port == 0:
        raise SettingsError(f"{label} port must be 1-65535")
    path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def token(text: str | None, label: str = "Token") -> str | None:
    """The token trimmed, None when empty; one line only (it goes into ``hello.token``)."""
    if text is None:
        return None
    if not isinstance(text, str) or any(c in text for c in "\r\n\x00"):
        raise SettingsError(f"{label} must be a single line of text")
    return text.strip() or None
