"""Server and transport error codes turned into sentences a painter can act on."""

from __future__ import annotations

import re

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
    errors.OUT_OF_RANGE: "The server does not accept a setting of this job: change it and generate again.",
    errors.NOT_READY: "The server is still starting: try again in a moment.",
    errors.CANCELLED: "The job was cancelled.",
}
# the plugin and the server disagree about the wire format: a version mismatch or a bug, not the painter's doing
_MISMATCH = (errors.BAD_JSON, errors.BAD_MESSAGE, errors.UNKNOWN_TYPE, errors.UNKNOWN_FIELD, errors.MISSING_FIELD,
             errors.BAD_TYPE, errors.NOT_FINITE, errors.BAD_VALUE, errors.TOO_LONG, errors.BAD_FRAME,
             errors.TRUNCATED_FRAME, errors.LENGTH_MISMATCH, errors.BAD_PAYLOAD, errors.ALREADY_HELLO,
             errors.DUPLICATE_JOB, errors.UNKNOWN_JOB, errors.UNEXPECTED_FRAME, errors.SIZE_MISMATCH,
             errors.MISSING_FRAME)
_MISMATCH_HINT = ("The server could not use this request; the plugin and server versions may not match "
                  "(update both).")
# wire field names as the docker labels them
_LABELS = {"steps": "Steps", "batch": "Images", "guidance": "CFG", "strength": "Strength", "seed": "Seed",
           "negative_prompt": "Negative", "prompt": "Prompt", "model": "Model"}
_LABEL_RE = re.compile(r"\b(" + "|".join(_LABELS) + r")\b")


def explain(code: str, message: str) -> str:
    """A sentence for the painter: ``hint (server's message)``, field names as the docker shows them."""
    detail = _LABEL_RE.sub(lambda m: _LABELS[m.group(1)], " ".join(message.split()))
    hint = _HINTS.get(code) or (_MISMATCH_HINT if code in _MISMATCH else None)
    if hint is None:
        hint = f"The server reported a problem ({code.replace('_', ' ')})."
    return f"{hint} ({detail})" if detail else hint
