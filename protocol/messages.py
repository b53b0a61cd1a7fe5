"""JSON control messages of protocol v2; their names, ranges and defaults come from ``vocabulary``.

Every message is a frozen dataclass; ``decode_message`` validates everything (types, ranges, unknown
fields, NaN/inf) before building one and raises ``ProtocolError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import errors
from .errors import ProtocolError
from .live_messages import LIVE_CLIENT_MESSAGES, LIVE_SERVER_MESSAGES
from .message_base import Message, Record, job_id, names, ranged, wire
from .message_json import decode_message, peek_protocol  # noqa: F401 - the JSON decoder of these classes
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
    LORA_WEIGHT,
    MAX_FEATURES,
    MAX_JOB_ID,
    MAX_LORAS,
    MAX_PROMPT,
    MAX_SEED,
    MAX_TILE_SIDE,
    MAX_TILES,
    MIN_TILE_SIDE,
    PIXEL_FORMATS,
    PREVIEW_ENCODINGS,
    PREVIEW_SIZE,
    RESOLUTIONS,
    SAMPLERS,
    STEPS,
    STRENGTH,
    UPSCALE_FACTORS,
)


# ----------------------------------------------------------------------------- nested objects
@dataclass(frozen=True, kw_only=True)
class PreviewOptions(Record):
    enabled: bool = wire(bool, default=True)
    max_size: int = ranged(int, PREVIEW_SIZE)
    every_steps: int = wire(int, default=1, lo=1, hi=1000)
    min_interval_ms: int = wire(int, default=0, lo=0, hi=600_000)
    encoding: str = wire(str, default="jpeg", choices=PREVIEW_ENCODINGS)  # jpeg/webp: features


@dataclass(frozen=True, kw_only=True)
class InpaintOptions(Record):
    feather: int = ranged(int, FEATHER)
    grow: int = ranged(int, GROW)
    context: int = ranged(int, CONTEXT)


@dataclass(frozen=True, kw_only=True)
class UpscaleOptions(Record):
    """``upscale`` jobs: the result is the image x ``factor``; ``upscaler`` is a ``welcome.upscalers`` id (None =
    a plain resize); ``refine`` runs a tiled img2img of the upscaled image at ``submit.strength`` afterwards."""

    factor: int = wire(int, default=2, choices=UPSCALE_FACTORS)
    upscaler: str | None = wire(str, nullable=True, max_len=512)
    refine: bool = wire(bool, default=True)


@dataclass(frozen=True, kw_only=True)
class UpscalerInfo(Record):
    """An upscaler model the server offers (feature ``kind:upscale``); ``scale`` is its native factor."""

    id: str = wire(str, required=True, max_len=512)
    name: str = wire(str, required=True, max_len=512)
    scale: int = wire(int, required=True, lo=1, hi=16)


@dataclass(frozen=True, kw_only=True)
class ModelInfo(Record):
    id: str = wire(str, required=True, max_len=512)
    name: str = wire(str, required=True, max_len=512)
    family: str = wire(str, required=True, max_len=32)
    capabilities: tuple[str, ...] = names(64, required=True)  # job kinds; unknown names are ignored
    resolution: int = wire(int, required=True, lo=8, hi=16384)
    default: bool = wire(bool, default=False)
    note: str = wire(str, default="", max_len=2000)


@dataclass(frozen=True, kw_only=True)
class LoraInfo(Record):
    """A LoRA the server offers (feature ``lora``); it applies to models of the same ``family`` only."""

    id: str = wire(str, required=True, max_len=512)
    name: str = wire(str, required=True, max_len=512)
    family: str = wire(str, required=True, max_len=32)


@dataclass(frozen=True, kw_only=True)
class LoraChoice(Record):
    """One LoRA of a job: a ``LoraInfo.id`` and its weight (0 = as if not named)."""

    id: str = wire(str, required=True, max_len=512)
    weight: float = ranged(float, LORA_WEIGHT)


@dataclass(frozen=True, kw_only=True)
class Limits(Record):
    max_pixels: int = wire(int, required=True, lo=1)
    max_frame_bytes: int = wire(int, required=True, lo=1)
    max_queued_jobs: int = wire(int, required=True, lo=1)
    max_batch: int = wire(int, required=True, lo=BATCH.lo, hi=BATCH.hi)
    max_steps: int = wire(int, required=True, lo=STEPS.lo, hi=STEPS.hi)
    keep_results_s: int = wire(int, default=0, lo=0)


@dataclass(frozen=True, kw_only=True)
class Defaults(Record):
    model: str = wire(str, required=True, max_len=512)
    strength: float = ranged(float, STRENGTH)
    steps: int = ranged(int, STEPS)
    guidance: float = ranged(float, GUIDANCE)
    sampler: str = wire(str, default="default", max_len=64, pattern=FEATURE_CHARS)


@dataclass(frozen=True, kw_only=True)
class JobInput(Record):
    """One input of a job: its role (``vocabulary.ROLES``) and how many frames (tiles) of that role follow."""

    role: str = wire(str, required=True, choices=INPUT_ROLES)
    tiles: int = wire(int, default=1, lo=1, hi=MAX_TILES)


# ----------------------------------------------------------------------------- client -> server
@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int = wire(int, required=True, lo=0, hi=1_000_000)
    client: str = wire(str, required=True, max_len=64)
    client_version: str = wire(str, default="", max_len=64)
    token: str | None = wire(str, nullable=True, max_len=1024)
    features: tuple[str, ...] = names(MAX_FEATURES, required=True, python_default=tuple)


@dataclass(frozen=True, kw_only=True)
class Submit(Message):
    """A job; the frames of its ``inputs`` follow as binary frames, each carrying its role and tile number.

    ``inputs`` may be left empty in Python: ``ClientConnection.submit`` fills it in from the frames it is given.
    ``result_tile``: 0 = one result frame per image; else the longest tile side of the tiled result frames.
    """

    TYPE: ClassVar[str] = "submit"
    job: str = job_id()
    kind: str = wire(str, required=True, choices=tuple(KINDS))
    inputs: tuple[JobInput, ...] = wire(list, required=True, item=JobInput, max_len=len(INPUT_ROLES),
                                      python_default=tuple)
    model: str | None = wire(str, nullable=True, max_len=512)
    prompt: str = wire(str, default="", max_len=MAX_PROMPT)
    negative_prompt: str = wire(str, default="", max_len=MAX_PROMPT)
    strength: float = ranged(float, STRENGTH)
    steps: int = ranged(int, STEPS)
    guidance: float = ranged(float, GUIDANCE)
    seed: int | None = wire(int, nullable=True, lo=0, hi=MAX_SEED)
    batch: int = ranged(int, BATCH)
    sampler: str = wire(str, default="default", choices=tuple(SAMPLERS))
    preview: PreviewOptions = wire(PreviewOptions, default=PreviewOptions)
    inpaint: InpaintOptions = wire(InpaintOptions, default=InpaintOptions)
    result_format: str = wire(str, default="rgba8", choices=tuple(PIXEL_FORMATS))
    result_encoding: str = wire(str, default="raw", choices=IMAGE_ENCODINGS)
    result_tile: int = wire(int, default=0, lo=0, hi=MAX_TILE_SIDE)
    keep_result: bool = wire(bool, default=False, feature="resume")
    resolution: str = wire(str, default="auto", choices=RESOLUTIONS, feature="tiled")
    upscale: UpscaleOptions = wire(UpscaleOptions, default=UpscaleOptions, feature="kind:upscale")
    loras: tuple[LoraChoice, ...] = wire(list, default=tuple, item=LoraChoice, max_len=MAX_LORAS, feature="lora")

    def __post_init__(self) -> None:
        if self.kind != "upscale" and self.upscale != UpscaleOptions():
            raise ProtocolError(errors.BAD_VALUE, f"'upscale' options belong to upscale jobs, not {self.kind}",
                                "upscale", self.job)
        ids = [lora.id for lora in self.loras]
        for i, lora_id in enumerate(ids):
            if lora_id in ids[:i]:
                raise ProtocolError(errors.BAD_VALUE, f"'loras' names {lora_id!r} twice", f"loras[{i}].id", self.job)
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
    job: str = job_id()


@dataclass(frozen=True, kw_only=True)
class Resume(Message):
    """``key``: the ``resume_key`` the job's first ``queued`` carried (feature ``resume_key``)."""

    TYPE: ClassVar[str] = "resume"
    job: str = job_id()
    key: str | None = wire(str, nullable=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS, feature="resume_key")


