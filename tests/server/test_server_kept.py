"""Issue #24, item 3: kept jobs (keep_result) of a closed connection stay inside the byte limits, share their
owner's one turn of the round robin, and an owner may keep only so many (the owner: the client's address)."""

from __future__ import annotations

from server_helpers import TIMEOUT, connected, image_frame, make_image, quick_job, submit, wait_until
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.messages import Error, Queued

MIB = 1 << 20
SMALL = make_image(64, 64, seed=5)
BIG = make_image(512, 512, seed=6)  # 1 MiB of rgba8


def send(client, prompt: str, pixels=SMALL, **fields) -> str:
    sub = submit(prompt=prompt, job=f"job-{prompt}", **fields)
    return client.submit(sub, {"image": image_frame(sub, pixels)})


def leave_kept(server, prompts: list[str], pixels=SMALL) -> None:
    """A client that submits kept jobs (queued behind a held one) and drops its connection; returns once the
    server has seen the drop (it detaches the jobs in the same step)."""
    open_before = sum(server.service.connections.values())
    with connected(server.url) as (client, rec):
        for prompt in prompts:
            job = send(client, prompt, pixels, keep_result=True)
            rec.wait(lambda e, job=job: isinstance(e, Queued) and e.job == job)
    wait_until(lambda: sum(server.service.connections.values()) == open_before, 30, "the server to see the drop")


def test_kept_jobs_of_a_closed_connection_count_against_the_servers_bytes(make_live):
    """Before: close() gave back every byte of the connection, also those of kept jobs that go on, so a client
    could reconnect and leave more kept jobs without end."""
    server = make_live(max_buffered_bytes=4 * MIB, max_connection_bytes=64 * MIB)
    gate = server.engine.hold("held")
    with connected(server.url) as (holder, holder_rec):
        held = send(holder, "held")
        assert gate.reached.wait(TIMEOUT)
        leave_kept(server, ["k1", "k2", "k3"], BIG)  # 3 MiB of inputs that go on without their connection
        with connected(server.url) as (client, rec):
            job = send(client, "more", BIG)
            error = rec.finished(job)
        # refused by the session (too_large) or, still arriving, by the websocket layer (closed, 1009)
        assert isinstance(error, Error) and error.code in ("too_large", "connection_lost"), error
        assert "the server holds" in error.message
        gate.release.set()
        assert isinstance(holder_rec.finished(held), ResultReceived)
    quick_job(server.url)  # a small job still fits beside what the kept jobs hold (their results, until resumed)


def test_kept_jobs_of_one_owner_share_one_turn(make_live):
    """Three connections each leave two kept jobs: a new client's job waits behind one of them, not six (before:
    every detached job had a turn of its own)."""
    server = make_live()
    gate = server.engine.hold("held")
    with connected(server.url) as (holder, _):
        send(holder, "held")
        assert gate.reached.wait(TIMEOUT)
        for n in range(3):
            leave_kept(server, [f"a{n}", f"b{n}"])
        with connected(server.url) as (client, rec):
            job = send(client, "fresh")
            queued = rec.wait(lambda e: isinstance(e, Queued) and e.job == job)
            gate.release.set()
            assert isinstance(rec.finished(job), ResultReceived)
    assert queued.position == 1
    order = server.engine.order()
    assert order.index("fresh") == 2, order  # held, then one kept job, then the fresh client's


def test_an_owner_may_keep_only_so_many_jobs(make_live):
    server = make_live(max_kept_jobs=2)
    gate = server.engine.hold("held")
    with connected(server.url) as (holder, _):
        send(holder, "held")
        assert gate.reached.wait(TIMEOUT)
        leave_kept(server, ["k1", "k2"])
        with connected(server.url) as (client, rec):
            refused = send(client, "k3", keep_result=True)
            error = rec.finished(refused)
            plain = send(client, "plain")  # without keep_result: no cap but the usual ones
            rec.wait(lambda e: isinstance(e, Queued) and e.job == plain)
            gate.release.set()
            assert isinstance(rec.finished(plain), ResultReceived)
    assert isinstance(error, Error) and error.code == "queue_full" and error.field == "keep_result"
    assert error.message.startswith("127.0.0.1 already has 2 kept jobs")
