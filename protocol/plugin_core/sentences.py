"""Protocol error codes turned into sentences a painter can act on; the raw code is never shown."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .. import errors

HINTS = {
    errors.CONNECTION_FAILED: "Cannot reach the Underpaint server. Is `underpaint serve` running, and is the "
    "server URL right?",
    errors.CONNECTION_LOST: "The connection to the server was lost.",
    errors.BAD_TOKEN: "The server rejected the token: check the Token setting.",
    errors.FORBIDDEN_ORIGIN: "The server refused this client (forbidden origin).",
    errors.OUT_OF_MEMORY: "The server ran out of memory: use a smaller area, fewer images or fewer steps.",
    errors.MODEL_LOAD_FAILED: "The server could not load the model.",
    errors.UNKNOWN_MODEL: "The server does not know that model: pick one of the server's models.",
    errors.QUEUE_FULL: "The server's queue is full: wait for running jobs or cancel some.",
    errors.TOO_LARGE: "The image is too large for the server: select a smaller area.",
    errors.EMPTY_MASK: "The selection is empty after growing/shrinking it: select a larger area.",
    errors.UNSUPPORTED: "The server does not support this request.",
    errors.INTERNAL: "The server failed with an internal error.",
    errors.OUT_OF_RANGE: "The server does not accept a setting of this job: change it and try again.",
    errors.NOT_READY: "The server is still starting: try again in a moment.",
    errors.CANCELLED: "The job was cancelled.",
}
# the plugin and the server disagree about the wire: a version mismatch or a bug, not the painter's doing
MISMATCH = frozenset({
    errors.BAD_JSON, errors.BAD_MESSAGE, errors.UNKNOWN_TYPE, errors.UNKNOWN_FIELD, errors.MISSING_FIELD,
    errors.BAD_TYPE, errors.NOT_FINITE, errors.BAD_VALUE, errors.TOO_LONG, errors.BAD_FRAME,
    errors.TRUNCATED_FRAME, errors.LENGTH_MISMATCH, errors.BAD_PAYLOAD, errors.ALREADY_HELLO,
    errors.DUPLICATE_JOB, errors.UNKNOWN_JOB, errors.UNEXPECTED_FRAME, errors.SIZE_MISMATCH,
    errors.MISSING_FRAME, errors.MISSING_INPUT, errors.UNEXPECTED_INPUT})
MISMATCH_HINT = "The server could not use this request; the plugin and server versions may not match (update both)."
# the protocol's own sentence already says which program to upgrade
AS_IS = frozenset({errors.INCOMPATIBLE_VERSION})


def explain(code: str, message: str, labels: Mapping[str, str] | None = None) -> str:
    """``hint (server's message)``; wire field names in the message are replaced by the host's ``labels``."""
    detail = " ".join(str(message).split())
    if labels:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, labels)) + r")\b")
        detail = pattern.sub(lambda m: labels[m.group(1)], detail)
    if code in AS_IS and detail:
        return detail[0].upper() + detail[1:]
    hint = HINTS.get(code) or (MISMATCH_HINT if code in MISMATCH else None)
    if hint is None:
        hint = f"The server reported a problem ({code.replace('_', ' ')})."
    return f"{hint} ({detail})" if detail else hint


def explain_error(error: errors.ProtocolError | object, labels: Mapping[str, str] | None = None) -> str:
    """``explain`` for anything with ``code`` and ``message`` (a ``ProtocolError`` or an ``Error`` message)."""
    return explain(getattr(error, "code", errors.INTERNAL), getattr(error, "message", str(error)), labels)
