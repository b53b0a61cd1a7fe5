"""Plugin settings (server, token, preview, inpaint geometry): validation and persistence.

Host independent: the store is anything with ``read(key, default) -> str`` and ``write(key, value)``; in Krita
that is ``Krita.instance().readSetting/writeSetting`` under the ``underpaint`` group.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from .proto import core, vocabulary

DEFAULT_SERVER = core.settings.DEFAULT_URL
GROUP = "underpaint"
SettingsError = core.settings.SettingsError  # a setting the plugin cannot use; the message names it


class Store(Protocol):
    def read(self, key: str, default: str) -> str: ...

    def write(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Settings:
    server_url: str = DEFAULT_SERVER
    token: str = ""
    preview: bool = True
    context_padding: int = int(vocabulary.CONTEXT.default)
    feather: int = int(vocabulary.FEATHER.default)
    grow: int = int(vocabulary.GROW.default)
    transfer: str = core.transfer.DEFAULT_MODE  # auto (raw on loopback, else compressed) | raw | compressed

    def validated(self) -> Settings:
        """Return a cleaned copy (URL trimmed) or raise SettingsError naming the first bad setting."""
        url = core.settings.server_url(self.server_url)
        _check_range("Context padding", self.context_padding, vocabulary.CONTEXT)
        _check_range("Feather", self.feather, vocabulary.FEATHER)
        _check_range("Grow", self.grow, vocabulary.GROW)
        token = core.settings.token(self.token) or ""
        transfer = core.transfer.mode(self.transfer, "Transfer")
        return dataclasses.replace(self, server_url=url, token=token, transfer=transfer)


def _check_range(name: str, value: object, bounds: vocabulary.Range) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"{name} must be a whole number (got {value!r})")
    if not bounds.lo <= value <= bounds.hi:
        raise SettingsError(f"{name} must be between {bounds.lo:g} and {bounds.hi:g} pixels (got {value})")


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
