"""Server and transport error codes turned into sentences a painter can act on."""

from __future__ import annotations

from .proto import errors

_HINTS = {
    errors.CONNECTION_FAILED: "Cannot reach the Underpaint server. Is `underpaint serve` running, and is the "
    "server URL in Settings right?",
    errors.CONNECTION_LOST: "The connection to the server was lost.",
    errors.BAD_TOKEN: "The server rejected the token: check Settings > Token.",
    errors.FORBIDDEN_ORIGIN: "The server refused this client (forbidden origin).",
    errors.INCOMPATIBLE_VERSION: "The plugin and the server speak different protocol versions: update both.",
    errors.OUT_OF_MEMORY: "The server ran out of memory: use a smaller selection, fewer images or a smaller "
    "model.",
    errors.MODEL_LOAD_FAILED: "The server could not load the model.",
    errors.UNKNOWN_MODEL: "The server does not know that model: pick one from the list.",
    errors.QUEUE_FULL: "The server's queue is full: wait for running jobs or cancel some.",
    errors.TOO_LARGE: "The image is too large for the server: select a smaller area.",
    errors.EMPTY_MASK: "The selection is empty after growing/shrinking it: select a larger area.",
    errors.UNSUPPORTED: "The server does not support this request.",
    errors.INTERNAL: "The server failed with an internal error.",
}


def explain(code: str, message: str) -> str:
    """``hint (server's message)`` for known codes, ``Error <code>: message`` otherwise."""
    hint = _HINTS.get(code)
    detail = " ".join(message.split())
    if hint is None:
        return f"Error {code}: {detail}" if detail else f"Error {code}"
    return f"{hint} ({detail})" if detail else hint
