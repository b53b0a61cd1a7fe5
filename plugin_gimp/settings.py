"""The server URL and token shared by both procedures, kept in the GIMP profile between runs.

Stored as ``underpaint.json`` in the profile directory, readable by the user only (it may hold a token).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .params import DEFAULT_URL, ParamError, normalize_url

FILE_NAME = "underpaint.json"


@dataclass(frozen=True)
class ServerSettings:
    url: str = DEFAULT_URL
    token: str | None = None


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
    return ServerSettings(url, token if isinstance(token, str) and token else None)


def save(directory: Path, settings: ServerSettings) -> Path:
    """Write atomically with mode 0600; returns the file path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    text = json.dumps({"url": settings.url, "token": settings.token}, indent=1)
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
        return ServerSettings(arg_url, token)
    return ServerSettings(remembered.url, arg_token if arg_token is not None else remembered.token)