# ----------------------------------------------------------------------------- server -> client
@dataclass(frozen=True, kw_only=True)
class Welcome(Message):
    TYPE: ClassVar[str] = "welcome"
    protocol: int = wire(int, required=True, lo=0, hi=1_000_000)
    server_version: str = wire(str, required=True, max_len=64)
    device: str = wire(str, required=True, max_len=256)
    features: tuple[str, ...] = names(MAX_FEATURES, required=True, python_default=tuple)
    models: tuple[ModelInfo, ...] = wire(list, default=tuple, item=ModelInfo, max_len=10_000)
    upscalers: tuple[UpscalerInfo, ...] = wire(list, default=tuple, item=UpscalerInfo, max_len=10_000,
                                             feature="kind:upscale")
    defaults: Defaults = wire(Defaults, required=True)
    limits: Limits = wire(Limits, required=True)
    loras: tuple[LoraInfo, ...] = wire(list, default=tuple, item=LoraInfo, max_len=10_000, feature="lora")


@dataclass(frozen=True, kw_only=True)
class Queued(Message):
    TYPE: ClassVar[str] = "queued"
    job: str = job_id()
    position: int = wire(int, required=True, lo=0)
    # the secret that proves a kept job is yours on resume: in the first queued of a keep_result job only
    resume_key: str | None = wire(str, nullable=True, max_len=MAX_JOB_ID, pattern=JOB_ID_CHARS, feature="resume_key")


