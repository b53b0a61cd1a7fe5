"""Sans-I/O session state machines: bytes and text in, events out. No sockets, no threads.

``ClientConnection`` is what a plugin speaks; ``ServerConnection`` (``server_connection``) is what the server's
transport wraps. Both raise ``ProtocolError`` for anything wrong; a session goes on after any error that is not
fatal. State changes only here, through the transitions each class exposes: ``state`` is read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .connection_base import State, version_error
from .errors import FATAL_CODES, ProtocolError
from .frames import Frame, FrameLimits, decode_frame
from .jobs import (
    Inputs,
    JobRequest,
    Tiles,
    as_tiles,
    check_frames,
    check_limits,
    check_submit,
    group_results,
    tile_inputs,
    with_inputs,
)
from .live import ClientStreams
from .live_messages import LIVE_SERVER_MESSAGES, LiveFrameMessage, LiveStart
from .messages import (
    SERVER_MESSAGES,
    Cancel,
    Cancelled,
    Error,
    Hello,
    Progress,
    Queued,
    Result,
    Resume,
    Submit,
    Welcome,
    decode_message,
    peek_protocol,
)
from .server_connection import ServerConnection  # re-exported: one import for both sides
from .vocabulary import PROTOCOL_VERSION, SERVER_ROLES
from .vocabulary import features as default_features

__all__ = ["ClientConnection", "Connected", "JobRequest", "PreparedJob", "PreviewReceived", "ResultReceived",
           "ServerConnection", "State", "version_error"]


@dataclass(frozen=True)
class Connected:
    """The handshake is done: the server's welcome (what it offers, its limits)."""

    welcome: Welcome


@dataclass(frozen=True)
class PreviewReceived:
    job: str
    frame: Frame


@dataclass(frozen=True)
class ResultReceived:
    job: str
    result: Result
    frames: tuple[Frame, ...]


@dataclass(frozen=True, eq=False)
class PreparedJob:
    """A submit checked and reserved by ``ClientConnection.begin_submit``; ``encode_submit`` sends it."""

    submit: Submit
    inputs: Tiles

    @property
    def job(self) -> str:
        return self.submit.job


@dataclass
class _Job:
    sent: bool = False
    total: int = 0  # progress.total once known
    results: list[Frame] = field(default_factory=list)


