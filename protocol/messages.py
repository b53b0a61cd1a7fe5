"""JSON control messages of protocol v2; their names, ranges and defaults come from ``vocabulary``.

Every message is a frozen dataclass; ``decode_message`` validates everything (types, ranges, unknown
fields, NaN/inf) before building one and raises ``ProtocolError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from . import errors
from .errors import ProtocolError
from .schema import Spec, parse_fields, to_json_value
from .vocabulary import (
    BATCH,
    CONTEXT,
    FEATHER,
    FEATURE_CHARS,
    GROW,
    GUIDANCE,
    IMAGE_ENCODINGS,
    INPUT_ROLES,
    JOB_ID_CHARS,
    KINDS,
    MAX_FEATURES,
    MAX_JOB_ID,
    MAX_PROMPT,
    MAX_SEED,
    MAX_TEXT_BYTES,
    MAX_TILE_SIDE,
    MAX_TILES,
    MIN_TILE_SIDE,
    PIXEL_FORMATS,
    PREVIEW_ENCODINGS,
    PREVIEW_SIZE,
    SAMPLERS,
    STEPS,
    STRENGTH,
    Range,
)


def _range(kind: Any, r: Range, **rules: Any) -> Any:
    return _f(kind, default=kind(r.default), lo=kind(r.lo), hi=kind(r.hi), **rules)


def _names(max_len: int, pattern: str = FEATURE_CHARS, **rules: Any) -> Any:
    """A list of names (features, kinds) that may include names this version does not know."""
    return _f(list, item=str, pattern=pattern, item_len=64, max_len=max_len, **rules)


def _f(kind: Any, *, required: bool = False, default: Any = None, python_default: Any = None, **rules: Any) -> Any:
    """A dataclass field carrying its wire rules. ``python_default``: a field required on the wire that Python
    callers may leave out (the connection fills it in)."""
    spec = Spec("", kind, required=required, default=default, **rules)
    meta = {"spec": spec}
    if python_default is not None:
        return dataclasses.field(default_factory=python_default, metadata=meta)
    if required:
        return dataclasses.field(metadata=meta)
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _job() -> Any:
    return _f(str, required=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS)


class Record:
    """Shared encode/decode for messages and their nested objects."""

    @classmethod
    def specs(cls) -> tuple[Spec, ...]:
        cached = cls.__dict__.get("_specs")
        if cached is None:
            cached = tuple(dataclasses.replace(f.metadata["spec"], name=f.name) for f in dataclasses.fields(cls))
            cls._specs = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "", ignore: tuple[str, ...] = ()) -> Any:
        return cls(**parse_fields(cls.specs(), data, path, ignore))

    def to_dict(self) -> dict[str, Any]:
        """Every field, except a feature-guarded one at its default (an older peer would not know it)."""
        out = {}
        for spec in self.specs():
            value = getattr(self, spec.name)
            if spec.feature is None or value != (spec.default() if callable(spec.default) else spec.default):
                out[spec.name] = to_json_value(value)
        return out


class Message(Record):
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **super().to_dict()}

    def encode(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ----------------------------------------------------------------------------- nested objects
@dataclass(frozen=True, kw_only=True)
class PreviewOptions(Record):
    enabled: bool = _f(bool, default=True)
    max_size: int = _range(int, PREVIEW_SIZE)
    every_steps: int = _f(int, default=1, lo=1, hi=1000)
    min_interval_ms: int = _f(int, default=0, lo=0, hi=600_000)
    encoding: str = _f(str, default="jpeg", choices=PREVIEW_ENCODINGS)  # jpeg/webp: features


@dataclass(frozen=True, kw_only=True)
class InpaintOptions(Record):
    feather: int = _range(int, FEATHER)
    grow: int = _range(int, GROW)
    context: int = _range(int, CONTEXT)


@dataclass(frozen=True, kw_only=True)
class ModelInfo(Record):
    id: str = _f(str, required=True, max_len=512)
    name: str = _f(str, required=True, max_len=512)
    family: str = _f(str, required=True, max_len=32)
    capabilities: tuple[str, ...] = _names(64, required=True)  # job kinds; unknown names are ignored
    resolution: int = _f(int, required=True, lo=8, hi=16384)
    default: bool = _f(bool, default=False)
    note: str = _f(str, default="", max_len=2000)


@dataclass(frozen=True, kw_only=True)
class Limits(Record):
    max_pixels: int = _f(int, required=True, lo=1)
    max_frame_bytes: int = _f(int, required=True, lo=1)
    max_queued_jobs: int = _f(int, required=True, lo=1)
    max_batch: int = _f(int, required=True, lo=BATCH.lo, hi=BATCH.hi)
    max_steps: int = _f(int, required=True, lo=STEPS.lo, hi=STEPS.hi)
    keep_results_s: int = _f(int, default=0, lo=0)


@dataclass(frozen=True, kw_only=True)
class Defaults(Record):
    model: str = _f(str, required=True, max_len=512)
    strength: float = _range(float, STRENGTH)
    steps: int = _range(int, STEPS)
    guidance: float = _range(float, GUIDANCE)
    sampler: str = _f(str, default="default", max_len=64, pattern=FEATURE_CHARS)


@dataclass(frozen=True, kw_only=True)
class JobInput(Record):
    """One input of a job: its role (``vocabulary.ROLES``) and how many frames (tiles) of that role follow."""

    role: str = _f(str, required=True, choices=INPUT_ROLES)
    tiles: int = _f(int, default=1, lo=1, hi=MAX_TILES)


# ----------------------------------------------------------------------------- client -> server
@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int = _f(int, required=True, lo=0, hi=1_000_000)
    client: str = _f(str, required=True, max_len=64)
    client_version: str = _f(str, default="", max_len=64)
    token: str | None = _f(str, nullable=True, max_len=1024)
    features: tuple[str, ...] = _names(MAX_FEATURES, required=True, python_default=tuple)


@dataclass(frozen=True, kw_only=True)
class Submit(Message):
    """A job; the frames of its ``inputs`` follow as binary frames, each carrying its role and tile number.

    ``inputs`` may be left empty in Python: ``ClientConnection.submit`` fills it in from the frames it is given.
    ``result_tile``: 0 = one result frame per image; else the longest tile side of the tiled result frames.
    """

    TYPE: ClassVar[str] = "submit"
    job: str = _job()
    kind: str = _f(str, required=True, choices=tuple(KINDS))
    inputs: tuple[JobInput, ...] = _f(list, required=True, item=JobInput, max_len=len(INPUT_ROLES),
                                      python_default=tuple)
    model: str | None = _f(str, nullable=True, max_len=512)
    prompt: str = _f(str, default="", max_len=MAX_PROMPT)
    negative_prompt: str = _f(str, default="", max_len=MAX_PROMPT)
    strength: float = _range(float, STRENGTH)
    steps: int = _range(int, STEPS)
    guidance: float = _range(float, GUIDANCE)
    seed: int | None = _f(int, nullable=True, lo=0, hi=MAX_SEED)
    batch: int = _range(int, BATCH)
    sampler: str = _f(str, default="default", choices=tuple(SAMPLERS))
    preview: PreviewOptions = _f(PreviewOptions, default=PreviewOptions)
    inpaint: InpaintOptions = _f(InpaintOptions, default=InpaintOptions)
    result_format: str = _f(str, default="rgba8", choices=tuple(PIXEL_FORMATS))
    result_encoding: str = _f(str, default="raw", choices=IMAGE_ENCODINGS)
    result_tile: int = _f(int, default=0, lo=0, hi=MAX_TILE_SIDE)
    keep_result: bool = _f(bool, default=False, feature="resume")

    def __post_init__(self) -> None:
        if 0 < self.result_tile < MIN_TILE_SIDE:
            raise ProtocolError(errors.OUT_OF_RANGE, f"'result_tile' must be 0 or {MIN_TILE_SIDE}..{MAX_TILE_SIDE} "
                                f"(got {self.result_tile})", "result_tile", self.job)
        roles = [i.role for i in self.inputs]
        for i, role in enumerate(roles):
            if role in roles[:i]:
                raise ProtocolError(errors.BAD_VALUE, f"'inputs' names the role {role!r} twice; a job has at most "
                                    "one input per role", f"inputs[{i}].role", self.job)

    def input(self, role: str) -> JobInput | None:
        return next((i for i in self.inputs if i.role == role), None)


@dataclass(frozen=True, kw_only=True)
class Cancel(Message):
    TYPE: ClassVar[str] = "cancel"
    job: str = _job()


@dataclass(frozen=True, kw_only=True)
class Resume(Message):
    """``key``: the ``resume_key`` the job's first ``queued`` carried (feature ``resume_key``)."""

    TYPE: ClassVar[str] = "resume"
    job: str = _job()
    key: str | None = _f(str, nullable=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS, feature="resume_key")


