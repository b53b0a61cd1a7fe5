"""JSON control messages of live painting streams (feature ``live``; docs/protocol.md section 12).

A stream is started once with the parameters of its frames, then fed ``live_frame`` messages, each followed by
its ``live`` tiles; every frame gets exactly one answer: ``live_result`` (after its result frame), ``live_skipped``
(a newer frame replaced it) or ``live_error`` naming it. ``messages`` lists these in its decode tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import errors
from .errors import ProtocolError
from .message_base import Message, job_id, ranged, wire
from .vocabulary import (
    GUIDANCE,
    IMAGE_ENCODINGS,
    LIVE_HASH_BYTES,
    LIVE_TILE,
    MAX_LIVE_FRAME,
    MAX_PROMPT,
    MAX_SEED,
    MAX_TILES,
    PIXEL_FORMATS,
    SAMPLERS,
    STEPS,
    STRENGTH,
)

HEX = "0123456789abcdef"
_I32 = (-(2**31), 2**31 - 1)


def _frame(required: bool = True) -> object:
    return wire(int, required=required, nullable=not required, lo=0, hi=MAX_LIVE_FRAME)


def _hash(required: bool = True) -> object:
    return wire(str, required=required, nullable=not required, pattern=HEX, max_len=2 * LIVE_HASH_BYTES)


def check_hash(value: str | None, name: str, stream: str) -> None:
    if value is not None and len(value) != 2 * LIVE_HASH_BYTES:
        raise ProtocolError(errors.BAD_VALUE, f"'{name}' must be {2 * LIVE_HASH_BYTES} hex digits (got "
                            f"{len(value)})", name, stream)


# ----------------------------------------------------------------------------- client -> server
@dataclass(frozen=True, kw_only=True)
class LiveStart(Message):
    """Open a stream: every frame of it is an img2img of these values (strength and seed fixed while live)."""

    TYPE: ClassVar[str] = "live_start"
    stream: str = job_id()
    model: str | None = wire(str, nullable=True, max_len=512)
    prompt: str = wire(str, default="", max_len=MAX_PROMPT)
    negative_prompt: str = wire(str, default="", max_len=MAX_PROMPT)
    strength: float = ranged(float, STRENGTH)
    steps: int = ranged(int, STEPS)
    guidance: float = ranged(float, GUIDANCE)
    seed: int | None = wire(int, nullable=True, lo=0, hi=MAX_SEED)
    sampler: str = wire(str, default="default", choices=tuple(SAMPLERS))
    tile: int = ranged(int, LIVE_TILE)
    result_format: str = wire(str, default="rgba8", choices=tuple(PIXEL_FORMATS))
    result_encoding: str = wire(str, default="raw", choices=IMAGE_ENCODINGS)


@dataclass(frozen=True, kw_only=True)
class LiveFrameMessage(Message):
    """Frame ``frame`` of a stream covers ``width`` x ``height`` at ``x, y``; ``tiles`` live frames follow.

    ``base`` null: a full frame (every cell of the grid). Else a delta on frame ``base``, which must be the
    server's kept input (its hash ``base_hash``); the tiles are the changed cells. ``hash``: the frame after
    the tiles are applied (``live.frame_hash``)."""

    TYPE: ClassVar[str] = "live_frame"
    stream: str = job_id()
    frame: int = _frame()
    x: int = wire(int, default=0, lo=_I32[0], hi=_I32[1])
    y: int = wire(int, default=0, lo=_I32[0], hi=_I32[1])
    width: int = wire(int, required=True, lo=1, hi=_I32[1])
    height: int = wire(int, required=True, lo=1, hi=_I32[1])
    pixel_format: str = wire(str, required=True, choices=tuple(PIXEL_FORMATS))
    tiles: int = wire(int, required=True, lo=0, hi=MAX_TILES)
    base: int | None = _frame(required=False)
    base_hash: str | None = _hash(required=False)
    hash: str = _hash()

    def __post_init__(self) -> None:
        check_hash(self.hash, "hash", self.stream)
        check_hash(self.base_hash, "base_hash", self.stream)
        if (self.base is None) != (self.base_hash is None):
            raise ProtocolError(errors.BAD_VALUE, "'base' and 'base_hash' go together (both null: a full frame)",
                                "base", self.stream)
        if self.base is not None and self.base >= self.frame:
            raise ProtocolError(errors.BAD_VALUE, f"'base' {self.base} must be an earlier frame than {self.frame}",
                                "base", self.stream)


@dataclass(frozen=True, kw_only=True)
class LiveStop(Message):
    TYPE: ClassVar[str] = "live_stop"
    stream: str = job_id()


# ----------------------------------------------------------------------------- server -> client
@dataclass(frozen=True, kw_only=True)
class LiveStarted(Message):
    """The stream is open: ``seed`` is the one every frame uses, ``model`` the model that runs them."""

    TYPE: ClassVar[str] = "live_started"
    stream: str = job_id()
    seed: int = wire(int, required=True, lo=0, hi=MAX_SEED)
    model: str = wire(str, required=True, max_len=512)


@dataclass(frozen=True, kw_only=True)
class LiveResult(Message):
    """Sent after the frame's one ``result`` frame (job id = the stream, index = ``frame`` mod 2^16)."""

    TYPE: ClassVar[str] = "live_result"
    stream: str = job_id()
    frame: int = _frame()
    seed: int = wire(int, required=True, lo=0, hi=MAX_SEED)
    timings: dict[str, float] = wire(dict, default=dict, item=float, lo=0.0, max_len=32)


@dataclass(frozen=True, kw_only=True)
class LiveSkipped(Message):
    """Frame ``frame`` was not generated (or was abandoned) because frame ``by`` replaced it: latest wins."""

    TYPE: ClassVar[str] = "live_skipped"
    stream: str = job_id()
    frame: int = _frame()
    by: int = _frame()


@dataclass(frozen=True, kw_only=True)
class LiveError(Message):
    """A frame (``frame``) or the whole stream (``frame`` null) failed. ``ended``: the stream is closed on the
    server. ``stale_base``: the delta's base is not the server's kept input: send a full frame."""

    TYPE: ClassVar[str] = "live_error"
    stream: str = job_id()
    frame: int | None = _frame(required=False)
    code: str = wire(str, required=True, max_len=64)
    message: str = wire(str, required=True, max_len=4000)
    field: str | None = wire(str, nullable=True, max_len=256)
    ended: bool = wire(bool, default=False)

    @classmethod
    def of(cls, stream: str, exc: ProtocolError, frame: int | None = None, ended: bool = False) -> LiveError:
        return cls(stream=stream, frame=frame, code=exc.code, message=exc.message[:4000], field=exc.field,
                   ended=ended)


@dataclass(frozen=True, kw_only=True)
class LiveStopped(Message):
    """The stream's last message: nothing of it follows."""

    TYPE: ClassVar[str] = "live_stopped"
    stream: str = job_id()


LIVE_CLIENT_MESSAGES: dict[str, type[Message]] = {m.TYPE: m for m in (LiveStart, LiveFrameMessage, LiveStop)}
LIVE_SERVER_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (LiveStarted, LiveResult, LiveSkipped, LiveError, LiveStopped)
}
