"""Error codes of the wire protocol and the one exception type every decoder raises."""

from __future__ import annotations

# Decoding of JSON control messages.
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_FIELD = "unknown_field"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
NOT_FINITE = "not_finite"
OUT_OF_RANGE = "out_of_range"
BAD_VALUE = "bad_value"
TOO_LONG = "too_long"

# Decoding of binary frames.
BAD_FRAME = "bad_frame"
TRUNCATED_FRAME = "truncated_frame"
LENGTH_MISMATCH = "length_mismatch"
TOO_LARGE = "too_large"
BAD_PAYLOAD = "bad_payload"

# Session and job state.
INCOMPATIBLE_VERSION = "incompatible_version"
BAD_TOKEN = "bad_token"
FORBIDDEN_ORIGIN = "forbidden_origin"
RATE_LIMITED = "rate_limited"  # too many failed tokens, or too many connections, from one address
NOT_READY = "not_ready"
ALREADY_HELLO = "already_hello"
DUPLICATE_JOB = "duplicate_job"
UNKNOWN_JOB = "unknown_job"
UNEXPECTED_FRAME = "unexpected_frame"
SIZE_MISMATCH = "size_mismatch"
MISSING_FRAME = "missing_frame"
MISSING_INPUT = "missing_input"
UNEXPECTED_INPUT = "unexpected_input"
UNKNOWN_MODEL = "unknown_model"
UNSUPPORTED = "unsupported"
QUEUE_FULL = "queue_full"
EMPTY_MASK = "empty_mask"
STALE_BASE = "stale_base"  # a live delta's base is not the server's kept input (missing, other, corrupted)

# Server-side job failures.
OUT_OF_MEMORY = "out_of_memory"
MODEL_LOAD_FAILED = "model_load_failed"
INTERNAL = "internal"

# Client-side transport failures (never sent by a server).
CONNECTION_FAILED = "connection_failed"
CONNECTION_LOST = "connection_lost"
CANCELLED = "cancelled"  # raised by Client.run_job when the job was cancelled

ALL_CODES = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))

# Codes after which a session cannot go on: the server closes the connection.
FATAL_CODES = frozenset({INCOMPATIBLE_VERSION, BAD_TOKEN, FORBIDDEN_ORIGIN, RATE_LIMITED})


class ProtocolError(Exception):
    """Anything wrong on the wire: a code from this module, a sentence, and where it applies."""

    def __init__(self, code: str, message: str, field: str | None = None, job: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.job = job

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, field={self.field!r}, job={self.job!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProtocolError) and (self.code, self.message, self.field, self.job) == (
            other.code,
            other.message,
            other.field,
            other.job,
        )

    __hash__ = Exception.__hash__
