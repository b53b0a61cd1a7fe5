"""Plugin settings (server, token, preview, inpaint geometry): validation and persistence.

Host independent: the store is anything with ``read(key, default) -> str`` and ``write(key, value)``; in Krita
that is ``Krita.instance().readSetting/writeSetting`` under the ``underpaint`` group.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

DEFAULT_SERVER = "ws://127.0.0.1:7860/v1/ws"
GROUP = "underpaint"
PADDING_RANGE = (0, 8192)
FEATHER_RANGE = (0, 512)
GROW_RANGE = (-512, 512)


class SettingsError(ValueError):
    """A setting has a value the plugin cannot use; the message names the setting."""


class Store(Protocol):
    def read(self, key: str, default: str) -> str: ...

    def write(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Settings:
    server_url: str = DEFAULT_SERVER
    token: str = ""
    preview: bool = True
    context_padding: int = 64
    feather: int = 8
    grow: int = 0

    def validated(self) -> Settings:
        """Return a cleaned copy (URL trimmed) or raise SettingsError naming the first bad setting."""
        url = check_server_url(self.server_url)
        _check_range("Context padding", self.context_padding, PADDING_RANGE)
        _check_range("Feather", self.feather, FEATHER_RANGE)
        _check_range("Grow", self.grow, GROW_RANGE)
        if any(c in self.token for c in "\r\n"):
            raise SettingsError("Token must be a single line")
        return dataclasses.replace(self, server_url=url, token=self.token.strip())


def check_server_url(url: str) -> str:
    """Accept ``host:port``, ``http(s)://`` or ``ws(s)://`` URLs; return it trimmed or raise SettingsError."""
    text = url.strip()
    if not text:
        raise SettingsError("Server URL is empty; use e.g. ws://127.0.0.1:7860/v1/ws")
    full = text if "://" in text else "ws://" + text
    parts = urlsplit(full)
    if parts.scheme not in ("ws", "wss", "http", "https"):
        raise SettingsError(f"Server URL must start with ws://, wss://, http:// or https:// (got {parts.scheme}://)")
    try:
        port = parts.port
    except ValueError:
        raise SettingsError(f"Server URL has an invalid port: {text}") from None
    if not parts.hostname:
        raise SettingsError(f"Server URL has no host name: {text}")
    if port == 0:
        raise SettingsError("Server URL port must be 1-65535")
    return text


def _check_range(name: str, value: object, bounds: tuple[int, int]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"{name} must be a whole number (got {value!r})")
    lo, hi = bounds
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi} pixels (got {value})")


def _parse(field: dataclasses.Field, text: str) -> object:
    if field.type in ("bool", bool):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if field.type in ("int", int):
        return int(text)
    return text


def load(store: Store) -> tuple[Settings, list[str]]:
    """Read settings; a stored value that does not parse or validate falls back to its default.

    Returns the settings and one message per value that was ignored (for the status line).
    """
    defaults = Settings()
    values: dict[str, object] = {}
    problems: list[str] = []
    for field in dataclasses.fields(Settings):
        text = store.read(field.name, _format(getattr(defaults, field.name)))
        try:
            value = _parse(field, text)
            dataclasses.replace(defaults, **{field.name: value}).validated()
        except SettingsError as exc:
            problems.append(f"ignored stored setting: {exc}")
            continue
        except ValueError:
            problems.append(f"ignored stored {field.name} {text!r}: not a valid value")
            continue
        values[field.name] = value
    return dataclasses.replace(defaults, **values).validated(), problems


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def save(store: Store, settings: Settings) -> Settings:
    """Validate, then write every setting; returns the clean settings (SettingsError: nothing written)."""
    clean = settings.validated()
    for field in dataclasses.fields(Settings):
        store.write(field.name, _format(getattr(clean, field.name)))
    return clean


class MemoryStore:
    """A dict-backed store (tests, and a fallback outside Krita)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    def read(self, key: str, default: str) -> str:
        return self.values.get(key, default)

    def write(self, key: str, value: str) -> None:
        self.values[key] = value
