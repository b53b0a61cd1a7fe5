"""``JobSession``: the jobs of one server connection, the same for every host.

From a ``JobRequest`` to ``Submit`` + input frames, the checks against the server's welcome, the event
reduction (``jobs.Tracker``), decoded results, kept-job resume and reconnect (``reconnect.Backoff``) and the
sentences a painter reads. A host adapter only reads pixels and selection, writes layers and draws state.

Threads: the protocol client calls ``post`` on its own thread with ``Tagged`` events; the host delivers each to
``handle`` on its main thread and acts on the ``Note``s and ``JobUpdate``s it returns. A reconnect waits
``Backoff`` seconds: ``wake(delay, event)`` (when given) posts ``event`` after ``delay``; a host without timers
calls ``poll`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .. import client as pclient
from .. import errors, messages
from . import params, reconnect
from .jobs import Finished, JobState, Preview, Status, Tracker, decode_results
from .request import JobRequest, problem, wire
from .sentences import explain


class ConnectionState(str, Enum):
    """Where the session's connection is; only ``JobSession`` moves it."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"  # a client is connecting, or a reconnect waits for its backoff
    CONNECTED = "connected"

    def __str__(self) -> str:  # the plain value in text and records, as before it was an enum
        return self.value


@dataclass(frozen=True)
class Identity:
    """What the plugin says in ``hello``."""

    name: str  # underpaint-<host>: job ids start with <host>
    version: str
    features: tuple[str, ...]

    @property
    def job_prefix(self) -> str:
        return self.name.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class Tagged:
    """A client event with the connection it came from (what ``post`` receives)."""

    generation: int
    event: object


@dataclass(frozen=True)
class Retry:
    """Time for the next reconnect attempt."""


@dataclass(frozen=True)
class Note:
    """A line for the host's status display."""

    text: str
    error: bool = False
    from_server: bool = False  # a connection-wide error the server sent (a one-job host ends its job)


@dataclass(eq=False)
class SessionJob:
    """One job of the session: its request, its id on the wire, its tracker and the host's own ``tag``."""

    id: str
    request: JobRequest
    tag: Any = None
    track: Tracker = field(init=False)
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.track = Tracker(self.id, labels=dict(self.labels))

    @property
    def state(self) -> JobState:
        return self.track.state


@dataclass(frozen=True)
class JobUpdate:
    """What happened to ``job``: a ``Status`` line, a ``Preview`` or its one ``Finished``."""

    job: SessionJob
    update: Status | Preview | Finished


class JobRefused(ValueError):
    """The server of this session would refuse the job; the message says what to change."""


Output = Note | JobUpdate


