"""Cancel (queued and running), disconnect-cancel, resume, fairness between clients, worker failures.

A job is held deterministically inside its first denoising step by the ControlledEngine's gate, so no test
depends on how fast the CPU is.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from server_helpers import (
    TIMEOUT,
    Raw,
    connected,
    image_frame,
    make_image,
    quick_job,
    submit,
    wait_until,
)
from underpaint.protocol.client import Client
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import Cancelled, Error, Progress, Queued
from underpaint.protocol.pixels import decode_pixels
from underpaint.server.engine.interface import EngineError

PIXELS = make_image(64, 64, seed=11)


def send(client: Client, prompt: str, **fields) -> str:
    sub = submit(prompt=prompt, job=f"job-{prompt}", **fields)
    return client.submit(sub, {"image": image_frame(sub, PIXELS)})


def positions(rec, job: str) -> list[int]:
    return [e.position for e in rec.for_job(job, Queued)]


# ------------------------------------------------------------------------------------------------ cancel
def test_cancel_a_queued_job(live):
    gate = live.engine.hold("blocker")
    with connected(live.url) as (client, rec):
        blocker = send(client, "blocker")
        assert gate.reached.wait(TIMEOUT)
        queued = send(client, "queued")
        rec.wait(lambda e: isinstance(e, Queued) and e.job == queued)
        client.cancel(queued)
        assert isinstance(rec.finished(queued), Cancelled)
        gate.release.set()
        assert isinstance(rec.finished(blocker), ResultReceived)
    assert rec.for_job(queued, ResultReceived) == [] and rec.for_job(queued, Progress) == []
    assert "queued" not in live.engine.order()  # never reached the engine
    quick_job(live.url)


def test_cancel_a_running_job_stops_within_a_step(live):
    gate = live.engine.hold("long")
    with connected(live.url) as (client, rec):
        job = send(client, "long", steps=40, strength=1.0)
        assert gate.reached.wait(TIMEOUT)  # step 1 is done and reported; the job waits inside its callback
        client.cancel(job)
        assert isinstance(rec.finished(job), Cancelled)
    progress = rec.for_job(job, Progress)
    assert [p.step for p in progress] == [1] and progress[0].total >= 40  # no step ran after the cancel
    assert rec.for_job(job, ResultReceived) == []
    assert live.engine.outcome("long") == "cancelled"
    quick_job(live.url)


def test_cancel_running_job_without_gate_stops_early(live):
    """The real engine alone (no test gate) stops long before its last step."""
    with connected(live.url) as (client, rec):
        job = send(client, "ungated", steps=150, strength=1.0)
        rec.wait(lambda e: isinstance(e, Progress) and e.job == job)
        client.cancel(job)
        assert isinstance(rec.finished(job), Cancelled)
    progress = rec.for_job(job, Progress)
    assert progress[-1].step < progress[-1].total
    assert rec.for_job(job, ResultReceived) == []


def test_cancel_of_someone_elses_job_does_nothing(live):
    """Job ids belong to a connection: a cancel naming another client's job is moot on this one (nothing
    of that id is live here), so it is dropped; the owner's job runs to its result."""
    gate = live.engine.hold("mine")
    with connected(live.url) as (owner, owner_rec):
        job = send(owner, "mine")
        assert gate.reached.wait(TIMEOUT)
        other = Raw(live.url)
        try:
            assert other.hello()["type"] == "welcome"
            other.send({"type": "cancel", "job": job})
            gate.release.set()
            assert isinstance(owner_rec.finished(job), ResultReceived)
            assert live.engine.outcome("mine") == "done"
            mine = submit(prompt="the other client's own job")
            other.send(mine.to_dict())
            other.send_frame(image_frame(mine, PIXELS))
            message = other.recv(TIMEOUT)  # nothing about the owner's job came to this connection
            assert message.get("job") == mine.job, message
        finally:
            other.close()


# ------------------------------------------------------------------------------------------------ disconnect
def test_disconnect_cancels_the_running_job_and_the_worker_moves_on(live):
    gate = live.engine.hold("dropped")
    with connected(live.url) as (client, _):
        send(client, "dropped")
        send(client, "dropped-queued")
        assert gate.reached.wait(TIMEOUT)
    # The socket is gone: the gate only opens when the server cancels the job.
    wait_until(lambda: live.engine.outcome("dropped"), what="the dropped job to end")
    assert live.engine.outcome("dropped") == "cancelled"
    quick_job(live.url)
    assert "dropped-queued" not in live.engine.order()  # its queued job went with it


