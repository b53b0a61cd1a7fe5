"""The server side of a session, sans-I/O: what the server's transport wraps.

The transport calls the transitions (``receive_text``/``receive_bytes``, ``accept``, ``reject``, ``send``,
``send_frame``, ``close``) and never touches the state. ``send`` keeps the one rule of jobs: every job gets
exactly one terminal event (``result``, ``error`` naming it, or ``cancelled``) and nothing after it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors
from .connection_base import State, version_error
from .errors import FATAL_CODES, ProtocolError
from .frames import HEADER_SIZE, Frame, FrameLimits, decode_frame
from .jobs import JobRequest, check_frames, check_limits, check_submit
from .live_messages import LIVE_SERVER_MESSAGES, LiveFrameMessage, LiveStart, LiveStop
from .live_server import ServerStreams
from .messages import (
    CLIENT_MESSAGES,
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
    peek_protocol,
)
from .vocabulary import ENCODINGS, MAX_HELLO_BYTES, PROTOCOL_VERSION

TERMINAL = (Result, Cancelled)


@dataclass
class _Pending:
    """A submit waiting for its frames, which may arrive in any order: role -> tile number -> frame."""

    submit: Submit
    frames: dict[str, dict[int, Frame]] = field(default_factory=dict)
    area: dict[str, int] = field(default_factory=dict)  # role -> pixels of its tiles so far
    since: float = field(default_factory=time.monotonic)

    def complete(self) -> bool:
        return all(len(self.frames.get(i.role, ())) == i.tiles for i in self.submit.inputs)


class BufferPool:
    """Bytes of input frames held for all connections of a server (shared; ``used`` changes on one event loop).
    ``outside`` says what is held beyond the connections (kept jobs whose connection closed); read from any
    thread."""

    def __init__(self, limit: int, outside: Callable[[], int] | None = None) -> None:
        self.limit, self.used = limit, 0
        self.outside = outside or (lambda: 0)

    def held(self) -> int:
        return self.used + self.outside()


class ServerConnection:
    """One client's session on the server: handshake, then submits with their frames, cancels, resumes.

    Input frames are counted from arrival until the job's terminal event: at most ``max_bytes`` per connection
    and ``pool.limit`` for the whole server (``too_large`` naming the job once either would be passed)."""

    def __init__(self, limits: Limits, max_bytes: int | None = None, pool: BufferPool | None = None,
                 elsewhere: Callable[[], int] | None = None) -> None:
        self.limits = limits
        self.max_bytes = max_bytes
        self.pool = pool
        self.elsewhere = elsewhere or (lambda: 0)  # what this client's kept jobs of closed connections hold
        self._bytes: dict[str, int] = {}  # job -> bytes of its input frames held
        self._keep: set[str] = set()  # active jobs submitted with keep_result: they outlive the connection
        self.frame_limits = FrameLimits(max_pixels=limits.max_pixels, max_frame_bytes=limits.max_frame_bytes)
        self._state = State.NEW
        self.hello: Hello | None = None
        self.welcome: Welcome | None = None
        self._active: set[str] = set()  # jobs queued, running or finishing: their terminal event is still due
        self._pending: dict[str, _Pending] = {}
        self._dropped: dict[str, None] = {}  # recently refused or cancelled jobs whose frames are ignored
        self.streams = ServerStreams()  # live painting streams (feature ``live``)

    @property
    def state(self) -> State:
        return self._state

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    @property
    def features(self) -> frozenset[str]:
        if self.hello is None or self.welcome is None:
            return frozenset()
        return frozenset(self.hello.features) & frozenset(self.welcome.features)

    def live(self, job: str) -> bool:
        """The job still owes the client its terminal event."""
        return job in self._active or job in self._pending

    # ------------------------------------------------------------------ transitions called by the transport
    def accept(self, welcome: Welcome) -> str:
        """Answer the hello: the session is ready. ``welcome.features`` says what this server implements."""
        if self._state is not State.HELLO_RECEIVED:
            raise ProtocolError(errors.NOT_READY, f"accept needs a received hello (state {self._state.value})")
        if welcome.protocol != PROTOCOL_VERSION:
            raise ValueError(f"welcome.protocol must be {PROTOCOL_VERSION}")  # a server bug, not bad input
        if welcome.loras and "lora" not in self.hello.features:  # a field the client did not opt into
            welcome = dataclasses.replace(welcome, loras=())
        self._state, self.welcome = State.READY, welcome
        return welcome.encode()

    def reject(self, exc: ProtocolError) -> str:
        """End the session with ``exc`` (bad token, forbidden origin, ...): the error to send before closing."""
        self._state = State.CLOSED
        return Error.from_exception(exc).encode()

    def close(self) -> frozenset[str]:
        """The socket is gone: returns the jobs that were still live."""
        self._state = State.CLOSED
        live = frozenset(self._active) | frozenset(self._pending)
        for job in list(self._bytes):
            self._release(job)
        self._active.clear()
        self._pending.clear()
        self._keep.clear()
        return live | self.streams.close()

    def detach_kept(self) -> dict[str, int]:
        """Before ``close``: the active ``keep_result`` jobs, which go on without this connection, and the bytes
        of input frames each holds. They are no longer counted here (nor in the pool): the caller counts them."""
        out = {job: self._bytes.get(job, 0) for job in self._keep & self._active}
        for job in out:
            self._release(job)
            self._active.discard(job)
        return out

    @property
    def buffered(self) -> int:
        """Bytes of input frames this connection holds (waiting, queued or running jobs)."""
        return sum(self._bytes.values())

    @property
    def counted(self) -> int:
        """What counts against ``max_bytes``: ``buffered`` plus what this client's kept jobs still hold."""
        return self.buffered + self.elsewhere()

    def expire(self, timeout: float, now: float | None = None) -> list[ProtocolError]:
        """End the jobs that have waited more than ``timeout`` s for their frames: the errors to send."""
        now = time.monotonic() if now is None else now
        out = []
        for job, pending in list(self._pending.items()):
            if now - pending.since > timeout:
                missing = [i.role for i in pending.submit.inputs if len(pending.frames.get(i.role, ())) < i.tiles]
                exc = ProtocolError(errors.MISSING_FRAME, f"job {job!r}: its {', '.join(missing)} frames did not all "
                                    f"arrive within {timeout:g} s", "job", job)
                self._unbind(exc)
                out.append(exc)
        return out

    def _release(self, job: str) -> None:
        size = self._bytes.pop(job, 0)
        if self.pool is not None:
            self.pool.used -= size

    def _hold(self, frame: Frame, nbytes: int) -> None:
        """Count a frame's bytes against this connection and the server, or refuse it (``too_large``)."""
        kept = self.elsewhere()
        mine = self.buffered + kept + nbytes
        if self.max_bytes is not None and mine > self.max_bytes:
            also = f", {kept} of them held by your kept jobs" if kept else ""
            raise ProtocolError(errors.TOO_LARGE, f"this connection would hold {mine} bytes of input frames (limit "
                                f"{self.max_bytes}{also}); wait for your jobs to finish", "job", frame.job)
        if self.pool is not None:
            if self.pool.held() + nbytes > self.pool.limit:
                raise ProtocolError(errors.TOO_LARGE, "the server holds too many input frames right now (limit "
                                    f"{self.pool.limit} bytes); try again when jobs have finished", "job", frame.job)
            self.pool.used += nbytes
        self._bytes[frame.job] = self._bytes.get(frame.job, 0) + nbytes

    def send(self, message: Message) -> str | None:
        """Encode a message for this client, or None when it must not be sent: anything about a job after its
        terminal event. An error naming a job that is not live is sent without the job (it ends nothing)."""
        if isinstance(message, Welcome):
            raise ValueError("send the welcome with accept()")
        if message.TYPE in LIVE_SERVER_MESSAGES:
            return self.streams.send(message)
        if isinstance(message, Error):
            if message.code in FATAL_CODES:
                self._state = State.CLOSED
            if message.job is not None:
                if self.live(message.job):
                    self._end(message.job)
                else:
                    message = dataclasses.replace(message, job=None)
            return message.encode()
        job = getattr(message, "job", None)
        if job is None or not self.live(job):
            return None
        if isinstance(message, TERMINAL):
            self._end(job)
        return message.encode()

    def send_frame(self, data: bytes) -> bytes | None:
        """An encoded preview/result frame, or None when its job already ended (a late preview)."""
        length = data[7] if len(data) > 7 else 0
        job = bytes(data[HEADER_SIZE:HEADER_SIZE + length]).decode("ascii", "replace")
        return data if job in self._active or job in self.streams else None

    def _end(self, job: str) -> None:
        self._active.discard(job)
        self._keep.discard(job)
        self._pending.pop(job, None)
        self._release(job)

    # ------------------------------------------------------------------ receiving
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
        """An error that names a job waiting for frames (or a submit just refused) ends it: its frames still on
        the way are dropped quietly. One naming a job that goes on (a duplicate id, a malformed cancel) or no
        live job must not name it: the client would end that job."""
        if exc.job in self._pending and exc.code != errors.DUPLICATE_JOB:
            del self._pending[exc.job]
            self._release(exc.job)  # its frames are dropped now, not when its error is sent
            self._active.add(exc.job)  # its terminal error is now due: send() ends it
            self._dropped[exc.job] = None
            while len(self._dropped) > 256:
                del self._dropped[next(iter(self._dropped))]
        elif exc.job is not None:
            if exc.job not in exc.message:
                exc.message = f"{exc.message} (job {exc.job!r})"
            exc.job = None

    def _receive_text(self, text: str | bytes) -> list[object]:
        if self._state is State.CLOSED:
            raise ProtocolError(errors.NOT_READY, "the session is closed")
        if self._state is State.NEW:
            size = _wire_size(text, MAX_HELLO_BYTES)
            if size > MAX_HELLO_BYTES:  # refused unread: nothing is parsed before the size is known to be small
                raise ProtocolError(errors.TOO_LARGE, f"a message before the welcome is at most {MAX_HELLO_BYTES} "
                                    f"bytes (a hello's size); this one has at least {size}")
            version = peek_protocol(text, "hello")
            if version is not None and version != PROTOCOL_VERSION:
                self._state = State.CLOSED
                raise version_error(version, server_side=True)
        try:
            msg = decode_message(text, CLIENT_MESSAGES)
        except ProtocolError as exc:
            if self._state is State.NEW and _type_of(text) != "hello":
                raise ProtocolError(errors.NOT_READY, f"send hello first (this message was not one: {exc.message})",
                                    "type") from None
            if exc.job and self._state is State.READY and not self.live(exc.job) and _is_submit(text):
                self._pending[exc.job] = _Pending(Submit(job=exc.job, kind="img2img"))  # refused: name the job
            raise
        if isinstance(msg, Hello):
            if self._state is not State.NEW:
                raise ProtocolError(errors.ALREADY_HELLO, "hello was already received")
            self._state, self.hello = State.HELLO_RECEIVED, msg
            return [msg]
        if self._state is not State.READY:
            raise ProtocolError(errors.NOT_READY, f"send hello before {msg.TYPE}", "type")
        if isinstance(msg, Submit):
            return self._submit(msg)
        if isinstance(msg, (LiveStart, LiveFrameMessage, LiveStop)):
            if "live" not in self.features:
                raise ProtocolError(errors.UNSUPPORTED, f"{msg.TYPE} needs the 'live' feature in both hello and "
                                    "welcome", "type")
            if isinstance(msg, LiveStart):
                return self.streams.start(msg, self.live(msg.stream))
            return self.streams.frame(msg) if isinstance(msg, LiveFrameMessage) else self.streams.stop(msg)
        if isinstance(msg, Cancel):
            if msg.job in self._pending:
                del self._pending[msg.job]
                self._release(msg.job)
                self._active.add(msg.job)  # until send(Cancelled) ends it
                self._dropped[msg.job] = None
                return [Cancelled(job=msg.job)]
            return [msg] if msg.job in self._active else []  # a cancel that crossed the job's end is moot
        if isinstance(msg, Resume):
            if "resume" not in self.features:
                raise ProtocolError(errors.UNSUPPORTED, _resume_missing(self.welcome), "job")
            if self.live(msg.job):
                raise ProtocolError(errors.DUPLICATE_JOB, f"job {msg.job!r} is already in flight", "job", msg.job)
            self._active.add(msg.job)  # the transport answers unknown_job (naming it) if it has no such job
        return [msg]

    def _submit(self, msg: Submit) -> list[object]:
        job = msg.job
        if self.live(job):
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {job!r} is already in flight", "job", job)
        full = len(self._active) + len(self._pending) >= self.limits.max_queued_jobs
        self._pending[job] = _Pending(msg)  # before the checks: their error ends it like any frame error
        self._dropped.pop(job, None)
        if full:
            raise ProtocolError(errors.QUEUE_FULL, f"at most {self.limits.max_queued_jobs} jobs may be in flight "
                                "per client", "job", job)
        assert self.hello is not None and self.welcome is not None
        check_submit(msg, self.limits, self.hello.features, self.welcome.features)
        return self._finish_if_complete(job)

    def _receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        if self._state is not State.READY:
            raise ProtocolError(errors.NOT_READY, "send hello before any frame")
        frame = decode_frame(data, self.frame_limits)
        if frame.role == "live":
            if "live" not in self.features:
                raise ProtocolError(errors.UNSUPPORTED, "live tiles need the 'live' feature", "role")
            return self.streams.tile(frame)
        pending = self._pending.get(frame.job)
        if pending is None and frame.job in self._dropped:
            return []  # the rest of a job that was refused or cancelled while its frames were on the way
        if pending is None:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"{frame.role} frame for job {frame.job!r}, which is not "
                                "waiting for frames", "job", frame.job)
        submit, job = pending.submit, frame.job
        spec = submit.input(frame.role)
        if spec is None:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"job {job!r} announced no {frame.role} input "
                                f"(inputs: {', '.join(i.role for i in submit.inputs)})", "role", job)
        if frame.index >= spec.tiles:
            raise ProtocolError(errors.BAD_FRAME, f"{frame.role} tile {frame.index} of job {job!r}: the submit "
                                f"announced {spec.tiles} (numbered 0..{spec.tiles - 1})", "index", job)
        tiles = pending.frames.setdefault(frame.role, {})
        if frame.index in tiles:
            raise ProtocolError(errors.BAD_FRAME, f"{frame.role} tile {frame.index} of job {job!r} arrived twice",
                                "index", job)
        area = pending.area.get(frame.role, 0) + frame.width * frame.height  # tiles never overlap
        if area > self.limits.max_pixels:
            raise ProtocolError(errors.TOO_LARGE, f"the {frame.role} tiles of job {job!r} so far cover {area} pixels, "
                                f"more than the server's limit of {self.limits.max_pixels}", frame.role, job)
        self._hold(frame, len(data))
        pending.area[frame.role] = area
        feature = ENCODINGS[frame.encoding].feature
        if feature and feature not in self.features:
            raise ProtocolError(errors.UNSUPPORTED, f"{frame.encoding} frames need the {feature!r} feature",
                                "encoding", job)
        tiles[frame.index] = frame
        return self._finish_if_complete(job)

    def _finish_if_complete(self, job: str) -> list[object]:
        pending = self._pending[job]
        if not pending.complete():
            return []
        tiles = {i.role: tuple(pending.frames[i.role][n] for n in range(i.tiles)) for i in pending.submit.inputs}
        check_limits(pending.submit, self.limits, check_frames(pending.submit, tiles))
        del self._pending[job]
        self._active.add(job)
        if pending.submit.keep_result:
            self._keep.add(job)
        return [JobRequest(pending.submit, tiles)]


def _wire_size(text: str | bytes, limit: int) -> int:
    """Bytes of ``text`` on the wire; a str longer than ``limit`` characters is not encoded (it is too large)."""
    if isinstance(text, str) and len(text) <= limit:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text)


def _resume_missing(welcome: Welcome | None) -> str:
    """Who lacks the ``resume`` feature, as ``check_features`` says it for ``keep_result``."""
    if welcome is not None and "resume" in welcome.features:
        return "the client did not advertise the 'resume' feature ('resume' is missing from hello.features)"
    return "this server does not offer the 'resume' feature"


def _type_of(text: str | bytes) -> object:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return None
    return data.get("type") if isinstance(data, dict) else None


def _is_submit(text: str | bytes) -> bool:
    return _type_of(text) == "submit"