class JobSession:
    """The jobs of one server (``url``, ``token``), submitted in order, across reconnects."""

    def __init__(self, url: str, token: str | None, identity: Identity, post: Callable[[object], None],
                 make_client: Callable[..., Any] = pclient.Client, labels: dict[str, str] | None = None,
                 transfer: str = "auto", wake: Callable[[float, object], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.token, self.identity, self.transfer = url, token, identity, transfer
        self.labels = dict(labels or {})
        self._post, self._make_client, self._wake, self._clock = post, make_client, wake, clock
        self.client: Any = None
        self.welcome: messages.Welcome | None = None
        self._state = ConnectionState.DISCONNECTED
        self._generation = 0
        self.jobs: dict[str, SessionJob] = {}  # in submission order
        self._waiting: list[str] = []  # submitted before the connection was ready
        self._keys: dict[str, str | None] = {}  # detached kept jobs -> their resume keys
        self.backoff = reconnect.Backoff(clock=clock)
        self.retry_at: float | None = None

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> ConnectionState:
        return self._state

    def offer(self) -> params.Offer:
        """What the host may offer on this connection (the plugin's core kinds while not connected)."""
        return params.offer(self.welcome.features if self.welcome else None, self.identity.features)

    def problem(self, request: JobRequest) -> str | None:
        """Why the connected server would refuse ``request``, or None (also None while not connected)."""
        return problem(request, self.welcome, self.offer()) if self.welcome is not None else None

    def running(self) -> SessionJob | None:
        return next((j for j in self.jobs.values() if j.state is JobState.RUNNING), None)

    # ---------------------------------------------------------------- connection
    def connect(self) -> list[Output]:
        if self._state is not ConnectionState.DISCONNECTED:
            return []
        self._generation += 1
        generation, post = self._generation, self._post
        self.client = self._make_client(self.url, token=self.token, client_name=self.identity.name,
                                        client_version=self.identity.version, features=self.identity.features,
                                        on_event=lambda event: post(Tagged(generation, event)))
        self._state, self.retry_at = ConnectionState.CONNECTING, None
        out = [] if self.backoff.active else [Note(f"Connecting to {self.client.url} …")]
        self.client.connect()
        return out

    def close(self, why: str = "Disconnected: the job was dropped.") -> list[Output]:
        """Close the connection: jobs in flight fail now, late events of the old connection are ignored."""
        client, self.client = self.client, None
        self._generation += 1
        if client is not None:
            client.close()
        self._state, self.welcome, self._keys, self.retry_at = ConnectionState.DISCONNECTED, None, {}, None
        self.backoff.reset()
        out = self._fail_all("Disconnected before the job was sent.", why)
        return [*out, Note("Disconnected")]

    def use_server(self, url: str, token: str | None) -> list[Output]:
        """Talk to another server (or with another token) from now on; a connection to the old one is closed."""
        if (url, token) == (self.url, self.token):
            return []
        self.url, self.token = url, token
        return self.close() if self._state is not ConnectionState.DISCONNECTED else []

    def poll(self) -> list[Output]:
        """Reconnect once the backoff has passed (for hosts that poll instead of ``wake``)."""
        if self.retry_at is not None and self._clock() >= self.retry_at:
            return self._retry()
        return []

    # ---------------------------------------------------------------- jobs
    def submit(self, request: JobRequest, tag: Any = None, job_id: str | None = None) -> tuple[SessionJob,
                                                                                             list[Output]]:
        """Check ``request`` against the connected server (JobRefused with a sentence) and send it, or queue it
        until the connection is ready (connecting now when needed)."""
        found = self.problem(request)
        if found:
            raise JobRefused(found)
        job = SessionJob(job_id or pclient.new_job_id(self.identity.job_prefix), request, tag, labels=self.labels)
        self.jobs[job.id] = job
        if self._state is ConnectionState.CONNECTED:
            return job, self._send(job)
        self._waiting.append(job.id)
        return job, self.connect()

    def cancel(self, job_id: str) -> list[Output]:
        job = self.jobs.get(job_id)
        if job is None:
            return []
        if job_id in self._waiting or job.track.detached:  # nothing on a live connection to cancel
            self._waiting = [w for w in self._waiting if w != job_id]
            self._keys.pop(job_id, None)
            return self._finish(job, job.track.cancel())
        job.track.request_cancel()
        if self.client is not None:
            self.client.cancel(job_id)
        return [Note("Cancelling …")]

    def drop(self, job_id: str) -> None:
        """Forget a job without a word (its document closed): cancelled on the server when it is there."""
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        if job_id in self._waiting:
            self._waiting.remove(job_id)
        self._keys.pop(job_id, None)
        if self.client is not None and job.state not in (JobState.SENDING, JobState.DETACHED):
            self.client.cancel(job_id)

    # ---------------------------------------------------------------- events (host main thread)
    def handle(self, event: object) -> list[Output]:
        if isinstance(event, Tagged):
            if event.generation != self._generation:
                return []  # from a connection that was closed since
            event = event.event
        if isinstance(event, Retry):
            return self._retry()
        if isinstance(event, pclient.Connected):
            return self._connected(event.welcome)
        if isinstance(event, pclient.Disconnected):
            return self._disconnected(event.error)
        if isinstance(event, messages.Error) and not event.job:
            return [Note(explain(event.code, event.message, self.labels), error=True, from_server=True)]
        job = self.jobs.get(getattr(event, "job", None) or "")
        if job is None:  # events of dropped jobs are ignored
            return []
        update = job.track.update(event)
        if isinstance(update, Finished):
            return self._finish(job, self._decoded(job, update))
        return [JobUpdate(job, update)] if update is not None else []

    def _decoded(self, job: SessionJob, update: Finished) -> Finished:
        if update.state is not JobState.DONE:
            return update
        r = job.request
        try:
            images = decode_results(r.results, r.pixel_format, update.result, update.frames, r.seed)
        except ValueError as exc:
            return job.track.fail(str(exc))
        return Finished(update.state, update.text, update.result, update.frames, tuple(images))

    def _connected(self, welcome: messages.Welcome) -> list[Output]:
        self._state, self.welcome, self.retry_at = ConnectionState.CONNECTED, welcome, None
        self.backoff.reset()
        out: list[Output] = [Note(f"Connected: {welcome.device}")]
        waiting, self._waiting = self._waiting, []
        for job_id in waiting:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            found = self.problem(job.request)
            out += self._finish(job, job.track.fail(found)) if found else self._send(job)
        keys, self._keys = self._keys, {}
        for job_id, key in keys.items():
            job = self.jobs.get(job_id)
            if job is not None:
                self.client.resume(job_id, key)  # the key the old connection's client was given
                out.append(JobUpdate(job, job.track.resuming()))
        return out

    def _send(self, job: SessionJob) -> list[Output]:
        offer = self.offer()
        tile_side = getattr(self.client, "tile_side", 0) or pclient.DEFAULT_TILE_SIDE
        try:
            submit, inputs = wire(job.request, job.id, offer, self.client.url, self.transfer, tile_side,
                                  keep=offer.resume)
            self.client.submit(submit, inputs)
        except errors.ProtocolError as exc:
            return self._finish(job, job.track.fail(explain(exc.code, exc.message, self.labels)))
        job.track.sent(kept=submit.keep_result)
        region = job.request.plan.region
        return [JobUpdate(job, Status(f"Sent {job.request.kind} of {region.width}x{region.height} px"))]

    def _disconnected(self, error: errors.ProtocolError | None) -> list[Output]:
        old, self.client, self.welcome = self.client, None, None
        self._state = ConnectionState.DISCONNECTED
        why = explain(error.code, error.message, self.labels) if error else "Disconnected"
        # jobs the server keeps survive a dropped link: reconnect after the shared backoff and resume them
        detached = [job for job in self.jobs.values() if job.track.detached] if error is not None else []
        if detached:
            keys = getattr(old, "resume_keys", {})  # a new client is made on reconnect: carry the keys over
            self._keys = {job.id: keys.get(job.id) or self._keys.get(job.id) for job in detached}
            first = not self.backoff.active
            delay = self.backoff.next_delay()
            url = getattr(old, "url", self.url)
            if delay is not None:
                self._state, self.retry_at = ConnectionState.CONNECTING, self._clock() + delay
                if self._wake is not None:
                    self._wake(delay, Tagged(self._generation, Retry()))
                return [Note(reconnect.reconnecting_text(url, len(detached)), error=True)] if first else []
            why = reconnect.gave_up_text(url, self.backoff.budget)
        self.backoff.reset()
        self._keys, self.retry_at = {}, None
        lost = why if error is not None else "The connection was closed."  # what a job in flight reads
        return [*self._fail_all(lost, lost), Note(why, error=error is not None)]

    def _retry(self) -> list[Output]:
        if self._state is not ConnectionState.CONNECTING or self.client is not None:
            return []
        self._state, self.retry_at = ConnectionState.DISCONNECTED, None
        return self.connect()

    def _fail_all(self, waiting_why: str, why: str) -> list[Output]:
        out: list[Output] = []
        waiting, self._waiting = set(self._waiting), []
        for job in list(self.jobs.values()):  # the client reports orphans first; this is a safety net
            out += self._finish(job, job.track.fail(waiting_why if job.id in waiting else why))
        return out

    def _finish(self, job: SessionJob, update: Finished) -> list[Output]:
        self.jobs.pop(job.id, None)
        return [JobUpdate(job, update)]


__all__ = ["ConnectionState", "Identity", "JobRefused", "JobSession", "JobUpdate", "Note", "Output", "Retry",
           "SessionJob", "Tagged"]
