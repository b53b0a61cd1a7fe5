"""The server URL and token shared by both procedures, kept in the GIMP profile between runs.

Stored as ``underpaint.json`` in the profile directory, readable by the user only (it may hold a token).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ._protocol import core
from .params import DEFAULT_URL, ParamError, clean_values, normalize_url

FILE_NAME = "underpaint.json"
VALUES_FILE = "underpaint-values.json"  # the dialog's last values per procedure, kept even after a failed run
NOT_REMEMBERED = ("token",)  # secrets stay in FILE_NAME, and only after a successful run


@dataclass(frozen=True)
class ServerSettings:
    url: str = DEFAULT_URL
    token: str | None = None
    transfer: str = core.transfer.DEFAULT_MODE  # auto (raw on loopback, else compressed) | raw | compressed


def load(directory: Path) -> ServerSettings:
    """The remembered settings; defaults when the file is missing or unreadable (never raises)."""
    path = Path(directory) / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ServerSettings()
    if not isinstance(data, dict):
        return ServerSettings()
    url, token = data.get("url"), data.get("token")
    try:
        url = normalize_url(url) if isinstance(url, str) and url.strip() else DEFAULT_URL
    except ParamError:
        url = DEFAULT_URL
    try:
        transfer = core.transfer.mode(data.get("transfer", core.transfer.DEFAULT_MODE))
    except core.settings.SettingsError:
        transfer = core.transfer.DEFAULT_MODE
    return ServerSettings(url, token if isinstance(token, str) and token else None, transfer)


def save(directory: Path, settings: ServerSettings) -> Path:
    """Write atomically with mode 0600; returns the file path."""
    return _write(Path(directory) / FILE_NAME, {"url": settings.url, "token": settings.token,
                                                "transfer": settings.transfer})


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_values(directory: Path, kind: str) -> dict:
    """The dialog values last confirmed for ``kind`` (valid ones only; {} when none)."""
    values = _read(Path(directory) / VALUES_FILE).get(kind)
    return clean_values(kind, values, NOT_REMEMBERED) if isinstance(values, dict) else {}


def save_values(directory: Path, kind: str, values: dict) -> Path:
    """Remember the dialog values of ``kind`` (without the token)."""
    path = Path(directory) / VALUES_FILE
    data = _read(path)
    data[kind] = clean_values(kind, values, NOT_REMEMBERED)
    return _write(path, data)


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(data, indent=1)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def resolve(arg_url: str, arg_token: str | None, remembered: ServerSettings) -> ServerSettings:
    """Arguments win; an empty URL falls back to the remembered server (token only with its own server)."""
    if arg_url:
        token = arg_token if arg_token is not None else (
            remembered.token if arg_url == remembered.url else None)
        return ServerSettings(arg_url, token, remembered.transfer)
    return ServerSettings(remembered.url, arg_token if arg_token is not None else remembered.token,
                          remembered.transfer)
