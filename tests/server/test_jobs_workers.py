"""The job layer with several workers (one per engine replica): up to that many jobs run at once, the rest
wait, and cancel/disconnect reach every running job. A runner that waits on events stands in for replicas."""

from __future__ import annotations

import threading

from server_helpers import TIMEOUT, image_frame, make_image, submit, wait_until
from underpaint.protocol.jobs import JobRequest
from underpaint.protocol.messages import Cancelled, Result
from underpaint.server.jobs.queue import Job, JobManager


class Replicas:
    """Runs each job until released (or cancelled); records the start order and the most jobs at once."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> None:
        with self._lock:
            self.started.append(job.request.submit.prompt)
            self.running += 1
            self.most = max(self.most, self.running)
        gate = self.release.setdefault(job.request.submit.prompt, threading.Event())
        while not (gate.wait(0.01) or job.cancel.cancelled):
            pass
        with self._lock:
            self.running -= 1
        job.emit(Cancelled(job=job.id) if job.cancel.cancelled else Result(job=job.id, images=0, seeds=()))

    def let_go(self, prompt: str) -> None:
        self.release.setdefault(prompt, threading.Event()).set()


def request(prompt: str) -> JobRequest:
    sub = submit(prompt=prompt, job=f"job-{prompt}")
    return JobRequest.of(sub, {"image": image_frame(sub, make_image(8, 8))})


def test_two_workers_run_two_jobs_at_once_and_no_more():
    replicas, events = Replicas(), []
    jobs = JobManager(replicas, workers=2)
    try:
        for prompt in ("a1", "a2", "a3"):
            jobs.submit("alice", request(prompt), events.append)
        wait_until(lambda: len(replicas.started) == 2, TIMEOUT, "two jobs running")
        jobs.submit("bob", request("b1"), events.append)
        assert replicas.running == 2 and replicas.started == ["a1", "a2"]  # the others wait for a free worker
        replicas.let_go("a1")
        wait_until(lambda: len(replicas.started) == 3, TIMEOUT, "the next job")
        assert replicas.running == 2
        for prompt in ("a2", "a3", "b1"):
            replicas.let_go(prompt)
        wait_until(lambda: len([e for e in events if isinstance(e, Result)]) == 4, TIMEOUT, "all results")
        assert sorted(replicas.started) == ["a1", "a2", "a3", "b1"] and replicas.most == 2
    finally:
        for prompt in list(replicas.release):
            replicas.let_go(prompt)
        jobs.close()


def test_cancel_and_disconnect_reach_every_running_job():
    replicas, alice, bob = Replicas(), [], []
    jobs = JobManager(replicas, workers=2)
    try:
        first = jobs.submit("alice", request("first"), alice.append)
        jobs.submit("bob", request("other"), bob.append)
        wait_until(lambda: replicas.running == 2, TIMEOUT, "both running")
        assert jobs.cancel("alice", first.id)
        wait_until(lambda: any(isinstance(e, Cancelled) for e in alice), TIMEOUT, "alice's cancel")
        jobs.disconnect("bob")
        wait_until(lambda: replicas.running == 0, TIMEOUT, "bob's job cancelled by the drop")
    finally:
        jobs.close()
