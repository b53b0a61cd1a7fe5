"""Jobs: a fair queue across clients, worker threads (one per device or engine replica), cancel, disconnect, resume.

One in-process device has one worker; an engine with several replicas (Ray Serve) gets one worker per replica, so
up to one job per free replica runs while the rest wait here, in the same round-robin order.
Workers never touch the event loop: every event goes through the job's ``sink``, which the transport
makes thread-safe. Clients take turns (round robin), so one client's long queue cannot starve another.
A ``Task`` (a live stream's next frame, ``jobs.live``) takes turns the same way under its own key.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from underpaint.protocol import errors
from underpaint.protocol.frames import Frame
from underpaint.protocol.jobs import JobRequest
from underpaint.protocol.messages import Cancelled, Error, Message, Queued

from .cancel import CancelFlag
from .job_state import TERMINAL, JobState, Step, reduce_state
from .kept import KeptLedger

log = logging.getLogger("underpaint.jobs")
Sink = Callable[[object], None]
EXACT_POSITIONS = 8  # queued positions below this are sent on every change; beyond, only when halved or doubled


@dataclass(eq=False)
class Job:
    client: str
    request: JobRequest
    sink: Sink | None
    owner: str = ""  # who may keep it (the client's address): kept jobs count against it and share its turn
    cancel: CancelFlag = field(default_factory=CancelFlag)
    position: int = -1
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    kept: list[object] = field(default_factory=list)  # terminal output, replayed on resume
    key: str = ""  # keep_result jobs: the secret a resume must present (job ids are only unique per client)
    send_key: bool = False  # the client advertised resume_key: its first queued carries the key
    sent_position: int = -1  # the last position told to the client
    delivered: bool = False  # its terminal event went to a connection
    _state: JobState = field(default=JobState.QUEUED, init=False)

    @property
    def state(self) -> JobState:
        """Changed only by ``reduce_state``: when a worker takes the job (``take``) and at its terminal event."""
        return self._state

    def take(self) -> None:
        self._state, self.started = reduce_state(self._state, Step.TAKEN), time.monotonic()

    @property
    def id(self) -> str:
        return self.request.submit.job

    @property
    def keep(self) -> bool:
        return self.request.submit.keep_result

    def emit(self, item: Message | Frame) -> None:
        terminal = isinstance(item, TERMINAL)
        if self.keep and (terminal or (isinstance(item, Frame) and item.role == "result")):
            self.kept.append(item)
        self._state = reduce_state(self._state, item)
        if terminal:
            self.finished = time.monotonic()
        sink = self.sink
        if sink is not None:
            self.delivered = self.delivered or terminal
            sink(item)


@dataclass(eq=False)
class Task:
    """Work that takes a turn in the round robin like a client's job (a live stream's next frame): ``run`` is
    called on the worker thread. It sends nothing through the queue (no ``queued`` positions)."""

    client: str  # the round-robin key, e.g. "live:<connection>"
    run: Callable[[], None]
    id: str = ""  # never a job id: a client's cancel does not find it
    cancel: CancelFlag = field(default_factory=CancelFlag)
    keep: bool = False
    _state: JobState = field(default=JobState.QUEUED, init=False)

    @property
    def state(self) -> JobState:
        return self._state

    def take(self) -> None:
        self._state = reduce_state(self._state, Step.TAKEN)

    def end(self) -> None:
        self._state = reduce_state(self._state, Step.ENDED)


class JobManager:
    def __init__(self, run: Callable[[Job], None], keep_results_s: float = 600.0, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._run = run
        self.keep_results_s = keep_results_s
        self._cv = threading.Condition()
        self._queues: OrderedDict[str, deque[Job]] = OrderedDict()  # client -> its queue, in turn order
        self._running: list[Job] = []  # at most one per worker
        self._kept: dict[str, Job] = {}
        self.kept = KeptLedger()  # what kept jobs of closed connections hold
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"underpaint-worker-{i}", daemon=True)
                         for i in range(workers)]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ called by transports
    def submit(self, client: str, request: JobRequest, sink: Sink, send_key: bool = False,
               owner: str | None = None) -> Job:
        job = Job(client, request, sink, owner=owner or client, send_key=send_key)
        with self._cv:
            self._queues.setdefault(client, deque()).append(job)
            if job.keep:
                self._expire_kept()
                job.key = secrets.token_urlsafe(24)
                self._kept[job.key] = job
            self._update_positions()
            self._cv.notify_all()
        return job

    def cancel(self, client: str, job_id: str) -> bool:
        """Cancel the caller's own job, queued or running. False if it has no such job."""
        with self._cv:
            for queue in self._queues.values():
                job = next((j for j in queue if j.id == job_id and j.client == client), None)
                if job is not None:
                    queue.remove(job)
                    self._forget(job)
                    job.emit(Cancelled(job=job_id))
                    self._update_positions()
                    return True
            for running in self._running:
                if running.client == client and running.id == job_id:
                    running.cancel.set()
                    return True
        return False

    def disconnect(self, client: str, held: dict[str, int] | None = None) -> None:
        """A dropped socket cancels the client's jobs, except those that asked for their result to be kept: they
        go on in their owner's one turn of the round robin, and the bytes ``held`` by each (job id -> bytes of
        its input frames) count against their owner and the server until they are delivered or expire."""
        held = held or {}
        with self._cv:
            queue = self._queues.pop(client, deque())
            for job in queue:
                if job.keep:
                    self._queues.setdefault(f"kept:{job.owner}", deque()).append(job)
            for running in self._running:
                if running.client == client and not running.keep:
                    running.cancel.set()
            for job in self._kept.values():
                if job.client == client:
                    job.sink = None
                    if job.id in held:
                        self.kept.hold(job, job.owner, held[job.id])
            self._update_positions()

    def kept_count(self, owner: str) -> int:
        """Kept jobs of ``owner`` not yet delivered (queued, running, or waiting for ``resume``)."""
        with self._cv:
            self._expire_kept()
            return sum(1 for job in self._kept.values() if job.owner == owner)

    def _forget(self, job: Job) -> None:
        self._kept.pop(job.key, None)
        self.kept.release(job)

    def resume(self, client: str, job_id: str, key: str | None, sink: Sink) -> bool:
        """Re-attach a kept job to the connection that presents its key: replay its result (once), or stream
        the rest of it. The key holder may take a job over from a connection that has not noticed its drop."""
        with self._cv:
            self._expire_kept()
            job = self._kept.get(key) if key else None
            if job is None or job.id != job_id:
                return False
            job.client = client
            if job.state is JobState.DONE:
                self._forget(job)
                for item in job.kept:
                    sink(item)
                return True
            job.sink = sink
            if job.state is JobState.QUEUED:
                job.sent_position = max(job.position, 0)
                sink(Queued(job=job.id, position=job.sent_position))
            return True

    def submit_task(self, task: Task) -> None:
        """Queue ``task`` for a turn under ``task.client``."""
        with self._cv:
            self._queues.setdefault(task.client, deque()).append(task)  # type: ignore[arg-type]
            self._cv.notify_all()

    def withdraw(self, key: str) -> None:
        """Drop every queued entry of ``key`` (a live stream's tasks when it stops)."""
        with self._cv:
            self._queues.pop(key, None)

    def queued_count(self, client: str) -> int:
        with self._cv:
            return len(self._queues.get(client, ()))

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for running in self._running:
                running.cancel.set()
            self._cv.notify_all()
        deadline = time.monotonic() + 30
        for worker in self._workers:
            worker.join(timeout=max(deadline - time.monotonic(), 0.1))

    # ------------------------------------------------------------------ worker
    def _next(self) -> Job | None:
        for client in list(self._queues):
            queue = self._queues[client]
            if queue:
                job = queue.popleft()
                self._queues.move_to_end(client)  # round robin: this client goes last
                if not queue:
                    del self._queues[client]
                return job
            del self._queues[client]
        return None

    def _update_positions(self) -> None:
        """Tell every queued job where it now stands in the round-robin order."""
        order: list[Job] = []
        queues = [[j for j in q if isinstance(j, Job)] for q in self._queues.values()]
        for depth in range(max((len(q) for q in queues), default=0)):
            order.extend(q[depth] for q in queues if depth < len(q))
        for position, job in enumerate(order):
            job.position = position
            last = job.sent_position
            if last < 0:  # entering the queue: the only queued that carries the resume key
                key = job.key if job.send_key and job.key else None
                job.sent_position = position
                job.emit(Queued(job=job.id, position=position, resume_key=key))
            elif position != last and (position < EXACT_POSITIONS or position <= last // 2 or position >= 2 * last + 2):
                job.sent_position = position  # coalesced: near the front exactly, further back when it halved/doubled
                job.emit(Queued(job=job.id, position=position))

    def _expire_kept(self) -> None:
        now = time.monotonic()
        for job in list(self._kept.values()):
            if job.state is JobState.DONE and job.finished is not None and now - job.finished > self.keep_results_s:
                self._forget(job)

    def _work(self) -> None:
        while True:
            with self._cv:
                job = None
                while not self._closed and (job := self._next()) is None:
                    self._cv.wait()
                if self._closed:
                    return
                self._running.append(job)
                job.take()
                self._update_positions()
            if isinstance(job, Task):
                self._run_task(job)
                continue
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any job
                log.exception("job %s failed", job.id)
                job.emit(Error(code=errors.INTERNAL, message=f"internal error: {exc}", job=job.id))
            finally:
                with self._cv:
                    self._running.remove(job)
                    if job.state is not JobState.DONE:
                        job.emit(Error(code=errors.INTERNAL, message="job ended without a result", job=job.id))
                    if job.keep and job.delivered:  # a result is given out once
                        self._forget(job)
                    elif job.keep:  # waits for resume: its results are what it holds now, not its inputs
                        job.request = JobRequest(job.request.submit, {})
                        self.kept.resize(job, sum(len(f.payload) for f in job.kept if isinstance(f, Frame)))

    def _run_task(self, task: Task) -> None:
        try:
            task.run()
        except Exception:  # noqa: BLE001 - the worker must outlive any task
            log.exception("task of %s failed", task.client)
        finally:
            task.end()
            with self._cv:
                self._running[:] = [r for r in self._running if r is not task]