# ------------------------------------------------------------------------------------------------ resume
def kept_job(live, job: str):
    jobs = live.service.jobs._kept.values()  # noqa: SLF001 - the only way to see the server noticed the drop
    return next((j for j in list(jobs) if j.id == job), None)


def detached(live, job: str) -> bool:
    kept = kept_job(live, job)
    return kept is not None and kept.sink is None


def test_resume_replays_a_result_finished_while_disconnected(live):
    gate = live.engine.hold("kept")
    with connected(live.url) as (client, _):
        job = send(client, "kept", keep_result=True, seed=77)
        assert gate.reached.wait(TIMEOUT)
        key = client.resume_keys[job]
    wait_until(lambda: detached(live, job), what="the server to notice the drop")
    gate.release.set()
    wait_until(lambda: kept_job(live, job).state == "done", what="the kept job to finish")
    with connected(live.url) as (client, rec):
        client.resume(job, key)
        resumed = rec.finished(job)
        assert isinstance(resumed, ResultReceived)
        fresh_sub = submit(prompt="kept", seed=77, job="job-kept-again")
        fresh = client.run_job(fresh_sub, {"image": image_frame(fresh_sub, PIXELS)}, timeout=TIMEOUT)
    assert resumed.result.seeds == (77,) and len(resumed.frames) == 1
    assert decode_pixels(resumed.frames[0]) == decode_pixels(fresh.frames[0])
    with connected(live.url) as (client, rec):  # a result is handed out once
        client.resume(job, key)
        error = rec.wait(lambda e: isinstance(e, Error) and e.job == job)
        assert error.code == "unknown_job"


def test_resume_streams_the_rest_of_a_running_job(live):
    gate = live.engine.hold("streamed")
    with connected(live.url) as (client, _):
        job = send(client, "streamed", keep_result=True, steps=6)
        assert gate.reached.wait(TIMEOUT)
        key = client.resume_keys[job]
    wait_until(lambda: detached(live, job), what="the server to notice the drop")
    with connected(live.url) as (client, rec):
        client.resume(job, key)
        wait_until(lambda: not detached(live, job), what="the server to re-attach the job")
        gate.release.set()
        result = rec.finished(job)
    assert isinstance(result, ResultReceived) and len(result.frames) == 1
    assert [p.step for p in rec.for_job(job, Progress)][0] == 2  # the steps after the drop arrive here
    assert live.engine.outcome("streamed") == "done"


def test_resume_a_job_that_was_still_queued_when_dropped(live):
    gate = live.engine.hold("ahead")
    with connected(live.url) as (other, other_rec):
        ahead = send(other, "ahead")
        assert gate.reached.wait(TIMEOUT)
        with connected(live.url) as (client, rec):
            job = send(client, "waiting", keep_result=True)
            rec.wait(lambda e: isinstance(e, Queued) and e.job == job)
            key = client.resume_keys[job]
        wait_until(lambda: detached(live, job), what="the server to notice the drop")
        with connected(live.url) as (client, rec):
            client.resume(job, key)
            queued = rec.wait(lambda e: isinstance(e, Queued) and e.job == job)
            assert queued.position == 0
            gate.release.set()
            assert isinstance(rec.finished(job), ResultReceived)
        assert isinstance(other_rec.finished(ahead), ResultReceived)
    assert live.engine.order() == ["ahead", "waiting"]


def test_kept_results_expire(make_live):
    server = make_live(keep_results_s=0)
    gate = server.engine.hold("expiring")
    with connected(server.url) as (client, rec):
        job = send(client, "expiring", keep_result=True)
        assert gate.reached.wait(TIMEOUT)
        key = client.resume_keys[job]
    wait_until(lambda: detached(server, job), what="the server to notice the drop")
    gate.release.set()
    wait_until(lambda: kept_job(server, job).state == "done", what="the kept job to finish")
    time.sleep(0.05)  # past keep_results_s = 0
    with connected(server.url) as (client, rec):
        client.resume(job, key)
        error = rec.wait(lambda e: isinstance(e, Error) and e.job == job)
    assert error.code == "unknown_job" and "expired" in error.message


