"""Sans-I/O session state machines: bytes and text in, events out. No sockets, no threads.

``ClientConnection`` is what a plugin speaks; ``ServerConnection`` is what the server's transport wraps.
Both raise ``ProtocolError`` for anything wrong; a session goes on after any error that is not fatal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import errors
from .errors import FATAL_CODES, ProtocolError
from .frames import Frame, FrameLimits, decode_frame
from .geometry import Rect
from .messages import (
    CLIENT_MESSAGES,
    MAX_TILE_SIDE,
    MAX_TILES,
    MIN_TILE_SIDE,
    PROTOCOL_VERSION,
    SERVER_MESSAGES,
    Cancel,
    Cancelled,
    Error,
    Hello,
    Limits,
    Message,
    Result,
    Resume,
    Submit,
    Welcome,
    decode_message,
)
from .tiles import assemble, check_cover, frame_rect, split, tile_count


@dataclass(frozen=True)
class PreviewReceived:
    job: str
    frame: Frame


@dataclass(frozen=True)
class ResultReceived:
    job: str
    result: Result
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class JobRequest:
    """A submit whose frames have all arrived: ready to queue. ``images``/``masks`` are its tiles, in order."""

    submit: Submit
    images: tuple[Frame, ...]
    masks: tuple[Frame, ...] = ()

    @classmethod
    def single(cls, submit: Submit, image: Frame, mask: Frame | None = None) -> JobRequest:
        return cls(submit, (image,), () if mask is None else (mask,))

    @property
    def region(self) -> Rect:
        """The bounding box of the image tiles (validated by ``check_job_frames``)."""
        box = frame_rect(self.images[0])
        for tile in self.images[1:]:
            box = box.union(frame_rect(tile))
        return box

    def image(self) -> Frame:
        """The whole image as one frame: tiles are assembled (slow for big layers: call it off the event loop)."""
        return self.images[0] if len(self.images) == 1 else assemble(self.images)

    def mask(self) -> Frame | None:
        if not self.masks:
            return None
        return self.masks[0] if len(self.masks) == 1 else assemble(self.masks)


def check_job_frames(submit: Submit, image: Frame | Sequence[Frame], mask: Frame | Sequence[Frame] | None) -> Rect:
    """The frames that must follow a submit: ``submit.tiles`` image tiles exactly covering their bounding box,
    and for inpaint as many mask tiles with the same rectangles. Returns the image region."""
    job = submit.job
    images = (image,) if isinstance(image, Frame) else tuple(image)
    masks = () if mask is None else (mask,) if isinstance(mask, Frame) else tuple(mask)
    if len(images) != submit.tiles:
        raise ProtocolError(errors.MISSING_FRAME, f"submit announced {submit.tiles} image tiles but "
                            f"{len(images)} were given", "tiles", job)
    for role, tiles in (("image", images), ("mask", masks)):
        for i, tile in enumerate(tiles):
            check_tile(submit, tile, role, i)
    if submit.kind == "inpaint":
        if not masks:
            raise ProtocolError(errors.MISSING_FRAME, "an inpaint job needs a mask frame", "mask", job)
        if len(masks) != len(images):
            raise ProtocolError(errors.MISSING_FRAME, f"an inpaint job of {len(images)} image tiles needs as many "
                                f"mask tiles (got {len(masks)})", "mask", job)
    elif masks:
        raise ProtocolError(errors.UNEXPECTED_FRAME, "an img2img job takes no mask frame", "mask", job)
    region = frame_rect(images[0]) if len(images) == 1 else check_cover(images, "image", job)
    for i, (img, msk) in enumerate(zip(images[:len(masks)], masks, strict=True)):
        if frame_rect(msk) != frame_rect(img):
            what = "mask" if len(images) == 1 else f"mask tile {i}"
            target = "the image region" if len(images) == 1 else f"image tile {i}"
            raise ProtocolError(errors.SIZE_MISMATCH, f"{what} {msk.width}x{msk.height}@{msk.x},{msk.y} must "
                                f"cover {target} {img.width}x{img.height}@{img.x},{img.y}", "mask", job)
    if len(masks) > 1 and any(m.pixel_format != masks[0].pixel_format or m.encoding != masks[0].encoding
                              for m in masks):
        check_cover(masks, "mask", job)  # names the first mismatching tile
    return region


def check_tile(submit: Submit, frame: Frame, role: str, i: int) -> None:
    """Tile ``i`` of ``role`` must belong to the job and carry ``index`` = ``i``."""
    job = submit.job
    if frame.job != job or frame.role != role:
        raise ProtocolError(errors.UNEXPECTED_FRAME, f"expected the {role} frame of job {job!r}"
                            + (f" (tile {i})" if submit.tiles > 1 else ""), role, job)
    if frame.index != i:
        raise ProtocolError(errors.BAD_FRAME, f"{role} tile {i} of job {job!r} has index {frame.index}; tiles are "
                            f"numbered 0..{submit.tiles - 1} in the order they are sent", "index", job)


def check_limits(submit: Submit, limits: Limits, image: Frame | Rect | None = None) -> None:
    job = submit.job
    if submit.steps > limits.max_steps:
        raise ProtocolError(errors.OUT_OF_RANGE, f"steps must be at most {limits.max_steps}", "steps", job)
    if submit.batch > limits.max_batch:
        raise ProtocolError(errors.OUT_OF_RANGE, f"batch must be at most {limits.max_batch}", "batch", job)
    if image is not None and image.width * image.height > limits.max_pixels:
        raise ProtocolError(errors.TOO_LARGE, f"image of {image.width}x{image.height} exceeds the server's limit "
                            f"of {limits.max_pixels} pixels", "image", job)


def tile_job(submit: Submit, image: Frame | Sequence[Frame], mask: Frame | Sequence[Frame] | None,
             tile_side: int) -> tuple[Submit, tuple[Frame, ...], tuple[Frame, ...]]:
    """Split a single image (and mask) wider or taller than ``tile_side`` into tiles, set ``submit.tiles``, and
    ask for results tiled the same way (unless ``submit.result_tile`` is already set). 0 = never split."""
    images = (image,) if isinstance(image, Frame) else tuple(image)
    masks = () if mask is None else (mask,) if isinstance(mask, Frame) else tuple(mask)
    if tile_side <= 0 or len(images) != 1 or submit.tiles != 1 or len(masks) > 1:
        return submit, images, masks
    one = images[0]
    count = tile_count(one.width, one.height, tile_side)
    if count == 1 or count > MAX_TILES:
        return submit, images, masks
    check_job_frames(submit, images, masks)  # a bad single frame gets its ordinary error, not a tile error
    result_tile = submit.result_tile or min(max(tile_side, MIN_TILE_SIDE), MAX_TILE_SIDE)
    submit = dataclasses.replace(submit, tiles=count, result_tile=result_tile)
    return submit, tuple(split(one, tile_side)), tuple(t for m in masks for t in split(m, tile_side))


def group_results(job: str, frames: Sequence[Frame]) -> tuple[Frame, ...]:
    """One frame per result image: tiles sharing an ``index`` are assembled, in order of first arrival."""
    groups: dict[int, list[Frame]] = {}
    for frame in frames:
        groups.setdefault(frame.index, []).append(frame)
    return tuple(tiles[0] if len(tiles) == 1 else assemble(tiles) for tiles in groups.values())


class ClientConnection:
    def __init__(self, client: str, client_version: str = "", token: str | None = None,
                 frame_limits: FrameLimits | None = None) -> None:
        self.hello_message = Hello(protocol=PROTOCOL_VERSION, client=client, client_version=client_version,
                                   token=token)
        self.state = "new"  # new -> hello_sent -> ready -> closed
        self.welcome: Welcome | None = None
        self.frame_limits = frame_limits or FrameLimits(max_pixels=2**40, max_frame_bytes=2**40)
        self.jobs: set[str] = set()
        self._results: dict[str, list[Frame]] = {}

    def hello(self) -> str:
        if self.state != "new":
            raise ProtocolError(errors.ALREADY_HELLO, "hello was already sent")
        self.state = "hello_sent"
        return self.hello_message.encode()

    def _require_ready(self) -> Welcome:
        if self.state != "ready" or self.welcome is None:
            raise ProtocolError(errors.NOT_READY, f"the session is not ready (state {self.state})")
        return self.welcome

    def submit(self, submit: Submit, image: Frame | Sequence[Frame], mask: Frame | Sequence[Frame] | None = None,
               tile_side: int = 0) -> list[str | bytes]:
        """Validate a job locally and return what to send: the submit, then its frames.

        ``image``/``mask`` are one frame each or lists of tiles (then ``submit.tiles`` must match). With
        ``tile_side`` > 0 a single frame larger than ``tile_side`` x ``tile_side`` is split here (see
        ``tile_job``).
        """
        welcome = self._require_ready()
        if submit.job in self.jobs:
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {submit.job!r} is still in flight", "job", submit.job)
        submit, images, masks = tile_job(submit, image, mask, tile_side)
        region = check_job_frames(submit, images, masks)
        check_limits(submit, welcome.limits, region)
        out: list[str | bytes] = [submit.encode()]
        for frame in (*images, *masks):
            data = frame.encode()
            if len(data) > welcome.limits.max_frame_bytes:
                raise ProtocolError(errors.TOO_LARGE, f"a frame of {len(data)} bytes exceeds the server's limit of "
                                    f"{welcome.limits.max_frame_bytes} bytes; use zlib, tiles or a smaller region",
                                    frame.role, submit.job)
            out.append(data)
        self.jobs.add(submit.job)
        self._results[submit.job] = []
        return out

    def cancel(self, job: str) -> str:
        self._require_ready()
        return Cancel(job=job).encode()

    def resume(self, job: str) -> str:
        self._require_ready()
        self.jobs.add(job)
        self._results[job] = []
        return Resume(job=job).encode()

    def _finish(self, job: str) -> None:
        self.jobs.discard(job)
        self._results.pop(job, None)

    def receive_text(self, text: str | bytes) -> list[object]:
        msg = decode_message(text, SERVER_MESSAGES)
        if isinstance(msg, Welcome):
            if self.state != "hello_sent":
                raise ProtocolError(errors.UNEXPECTED_FRAME, "welcome arrived outside the handshake")
            if msg.protocol != PROTOCOL_VERSION:
                self.state = "closed"
                raise ProtocolError(errors.INCOMPATIBLE_VERSION, f"server speaks protocol {msg.protocol}, this "
                                    f"client speaks {PROTOCOL_VERSION}", "protocol")
            self.state, self.welcome = "ready", msg
            return [msg]
        if isinstance(msg, Error):
            if msg.code in FATAL_CODES or self.state == "hello_sent":
                self.state = "closed"
            if msg.job:
                self._finish(msg.job)
            return [msg]
        job = getattr(msg, "job", None)
        if job not in self.jobs:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{msg.TYPE} for unknown job {job!r}", "job", job)
        if isinstance(msg, Result):
            received = self._results.get(job, ())
            self._finish(job)
            frames = group_results(job, received)
            if len(frames) != msg.images:
                raise ProtocolError(errors.MISSING_FRAME, f"result of job {job!r} announced {msg.images} images "
                                    f"but {len(frames)} arrived ({len(received)} frames)", "images", job)
            return [ResultReceived(job, msg, frames)]
        if isinstance(msg, Cancelled):
            self._finish(job)
        return [msg]

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        frame = decode_frame(data, self.frame_limits)
        if frame.job not in self.jobs:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{frame.role} frame for unknown job {frame.job!r}", "job",
                                frame.job)
        if frame.role == "preview":
            return [PreviewReceived(frame.job, frame)]
        if frame.role == "result":
            self._results.setdefault(frame.job, []).append(frame)
            return []
        raise ProtocolError(errors.UNEXPECTED_FRAME, f"servers do not send {frame.role} frames", "role", frame.job)


@dataclass
class _Pending:
    submit: Submit
    frames: list[Frame] = field(default_factory=list)


class ServerConnection:
    """One client's session on the server: handshake, then submits with their frames, cancels, resumes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.frame_limits = FrameLimits(max_pixels=limits.max_pixels, max_frame_bytes=limits.max_frame_bytes)
        self.state = "new"  # new -> ready -> closed
        self.hello: Hello | None = None
        self.active: set[str] = set()  # jobs queued, running or finishing
        self._pending: dict[str, _Pending] = {}

    def receive_text(self, text: str | bytes) -> list[object]:
        try:
            return self._receive_text(text)
        except ProtocolError as exc:
            self._unbind(exc)
            raise

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        try:
            return self._receive_bytes(data)
        except ProtocolError as exc:
            self._unbind(exc)
            raise

    def _unbind(self, exc: ProtocolError) -> None:
        """An error must not name a job that goes on (a duplicate id, a stray frame): clients end jobs on it."""
        if exc.job in self.active or exc.job in self._pending:
            exc.job = None

    def _receive_text(self, text: str | bytes) -> list[object]:
        if self.state == "closed":
            raise ProtocolError(errors.NOT_READY, "the session is closed")
        msg = decode_message(text, CLIENT_MESSAGES)
        if isinstance(msg, Hello):
            if self.state != "new":
                raise ProtocolError(errors.ALREADY_HELLO, "hello was already received")
            if msg.protocol != PROTOCOL_VERSION:
                self.state = "closed"
                raise ProtocolError(errors.INCOMPATIBLE_VERSION, f"this server speaks protocol {PROTOCOL_VERSION}, "
                                    f"the client asked for {msg.protocol}", "protocol")
            self.hello = msg
            return [msg]
        if self.state != "ready":
            raise ProtocolError(errors.NOT_READY, f"send hello before {msg.TYPE}", "type")
        if isinstance(msg, Submit):
            return self._submit(msg)
        if isinstance(msg, Cancel) and msg.job in self._pending:
            del self._pending[msg.job]
            return [Cancelled(job=msg.job)]
        return [msg]

    def _submit(self, msg: Submit) -> list[object]:
        job = msg.job
        if job in self.active or job in self._pending:
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {job!r} is already in flight", "job", job)
        if len(self.active) + len(self._pending) >= self.limits.max_queued_jobs:
            raise ProtocolError(errors.QUEUE_FULL, f"at most {self.limits.max_queued_jobs} jobs may be in flight "
                                "per client", "job", job)
        check_limits(msg, self.limits)
        self._pending[job] = _Pending(msg)
        return []

    def _receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        if self.state != "ready":
            raise ProtocolError(errors.NOT_READY, "send hello before any frame")
        try:
            frame = decode_frame(data, self.frame_limits)
        except ProtocolError as exc:
            if exc.job:
                self._pending.pop(exc.job, None)
            raise
        pending = self._pending.get(frame.job)
        if pending is None:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"{frame.role} frame for job {frame.job!r}, which is not "
                                "waiting for frames", "job", frame.job)
        submit = pending.submit
        tiles = submit.tiles
        position = len(pending.frames)
        role = "image" if position < tiles else "mask"
        try:
            check_tile(submit, frame, role, position % tiles)
        except ProtocolError:
            del self._pending[frame.job]
            raise
        pending.frames.append(frame)
        need = tiles * (2 if submit.kind == "inpaint" else 1)
        if len(pending.frames) < need:
            return []
        del self._pending[frame.job]
        images, masks = tuple(pending.frames[:tiles]), tuple(pending.frames[tiles:])
        region = check_job_frames(submit, images, masks)
        check_limits(submit, self.limits, region)
        self.active.add(frame.job)
        return [JobRequest(submit, images, masks)]

    def accept(self, welcome: Welcome) -> str:
        self.state = "ready"
        return welcome.encode()

    def reject(self, exc: ProtocolError) -> str:
        self.state = "closed"
        return Error.from_exception(exc).encode()

    def job_finished(self, job: str) -> None:
        self.active.discard(job)

    def send(self, message: Message) -> str:
        if isinstance(message, (Result, Cancelled)) or (isinstance(message, Error) and message.job):
            self.job_finished(message.job or "")
        return message.encode()