# ----------------------------------------------------------------------------- server -> client
@dataclass(frozen=True, kw_only=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: int = _f(int, required=True, lo=0, hi=1_000_000)
    server_version: str = _f(str, required=True, max_len=64)
    device: str = _f(str, required=True, max_len=256)
    features: tuple[str, ...] = _names(MAX_FEATURES, required=True, python_default=tuple)
    models: tuple[ModelInfo, ...] = _f(list, default=tuple, item=ModelInfo, max_len=10_000)
    defaults: Defaults = _f(Defaults, required=True)
    limits: Limits = _f(Limits, required=True)


@dataclass(frozen=True, kw_only=True)
class Queued(Message):
    TYPE: ClassVar[str] = "queued"
    job: str = _job()
    position: int = _f(int, required=True, lo=0)
    # the secret that proves a kept job is yours on resume: in the first queued of a keep_result job only
    resume_key: str | None = _f(str, nullable=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS, feature="resume_key")


@dataclass(frozen=True, kw_only=True)
class Started(Message):
    """The job left the queue. ``x, y, width, height``: the document region its previews and results cover."""

    TYPE: ClassVar[str] = "started"
    job: str = _job()
    x: int = _f(int, default=0, lo=-(2**31), hi=2**31 - 1)
    y: int = _f(int, default=0, lo=-(2**31), hi=2**31 - 1)
    width: int = _f(int, default=0, lo=0, hi=2**31 - 1)
    height: int = _f(int, default=0, lo=0, hi=2**31 - 1)


@dataclass(frozen=True, kw_only=True)
class Progress(Message):
    """Step ``step`` of ``total``: the denoising steps that will really run (for img2img about
    ``steps x strength``), the same number in every progress of a job."""

    TYPE: ClassVar[str] = "progress"
    job: str = _job()
    step: int = _f(int, required=True, lo=1)
    total: int = _f(int, required=True, lo=1)

    def __post_init__(self) -> None:
        if self.step > self.total:
            raise ProtocolError(errors.OUT_OF_RANGE, f"'step' {self.step} is past 'total' {self.total}", "step",
                                self.job)


@dataclass(frozen=True, kw_only=True)
class Result(Message):
    """Sent after the job's ``images`` result frames."""

    TYPE: ClassVar[str] = "result"
    job: str = _job()
    images: int = _f(int, required=True, lo=0, hi=BATCH.hi)
    seeds: tuple[int, ...] = _f(list, default=tuple, item=int, lo=0, hi=MAX_SEED, max_len=int(BATCH.hi))
    timings: dict[str, float] = _f(dict, default=dict, item=float, lo=0.0, max_len=32)


@dataclass(frozen=True, kw_only=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str = _f(str, required=True, max_len=64)
    message: str = _f(str, required=True, max_len=4000)
    job: str | None = _f(str, nullable=True, max_len=64)
    field: str | None = _f(str, nullable=True, max_len=256)

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> Error:
        return cls(code=exc.code, message=exc.message[:4000], job=exc.job, field=exc.field)

    def to_exception(self) -> ProtocolError:
        return ProtocolError(self.code, self.message, self.field, self.job)


@dataclass(frozen=True, kw_only=True)
class Cancelled(Message):
    TYPE: ClassVar[str] = "cancelled"
    job: str = _job()


CLIENT_MESSAGES: dict[str, type[Message]] = {m.TYPE: m for m in (Hello, Submit, Cancel, Resume)}
SERVER_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (Welcome, Queued, Started, Progress, Result, Error, Cancelled)
}
from . import live_messages  # noqa: E402, F401 - adds the live_* messages (built on the classes above) to both tables


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
    comes before anything else, so a v1 peer gets ``incompatible_version``, not ``missing_field``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return None
    if isinstance(data, dict) and data.get("type") == kind:
        version = data.get("protocol")
        if isinstance(version, int) and not isinstance(version, bool):
            return version
    return None
