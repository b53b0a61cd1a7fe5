"""Sans-I/O session state machines: bytes and text in, events out. No sockets, no threads.

``ClientConnection`` is what a plugin speaks; ``ServerConnection`` is what the server's transport wraps.
Both raise ``ProtocolError`` for anything wrong; a session goes on after any error that is not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .errors import FATAL_CODES, ProtocolError
from .frames import Frame, FrameLimits, decode_frame
from .messages import (
    CLIENT_MESSAGES,
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
    """A submit whose frames have all arrived: ready to queue."""

    submit: Submit
    image: Frame
    mask: Frame | None = None


def check_job_frames(submit: Submit, image: Frame, mask: Frame | None) -> None:
    """The frames that must follow a submit: one image, and for inpaint a mask of the same region."""
    job = submit.job
    if image.job != job or image.role != "image":
        raise ProtocolError(errors.UNEXPECTED_FRAME, f"expected the image frame of job {job!r}", "image", job)
    if submit.kind == "inpaint":
        if mask is None:
            raise ProtocolError(errors.MISSING_FRAME, "an inpaint job needs a mask frame", "mask", job)
    elif mask is not None:
        raise ProtocolError(errors.UNEXPECTED_FRAME, "an img2img job takes no mask frame", "mask", job)
    if mask is not None:
        if mask.job != job or mask.role != "mask":
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"expected the mask frame of job {job!r}", "mask", job)
        if (mask.width, mask.height, mask.x, mask.y) != (image.width, image.height, image.x, image.y):
            raise ProtocolError(errors.SIZE_MISMATCH, f"mask {mask.width}x{mask.height}@{mask.x},{mask.y} must "
                                f"cover the image region {image.width}x{image.height}@{image.x},{image.y}",
                                "mask", job)


def check_limits(submit: Submit, limits: Limits, image: Frame | None = None) -> None:
    job = submit.job
    if submit.steps > limits.max_steps:
        raise ProtocolError(errors.OUT_OF_RANGE, f"steps must be at most {limits.max_steps}", "steps", job)
    if submit.batch > limits.max_batch:
        raise ProtocolError(errors.OUT_OF_RANGE, f"batch must be at most {limits.max_batch}", "batch", job)
    if image is not None and image.width * image.height > limits.max_pixels:
        raise ProtocolError(errors.TOO_LARGE, f"image of {image.width}x{image.height} exceeds the server's limit "
                            f"of {limits.max_pixels} pixels", "image", job)


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

    def submit(self, submit: Submit, image: Frame, mask: Frame | None = None) -> list[str | bytes]:
        """Validate a job locally and return what to send: the submit, then its frames."""
        welcome = self._require_ready()
        if submit.job in self.jobs:
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {submit.job!r} is still in flight", "job", submit.job)
        check_job_frames(submit, image, mask)
        check_limits(submit, welcome.limits, image)
        out: list[str | bytes] = [submit.encode(), image.encode()]
        if mask is not None:
            out.append(mask.encode())
        for data in out[1:]:
            if len(data) > welcome.limits.max_frame_bytes:
                raise ProtocolError(errors.TOO_LARGE, f"a frame of {len(data)} bytes exceeds the server's limit of "
                                    f"{welcome.limits.max_frame_bytes} bytes; use zlib or a smaller region",
                                    "image", submit.job)
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
            frames = tuple(self._results.get(job, ()))
            self._finish(job)
            if len(frames) != msg.images:
                raise ProtocolError(errors.MISSING_FRAME, f"result of job {job!r} announced {msg.images} images "
                                    f"but {len(frames)} frames arrived", "images", job)
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
        pending.frames.append(frame)
        need = 2 if pending.submit.kind == "inpaint" else 1
        if len(pending.frames) < need and frame.role == "image":
            return []
        del self._pending[frame.job]
        image, mask = pending.frames[0], (pending.frames[1] if len(pending.frames) == 2 else None)
        check_job_frames(pending.submit, image, mask)
        check_limits(pending.submit, self.limits, image)
        self.active.add(frame.job)
        return [JobRequest(pending.submit, image, mask)]

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
