"""Decoding a JSON control message into one of the message classes of a decode table (``messages``)."""

from __future__ import annotations

import json

from . import errors
from .errors import ProtocolError
from .message_base import Message
from .vocabulary import MAX_TEXT_BYTES


def decode_message(text: str | bytes, table: dict[str, type[Message]]) -> Message:
    """Parse one JSON control message using ``table`` (CLIENT_MESSAGES or SERVER_MESSAGES)."""
    size = len(text)
    if isinstance(text, str) and size <= MAX_TEXT_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))  # bytes on the wire, not characters
    if size > MAX_TEXT_BYTES:
        raise ProtocolError(errors.TOO_LARGE, f"control message is larger than {MAX_TEXT_BYTES} bytes")
    try:
        data = json.loads(text)  # NaN/Infinity parse to floats; the field check names them
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(errors.BAD_JSON, f"control message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(errors.BAD_MESSAGE, "control message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(errors.MISSING_FIELD, "control message needs a string 'type'", "type")
    cls = table.get(kind)
    if cls is None:
        allowed = ", ".join(sorted(table))
        raise ProtocolError(errors.UNKNOWN_TYPE, f"unknown message type {kind!r}; expected one of: {allowed}", "type")
    job = data.get("job") if isinstance(data.get("job"), str) else None
    try:
        return cls.from_dict(data, ignore=("type",))
    except ProtocolError as exc:
        exc.job = exc.job or (job[:64] if job else None)
        raise


def peek_protocol(text: str | bytes, kind: str) -> int | None:
    """``protocol`` of a ``hello``/``welcome`` that may not decode (another version's fields): the version check
    comes before anything else, so a v1 peer gets ``incompatible_version``, not ``missing_field``. Text over
    ``MAX_TEXT_BYTES`` is never parsed."""
    if len(text) > MAX_TEXT_BYTES:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return None
    if isinstance(data, dict) and data.get("type") == kind:
        version = data.get("protocol")
        if isinstance(version, int) and not isinstance(version, bool):
            return version
    return None
