"""A queue entry's state is an enum changed only by its reducer: QUEUED -> RUNNING (a worker took it) -> DONE (its
terminal event), QUEUED -> DONE for a job cancelled while it waits; DONE is final."""

from __future__ import annotations

import threading

import pytest
from server_helpers import TIMEOUT, image_frame, make_image, submit, wait_until
from underpaint.protocol import errors
from underpaint.protocol.jobs import JobRequest
from underpaint.protocol.messages import Cancelled, Error, Progress, Queued, Result
from underpaint.server.jobs.job_state import JobState, Step, reduce_state
from underpaint.server.jobs.queue import Job, JobManager, Task


def request(prompt: str) -> JobRequest:
    sub = submit(prompt=prompt, job=f"job-{prompt}")
    return JobRequest.of(sub, {"image": image_frame(sub, make_image(8, 8))})


@pytest.mark.parametrize("state, event, after", [
    (JobState.QUEUED, Step.TAKEN, JobState.RUNNING),
    (JobState.QUEUED, Cancelled(job="j"), JobState.DONE),
    (JobState.QUEUED, Queued(job="j", position=3), JobState.QUEUED),
    (JobState.RUNNING, Progress(job="j", step=1, total=2), JobState.RUNNING),
    (JobState.RUNNING, Result(job="j", images=1), JobState.DONE),
    (JobState.RUNNING, Error(code=errors.INTERNAL, message="x", job="j"), JobState.DONE),
    (JobState.RUNNING, Step.ENDED, JobState.DONE),
    (JobState.DONE, Step.TAKEN, JobState.DONE),
    (JobState.DONE, Error(code=errors.INTERNAL, message="late", job="j"), JobState.DONE),
])
def test_the_reducer(state, event, after):
    assert reduce_state(state, event) is after


def test_a_job_runs_through_its_states_and_nobody_else_sets_them():
    seen: list[JobState] = []
    go = threading.Event()

    def run(job: Job) -> None:
        seen.append(job.state)
        go.wait(TIMEOUT)
        job.emit(Result(job=job.id, images=0))

    jobs = JobManager(run)
    try:
        first = jobs.submit("alice", request("a"), lambda item: None)
        waiting = jobs.submit("alice", request("b"), lambda item: None)
        wait_until(lambda: seen, TIMEOUT, "the first job to run")
        assert (first.state, waiting.state) == (JobState.RUNNING, JobState.QUEUED)
        with pytest.raises(AttributeError):
            first.state = JobState.DONE  # type: ignore[misc]
        assert jobs.cancel("alice", waiting.id) and waiting.state is JobState.DONE  # cancelled while waiting
        go.set()
        wait_until(lambda: first.state is JobState.DONE, TIMEOUT, "the first job to finish")
        assert seen == [JobState.RUNNING] and first.started is not None and first.finished is not None
    finally:
        go.set()
        jobs.close()


def test_a_task_is_done_when_its_run_ends_even_by_an_exception():
    ran = threading.Event()

    def boom() -> None:
        ran.set()
        raise RuntimeError("a live frame failed")

    jobs = JobManager(lambda job: None)
    try:
        task = Task(client="live:x", run=boom)
        assert task.state is JobState.QUEUED
        jobs.submit_task(task)
        wait_until(lambda: task.state is JobState.DONE, TIMEOUT, "the task to end")
        assert ran.is_set()
    finally:
        jobs.close()