class ClientConnection:
    def __init__(self, client: str, client_version: str = "", token: str | None = None,
                 frame_limits: FrameLimits | None = None, features: tuple[str, ...] | None = None,
                 resume_keys: dict[str, str] | None = None) -> None:
        self.hello_message = Hello(protocol=PROTOCOL_VERSION, client=client, client_version=client_version,
                                   token=token, features=default_features() if features is None else tuple(features))
        self._state = State.NEW
        self.welcome: Welcome | None = None
        self.frame_limits = frame_limits or FrameLimits(max_pixels=2**40, max_frame_bytes=2**40)
        self._jobs: dict[str, _Job] = {}
        # job -> the server's resume_key of a kept job; survives close. Pass the dict of the previous connection
        # (``Client.resume_keys``) to resume its jobs on this one.
        self.resume_keys: dict[str, str] = {} if resume_keys is None else resume_keys
        self.live = ClientStreams()  # live painting streams (feature ``live``)

    # ------------------------------------------------------------------ state (read-only outside)
    @property
    def state(self) -> State:
        return self._state

    @property
    def jobs(self) -> frozenset[str]:
        """Jobs in flight: reserved, sent or resumed, not yet ended by their one terminal event."""
        return frozenset(self._jobs)

    @property
    def features(self) -> frozenset[str]:
        """What both peers advertised (empty before the welcome)."""
        if self.welcome is None:
            return frozenset()
        return frozenset(self.hello_message.features) & frozenset(self.welcome.features)

    def _require_ready(self) -> Welcome:
        if self._state is not State.READY or self.welcome is None:
            raise ProtocolError(errors.NOT_READY, f"the session is not ready (state {self._state.value})")
        return self.welcome

    # ------------------------------------------------------------------ transitions
    def hello(self) -> str:
        if self._state is not State.NEW:
            raise ProtocolError(errors.ALREADY_HELLO, "hello was already sent")
        self._state = State.HELLO_SENT
        return self.hello_message.encode()

    def begin_submit(self, submit: Submit, inputs: Inputs) -> PreparedJob:
        """Check a job against the kind's roles, the common features and the server's limits, and reserve its
        id. Cheap (no pixel copies): call it on the caller's thread, ``encode_submit`` on the sending one."""
        welcome = self._require_ready()
        tiles = as_tiles(inputs)
        submit = with_inputs(submit, tiles)
        if submit.job in self._jobs:
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {submit.job!r} is still in flight", "job", submit.job)
        check_submit(submit, welcome.limits, self.hello_message.features, welcome.features)
        check_limits(submit, welcome.limits, check_frames(submit, tiles))
        self._jobs[submit.job] = _Job()
        return PreparedJob(submit, tiles)

    def encode_submit(self, prepared: PreparedJob, tile_side: int = 0) -> list[str | bytes]:
        """The submit then its frames, tiled when an image is larger than ``tile_side`` (0 = never). A job that
        ended meanwhile (``close``) gives ``[]``; an error ends the job and names it."""
        job = self._jobs.get(prepared.job)
        if job is None or job.sent:
            return []
        welcome = self._require_ready()
        try:
            submit, tiles = tile_inputs(prepared.submit, prepared.inputs, tile_side)
            check_frames(submit, tiles)
            out: list[str | bytes] = [submit.encode()]
            for role_tiles in tiles.values():
                for frame in role_tiles:
                    data = frame.encode()
                    if len(data) > welcome.limits.max_frame_bytes:
                        raise ProtocolError(errors.TOO_LARGE, f"a frame of {len(data)} bytes exceeds the server's "
                                            f"limit of {welcome.limits.max_frame_bytes} bytes; use zlib, tiles or a "
                                            "smaller region", frame.role, submit.job)
                    out.append(data)
        except ProtocolError as exc:
            if self._jobs.pop(prepared.job, None) is None:
                return []  # closed meanwhile: the job already had its terminal event
            exc.job = prepared.job
            raise
        job.sent = True
        return out

    def submit(self, submit: Submit, inputs: Inputs, tile_side: int = 0) -> list[str | bytes]:
        """``begin_submit`` and ``encode_submit`` in one: what to send for a job."""
        return self.encode_submit(self.begin_submit(submit, inputs), tile_side)

    def cancel(self, job: str) -> str | None:
        """The cancel to send, or None when the job is not in flight (it may have just ended)."""
        self._require_ready()
        return Cancel(job=job).encode() if job in self._jobs else None

    def resume(self, job: str, key: str | None = None) -> str:
        """Re-attach a job kept by the server (``keep_result``) after a reconnect. ``key``: the job's
        ``resume_key`` (default: the one this connection received; a new connection is given it by the caller)."""
        self._require_ready()
        if "resume" not in self.features:
            raise ProtocolError(errors.UNSUPPORTED, "the server does not offer the 'resume' feature", "job", job)
        if job in self._jobs:
            raise ProtocolError(errors.DUPLICATE_JOB, f"job {job!r} is still in flight", "job", job)
        key = key or self.resume_keys.get(job)
        self._jobs[job] = _Job(sent=True)
        if key is not None:
            self.resume_keys[job] = key
        return Resume(job=job, key=key if "resume_key" in self.features else None).encode()

    # ------------------------------------------------------------------ live streams (feature ``live``)
    def live_start(self, msg: LiveStart) -> str:
        """Open a live stream; ``LiveStarted`` (or a ``LiveError`` with ``ended``) answers it."""
        self._require_ready()
        return self.live.start(msg, self.features, self.jobs, self.hello_message.features)

    def live_frame(self, msg: LiveFrameMessage, tiles: list[Frame]) -> list[str | bytes]:
        """A frame of a stream (``live.DeltaEncoder.encode``) and its tiles; ``[]`` once the stream stopped."""
        self._require_ready()
        return self.live.frame(msg, tiles)

    def live_stop(self, stream: str) -> str | None:
        """The ``live_stop`` to send (None when the stream is not open); ``LiveStopped`` ends it."""
        self._require_ready()
        return self.live.stop(stream)

    def close(self, error: ProtocolError | None = None) -> list[object]:
        """The session ended: one ``connection_lost`` error per job in flight (its terminal event), and one
        ended ``LiveError`` per open live stream."""
        self._state = State.CLOSED
        why = error.message if error else "the client closed the connection"
        ended: list[object] = [Error(code=errors.CONNECTION_LOST, message=why, job=job) for job in self._jobs]
        self._jobs.clear()
        return ended + self.live.close()

    # ------------------------------------------------------------------ receiving
    def receive_text(self, text: str | bytes) -> list[object]:
        """Events of one control message: ``Connected`` for the welcome, else the message or what it completes.
        Raises ProtocolError for anything wrong; one naming a job ends that job for the caller (its key goes)."""
        try:
            return self._receive_text(text)
        except ProtocolError as exc:
            self._forget_key(exc)
            raise

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        """Events of one binary frame (``PreviewReceived``, or none: result frames wait for their ``Result``)."""
        try:
            return self._receive_bytes(data)
        except ProtocolError as exc:
            self._forget_key(exc)
            raise

    def _forget_key(self, exc: ProtocolError) -> None:
        if exc.job is not None and exc.code != errors.CONNECTION_LOST:
            self.resume_keys.pop(exc.job, None)

    def _receive_text(self, text: str | bytes) -> list[object]:
        if self._state is State.HELLO_SENT:
            version = peek_protocol(text, "welcome")
            if version is not None and version != PROTOCOL_VERSION:
                self._state = State.CLOSED
                raise version_error(version, server_side=False)
        msg = decode_message(text, SERVER_MESSAGES)
        if isinstance(msg, Welcome):
            if self._state is not State.HELLO_SENT:
                raise ProtocolError(errors.UNEXPECTED_FRAME, "welcome arrived outside the handshake")
            self._state, self.welcome = State.READY, msg
            return [Connected(msg)]
        if isinstance(msg, Error):
            return self._error(msg)
        if msg.TYPE in LIVE_SERVER_MESSAGES:
            return self.live.receive(msg)
        job_id = getattr(msg, "job", None)
        job = self._jobs.get(job_id or "")
        if job is None or not job.sent:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{msg.TYPE} for unknown job {job_id!r}", "job", job_id)
        if isinstance(msg, Queued) and msg.resume_key:
            self.resume_keys[msg.job] = msg.resume_key
        if isinstance(msg, Progress):
            if job.total and msg.total != job.total:
                raise ProtocolError(errors.BAD_VALUE, f"progress of job {job_id!r} changed its total from "
                                    f"{job.total} to {msg.total}", "total", job_id)
            job.total = msg.total
        if isinstance(msg, Result):
            del self._jobs[msg.job]
            self.resume_keys.pop(msg.job, None)
            frames = group_results(job.results)
            if len(frames) != msg.images:
                return [Error(code=errors.MISSING_FRAME, message=f"result of job {msg.job!r} announced {msg.images} "
                              f"images but {len(frames)} arrived ({len(job.results)} frames)", job=msg.job,
                              field="images")]
            return [ResultReceived(msg.job, msg, frames)]
        if isinstance(msg, Cancelled):
            del self._jobs[msg.job]
            self.resume_keys.pop(msg.job, None)
        return [msg]

    def _error(self, msg: Error) -> list[object]:
        if self._state is State.HELLO_SENT and msg.code == errors.UNKNOWN_FIELD and msg.field == "features":
            self._state = State.CLOSED  # a v1 server does not know hello.features
            return [Error.from_exception(version_error(1, server_side=False))]
        if msg.code in FATAL_CODES or self._state is State.HELLO_SENT:
            self._state = State.CLOSED
        if msg.job is not None:
            if msg.job not in self._jobs:
                raise ProtocolError(errors.UNKNOWN_JOB, f"error for unknown job {msg.job!r}: {msg.message}", "job",
                                    msg.job)
            del self._jobs[msg.job]
            if msg.code != errors.CONNECTION_LOST:
                self.resume_keys.pop(msg.job, None)
        return [msg]

    def _receive_bytes(self, data: bytes | bytearray | memoryview) -> list[object]:
        frame = decode_frame(data, self.frame_limits)
        if frame.role not in SERVER_ROLES:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"servers do not send {frame.role} frames", "role",
                                frame.job)
        if frame.job in self.live:
            return self.live.receive_frame(frame)
        job = self._jobs.get(frame.job)
        if job is None or not job.sent:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{frame.role} frame for unknown job {frame.job!r}", "job",
                                frame.job)
        if frame.role == "preview":
            return [PreviewReceived(frame.job, frame)]
        job.results.append(frame)
        return []