@dataclass(frozen=True, kw_only=True)
class Started(Message):
    """The job left the queue. ``x, y, width, height``: the document region its previews and results cover."""

    TYPE: ClassVar[str] = "started"
    job: str = job_id()
    x: int = wire(int, default=0, lo=-(2**31), hi=2**31 - 1)
    y: int = wire(int, default=0, lo=-(2**31), hi=2**31 - 1)
    width: int = wire(int, default=0, lo=0, hi=2**31 - 1)
    height: int = wire(int, default=0, lo=0, hi=2**31 - 1)


@dataclass(frozen=True, kw_only=True)
class Progress(Message):
    """Step ``step`` of ``total``: the denoising steps that will really run (for img2img about
    ``steps x strength``), the same number in every progress of a job."""

    TYPE: ClassVar[str] = "progress"
    job: str = job_id()
    step: int = wire(int, required=True, lo=1)
    total: int = wire(int, required=True, lo=1)

    def __post_init__(self) -> None:
        if self.step > self.total:
            raise ProtocolError(errors.OUT_OF_RANGE, f"'step' {self.step} is past 'total' {self.total}", "step",
                                self.job)


@dataclass(frozen=True, kw_only=True)
class Result(Message):
    """Sent after the job's ``images`` result frames."""

    TYPE: ClassVar[str] = "result"
    job: str = job_id()
    images: int = wire(int, required=True, lo=0, hi=BATCH.hi)
    seeds: tuple[int, ...] = wire(list, default=tuple, item=int, lo=0, hi=MAX_SEED, max_len=int(BATCH.hi))
    timings: dict[str, float] = wire(dict, default=dict, item=float, lo=0.0, max_len=32)


@dataclass(frozen=True, kw_only=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    code: str = wire(str, required=True, max_len=64)
    message: str = wire(str, required=True, max_len=4000)
    job: str | None = wire(str, nullable=True, max_len=64)
    field: str | None = wire(str, nullable=True, max_len=256)

    @classmethod
    def from_exception(cls, exc: ProtocolError) -> Error:
        return cls(code=exc.code, message=exc.message[:4000], job=exc.job, field=exc.field)

    def to_exception(self) -> ProtocolError:
        return ProtocolError(self.code, self.message, self.field, self.job)


@dataclass(frozen=True, kw_only=True)
class Cancelled(Message):
    TYPE: ClassVar[str] = "cancelled"
    job: str = job_id()


# The decode tables, explicitly: every message class of each direction, the live_* ones included.
CLIENT_MESSAGES: dict[str, type[Message]] = {
    **{m.TYPE: m for m in (Hello, Submit, Cancel, Resume)}, **LIVE_CLIENT_MESSAGES,
}
SERVER_MESSAGES: dict[str, type[Message]] = {
    **{m.TYPE: m for m in (Welcome, Queued, Started, Progress, Result, Error, Cancelled)}, **LIVE_SERVER_MESSAGES,
}
