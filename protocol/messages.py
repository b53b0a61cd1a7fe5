"""JSON control messages of protocol v1: the vocabulary of the wire.

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

PROTOCOL_VERSION = 1
MAX_TEXT_BYTES = 1 << 20  # a JSON control message is at most 1 MiB
JOB_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
KINDS = ("img2img", "inpaint")
SAMPLERS = ("default", "euler", "euler_a", "dpmpp_2m", "ddim", "lcm")
PIXEL_FORMATS = ("rgba8", "bgra8", "rgb8", "rgba16", "bgra16", "rgbaf16", "rgbaf32", "gray8", "graya8", "gray16",
                 "graya16")
IMAGE_ENCODINGS = ("raw", "zlib", "png")
PREVIEW_ENCODINGS = ("jpeg", "webp", "png", "raw")
MAX_SEED = 2**32 - 1
MAX_TILES = 4096  # image frames of one submit (and as many mask frames)
MIN_TILE_SIDE, MAX_TILE_SIDE = 64, 16384  # result_tile, when not 0


def _f(kind: Any, *, required: bool = False, default: Any = None, **rules: Any) -> Any:
    """A dataclass field carrying its wire rules."""
    spec = Spec("", kind, required=required, default=default, **rules)
    meta = {"spec": spec}
    if required:
        return dataclasses.field(metadata=meta)
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _job() -> Any:
    return _f(str, required=True, max_len=64, pattern=JOB_ID_CHARS)


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
        return {f.name: to_json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


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
    max_size: int = _f(int, default=256, lo=16, hi=2048)
    every_steps: int = _f(int, default=1, lo=1, hi=1000)
    min_interval_ms: int = _f(int, default=0, lo=0, hi=600_000)
    encoding: str = _f(str, default="jpeg", choices=PREVIEW_ENCODINGS)


@dataclass(frozen=True, kw_only=True)
class InpaintOptions(Record):
    feather: int = _f(int, default=8, lo=0, hi=512)
    grow: int = _f(int, default=0, lo=-512, hi=512)
    context: int = _f(int, default=64, lo=0, hi=8192)


@dataclass(frozen=True, kw_only=True)
class ModelInfo(Record):
    id: str = _f(str, required=True, max_len=512)
    name: str = _f(str, required=True, max_len=512)
    family: str = _f(str, required=True, max_len=32)
    capabilities: tuple[str, ...] = _f(list, default=KINDS, item=str, choices=KINDS, max_len=8)
    resolution: int = _f(int, required=True, lo=8, hi=16384)
    default: bool = _f(bool, default=False)
    note: str = _f(str, default="", max_len=2000)


@dataclass(frozen=True, kw_only=True)
class Limits(Record):
    max_pixels: int = _f(int, required=True, lo=1)
    max_frame_bytes: int = _f(int, required=True, lo=1)
    max_queued_jobs: int = _f(int, required=True, lo=1)
    max_batch: int = _f(int, required=True, lo=1, hi=64)
    max_steps: int = _f(int, required=True, lo=1, hi=1000)
    keep_results_s: int = _f(int, default=0, lo=0)


@dataclass(frozen=True, kw_only=True)
class Defaults(Record):
    model: str = _f(str, required=True, max_len=512)
    strength: float = _f(float, default=0.5, lo=0.0, hi=1.0)
    steps: int = _f(int, default=20, lo=1, hi=1000)
    guidance: float = _f(float, default=7.0, lo=0.0, hi=50.0)
    sampler: str = _f(str, default="default", choices=SAMPLERS)


# ----------------------------------------------------------------------------- client -> server
@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int = _f(int, required=True, lo=0, hi=1_000_000)
    client: str = _f(str, required=True, max_len=64)
    client_version: str = _f(str, default="", max_len=64)
    token: str | None = _f(str, nullable=True, max_len=1024)


@dataclass(frozen=True, kw_only=True)
class Submit(Message):
    """A job; its ``tiles`` image frames (and, for inpaint, as many mask frames) follow as binary frames.

    ``result_tile``: 0 = one result frame per image; else the longest tile side of the tiled result frames.
    """

    TYPE: ClassVar[str] = "submit"
    job: str = _job()
    kind: str = _f(str, required=True, choices=KINDS)
    model: str | None = _f(str, nullable=True, max_len=512)
    prompt: str = _f(str, default="", max_len=8000)
    negative_prompt: str = _f(str, default="", max_len=8000)
    strength: float = _f(float, default=0.5, lo=0.01, hi=1.0)
    steps: int = _f(int, default=20, lo=1, hi=1000)
    guidance: float = _f(float, default=7.0, lo=0.0, hi=50.0)
    seed: int | None = _f(int, nullable=True, lo=0, hi=MAX_SEED)
    batch: int = _f(int, default=1, lo=1, hi=64)
    sampler: str = _f(str, default="default", choices=SAMPLERS)
    preview: PreviewOptions = _f(PreviewOptions, default=PreviewOptions)
    inpaint: InpaintOptions = _f(InpaintOptions, default=InpaintOptions)
    result_format: str = _f(str, default="rgba8", choices=PIXEL_FORMATS)
    result_encoding: str = _f(str, default="raw", choices=IMAGE_ENCODINGS)
    keep_result: bool = _f(bool, default=False)
    tiles: int = _f(int, default=1, lo=1, hi=MAX_TILES)
    result_tile: int = _f(int, default=0, lo=0, hi=MAX_TILE_SIDE)

    def __post_init__(self) -> None:
        if 0 < self.result_tile < MIN_TILE_SIDE:
            raise ProtocolError(errors.OUT_OF_RANGE, f"'result_tile' must be 0 or {MIN_TILE_SIDE}..{MAX_TILE_SIDE} "
                                f"(got {self.result_tile})", "result_tile", self.job)


@dataclass(frozen=True, kw_only=True)
class Cancel(Message):
    TYPE: ClassVar[str] = "cancel"
    job: str = _job()


@dataclass(frozen=True, kw_only=True)
class Resume(Message):
    TYPE: ClassVar[str] = "resume"
    job: str = _job()


# ----------------------------------------------------------------------------- server -> client
@dataclass(frozen=True, kw_only=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: int = _f(int, required=True, lo=0, hi=1_000_000)
    server_version: str = _f(str, required=True, max_len=64)
    device: str = _f(str, required=True, max_len=256)
    models: tuple[ModelInfo, ...] = _f(list, default=tuple, item=ModelInfo, max_len=10_000)
    defaults: Defaults = _f(Defaults, required=True)
    limits: Limits = _f(Limits, required=True)


@dataclass(frozen=True, kw_only=True)
class Queued(Message):
    TYPE: ClassVar[str] = "queued"
    job: str = _job()
    position: int = _f(int, required=True, lo=0)


@dataclass(frozen=True, kw_only=True)
class Started(Message):
    """The job left the queue. ``x, y, width, height``: the document region its previews and results cover.

    ``total`` is 0 when the step count is only known once sampling starts: ``progress`` always carries it.
    """

    TYPE: ClassVar[str] = "started"
    job: str = _job()
    total: int = _f(int, default=0, lo=0)
    x: int = _f(int, default=0, lo=-(2**31), hi=2**31 - 1)
    y: int = _f(int, default=0, lo=-(2**31), hi=2**31 - 1)
    width: int = _f(int, default=0, lo=0, hi=2**31 - 1)
    height: int = _f(int, default=0, lo=0, hi=2**31 - 1)


@dataclass(frozen=True, kw_only=True)
class Progress(Message):
    TYPE: ClassVar[str] = "progress"
    job: str = _job()
    step: int = _f(int, required=True, lo=0)
    total: int = _f(int, required=True, lo=0)


@dataclass(frozen=True, kw_only=True)
class Result(Message):
    """Sent after the job's ``images`` result frames."""

    TYPE: ClassVar[str] = "result"
    job: str = _job()
    images: int = _f(int, required=True, lo=0, hi=64)
    seeds: tuple[int, ...] = _f(list, default=tuple, item=int, lo=0, hi=MAX_SEED, max_len=64)
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
