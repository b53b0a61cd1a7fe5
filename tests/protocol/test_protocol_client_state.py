"""The client's session bookkeeping lives in ``ClientConnection`` (sans-I/O): the welcome becomes ``Connected``,
and resume keys are kept in a dict that outlives one connection, so the threaded client only moves bytes."""

from __future__ import annotations

import json

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors
from underpaint.protocol.connection import ClientConnection, Connected
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import Cancelled, Error, Limits, Queued, Result, Submit
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.vocabulary import features

LIMITS = Limits(max_pixels=64 * 64, max_frame_bytes=64 * 64 * 8, max_queued_jobs=4, max_batch=4, max_steps=50,
                keep_results_s=60)
WELCOME = make_welcome(LIMITS, features=features())
KEY = "Xo3lTq9v0pWmQzA7cKdN2sYb8uHfRjEe"


def ready(keys: dict[str, str]) -> ClientConnection:
    conn = ClientConnection("t", resume_keys=keys)
    conn.hello()
    [connected] = conn.receive_text(WELCOME.encode())
    assert connected == Connected(WELCOME) and conn.welcome == WELCOME
    return conn


def kept_job(conn: ClientConnection, job: str) -> None:
    image = make_frame(job, "image", bytes(16), 2, 2, "rgba8")
    conn.submit(Submit(job=job, kind="img2img", keep_result=True), {"image": image})
    conn.receive_text(Queued(job=job, position=0, resume_key=KEY + job[-1]).encode())


def test_the_welcome_is_reported_as_connected():
    conn = ClientConnection("t")
    conn.hello()
    assert conn.receive_text(WELCOME.encode()) == [Connected(WELCOME)]


def test_a_new_connection_given_the_keys_resumes_with_them():
    keys: dict[str, str] = {}
    first = ready(keys)
    kept_job(first, "j1")
    assert keys == {"j1": KEY + "1"}
    first.close()  # the link dropped: the key stays for the next connection
    assert keys == {"j1": KEY + "1"}
    second = ready(keys)
    assert json.loads(second.resume("j1")) == {"type": "resume", "job": "j1", "key": KEY + "1"}
    second.receive_bytes(make_frame("j1", "result", bytes(16), 2, 2, "rgba8").encode())
    second.receive_text(Result(job="j1", images=1).encode())
    assert keys == {}  # the result arrived: nothing left to resume


def test_an_ended_job_gives_up_its_key_a_lost_connection_does_not():
    keys: dict[str, str] = {}
    conn = ready(keys)
    for job in ("j1", "j2", "j3", "j4"):
        kept_job(conn, job)
    conn.receive_text(Error(code=errors.INTERNAL, message="boom", job="j1").encode())
    conn.receive_text(Cancelled(job="j2").encode())
    conn.receive_text(Error(code=errors.CONNECTION_LOST, message="gone", job="j3").encode())
    assert set(keys) == {"j3", "j4"}
    conn.close()
    assert set(keys) == {"j3", "j4"}


def test_an_error_naming_a_job_drops_its_key():
    """A message the connection refuses for a job (here a result for a job not in flight) is that job's error
    for the caller: its key goes, as the threaded client did before the bookkeeping moved here."""
    keys = {"old": KEY}
    conn = ready(keys)
    with pytest.raises(ProtocolError) as info:
        conn.receive_text(Result(job="old", images=0).encode())
    assert (info.value.code, info.value.job) == (errors.UNKNOWN_JOB, "old")
    assert keys == {}