def test_resume_of_an_unknown_job_is_a_clear_error(live):
    with connected(live.url) as (client, rec):
        client.resume("never-submitted")
        error = rec.wait(lambda e: isinstance(e, Error))
    assert (error.code, error.job, error.field) == ("unknown_job", "never-submitted", "job")


# ------------------------------------------------------------------------------------------------ fairness
def test_two_clients_take_turns(live):
    gate = live.engine.hold("a0")
    with connected(live.url) as (a, a_rec), connected(live.url) as (b, b_rec):
        send(a, "a0")
        assert gate.reached.wait(TIMEOUT)
        a_jobs = [send(a, f"a{i}") for i in (1, 2, 3)]
        wait_until(lambda: all(a_rec.for_job(j, Queued) for j in a_jobs), what="a's jobs to queue")
        assert [positions(a_rec, j)[-1] for j in a_jobs] == [0, 1, 2]
        b_jobs = [send(b, f"b{i}") for i in (1, 2)]
        # b's jobs slot in between a's: a1 b1 a2 b2 a3
        expected = {"job-a1": 0, "job-b1": 1, "job-a2": 2, "job-b2": 3, "job-a3": 4}

        def latest() -> dict[str, int]:
            out = {}
            for rec, jobs in ((a_rec, a_jobs), (b_rec, b_jobs)):
                for j in jobs:
                    seen = positions(rec, j)
                    if seen:
                        out[j] = seen[-1]
            return out

        wait_until(lambda: latest() == expected, what=f"positions {expected}")
        gate.release.set()
        for rec, jobs in ((a_rec, ["job-a0", *a_jobs]), (b_rec, b_jobs)):
            for j in jobs:
                assert isinstance(rec.finished(j), ResultReceived)
    assert live.engine.order() == ["a0", "a1", "b1", "a2", "b2", "a3"]
    # a3 moves back as b's jobs slot in ahead of it, then forward as jobs start
    assert positions(a_rec, "job-a3") == [2, 3, 4, 3, 2, 1, 0]


def test_queue_full_is_per_client(make_live):
    server = make_live(max_queued_jobs=2)
    gate = server.engine.hold("q1")
    with connected(server.url) as (client, rec):
        send(client, "q1")
        assert gate.reached.wait(TIMEOUT)
        send(client, "q2")
        third = send(client, "q3")
        error = rec.wait(lambda e: isinstance(e, Error) and e.job == third)
        assert (error.code, error.field) == ("queue_full", "job")
        with connected(server.url) as (other, other_rec):  # the limit is per client: another one may queue
            other_job = send(other, "other")
            other_rec.wait(lambda e: isinstance(e, Queued) and e.job == other_job)
            gate.release.set()
            assert isinstance(rec.finished("job-q2"), ResultReceived)
            assert isinstance(other_rec.finished(other_job), ResultReceived)
    assert server.engine.order() == ["q1", "q2", "other"]
    quick_job(server.url)


# ------------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize(("exc", "code"), [
    (EngineError("out_of_memory", "CUDA out of memory (simulated)"), "out_of_memory"),
    (MemoryError(), "out_of_memory"),
    (EngineError("model_load_failed", "could not load model 'demo' (simulated)"), "model_load_failed"),
    (RuntimeError("simulated crash"), "internal"),
])
def test_a_failing_job_becomes_an_error_and_the_worker_keeps_serving(live, exc, code):
    live.engine.fail_next(exc)
    with connected(live.url) as (client, _):
        sub = submit(prompt="doomed")
        with pytest.raises(ProtocolError) as info:
            client.run_job(sub, {"image": image_frame(sub, PIXELS)}, timeout=TIMEOUT)
        assert info.value.code == code and info.value.job == sub.job
        ok = submit(prompt="after")
        result = client.run_job(ok, {"image": image_frame(ok, PIXELS)}, timeout=TIMEOUT)
    assert result.result.images == 1
    assert np.frombuffer(decode_pixels(result.frames[0]), np.uint8).size == 64 * 64 * 4
