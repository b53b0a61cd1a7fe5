"""Session state machines: a ClientConnection and a ServerConnection talking through encoded bytes."""

from __future__ import annotations

import json

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors
from underpaint.protocol.connection import (
    ClientConnection,
    Connected,
    JobRequest,
    PreviewReceived,
    ResultReceived,
    ServerConnection,
    State,
)
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame, FrameLimits
from underpaint.protocol.messages import (
    Cancel,
    Cancelled,
    Error,
    Hello,
    JobInput,
    Limits,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
)
from underpaint.protocol.pixels import decode_pixels, make_frame

LIMITS = Limits(max_pixels=64 * 64, max_frame_bytes=64 * 64 * 8 + 200, max_queued_jobs=2, max_batch=4,
                max_steps=50)
WELCOME = make_welcome(LIMITS)


def sub(job="j1", kind="img2img", **kw) -> Submit:
    """A submit announcing one frame of each input role its kind requires (img2img: image; inpaint: + mask)."""
    roles = ("image", "mask") if kind == "inpaint" else ("image",)
    return Submit(job=job, kind=kind, inputs=tuple(JobInput(role=r) for r in roles), **kw)


def inputs(*frames) -> dict:
    return {f.role: f for f in frames}


def csubmit(client: ClientConnection, submit: Submit, *frames, **kw) -> list:
    """``client.submit`` with frames given by position (their roles say which input each one is)."""
    return client.submit(submit, inputs(*frames), **kw)


def image(job="j1", w=8, h=4, x=0, y=0, fmt="rgba8", fill=1):
    return make_frame(job, "image", bytes([fill]) * (w * h * 4 if fmt == "rgba8" else w * h), w, h, fmt, x=x, y=y)


def mask(job="j1", w=8, h=4, x=0, y=0):
    return make_frame(job, "mask", bytes([255]) * (w * h), w, h, "gray8", x=x, y=y)


def result_frame(job="j1", index=0):
    return make_frame(job, "result", bytes([index]) * 16, 2, 2, "rgba8", index=index)


def expect(code, call, *args):
    with pytest.raises(ProtocolError) as info:
        call(*args)
    assert info.value.code == code, info.value
    return info.value


def pair(limits=LIMITS) -> tuple[ClientConnection, ServerConnection]:
    client, server = ClientConnection("test", "1.0", token="t"), ServerConnection(limits)
    [hello] = server.receive_text(client.hello())
    assert hello == server.hello and (hello.protocol, hello.client, hello.token) == (2, "test", "t")
    [connected] = client.receive_text(server.accept(WELCOME if limits is LIMITS else make_welcome(limits)))
    assert isinstance(connected, Connected) and client.welcome == connected.welcome
    return client, server


def deliver(server: ServerConnection, items: list) -> list:
    """Feed what a client produced into the server like its transport: an error is sent at once (ending the job
    it names), then raised."""
    events = []
    for item in items:
        try:
            events += server.receive_bytes(item) if isinstance(item, bytes) else server.receive_text(item)
        except ProtocolError as exc:
            server.send(Error.from_exception(exc))
            raise
    return events


def test_handshake_states():
    client, server = ClientConnection("k"), ServerConnection(LIMITS)
    assert (client.state, server.state) == ("new", "new")
    hello = client.hello()
    assert client.state == "hello_sent"
    expect(errors.ALREADY_HELLO, client.hello)
    server.receive_text(hello)
    assert server.state is State.HELLO_RECEIVED  # until the transport accepts
    client.receive_text(server.accept(WELCOME))
    assert client.state is server.state is State.READY
    expect(errors.ALREADY_HELLO, server.receive_text, hello)
    expect(errors.UNEXPECTED_FRAME, client.receive_text, WELCOME.encode())


def test_welcome_before_hello_is_unexpected():
    expect(errors.UNEXPECTED_FRAME, ClientConnection("k").receive_text, WELCOME.encode())


@pytest.mark.parametrize("version", [0, 1, 3, 999])
def test_server_rejects_other_versions(version):
    server = ServerConnection(LIMITS)
    exc = expect(errors.INCOMPATIBLE_VERSION, server.receive_text, Hello(protocol=version, client="k").encode())
    assert server.state is State.CLOSED and exc.field == "protocol"
    fix = "update the Underpaint plugin" if version < 2 else "upgrade the Underpaint server"
    assert fix in exc.message and f"protocol {version}" in exc.message
    expect(errors.NOT_READY, server.receive_text, Hello(protocol=2, client="k").encode())
    client = ClientConnection("k")
    client.hello()
    [error] = client.receive_text(server.reject(exc))
    assert error.code == errors.INCOMPATIBLE_VERSION and client.state is State.CLOSED


def test_a_v1_hello_gets_incompatible_version_not_a_field_error():
    server = ServerConnection(LIMITS)
    v1 = '{"type":"hello","protocol":1,"client":"underpaint-krita","client_version":"0.1.0","token":null}'
    exc = expect(errors.INCOMPATIBLE_VERSION, server.receive_text, v1)
    assert exc.message == ("this server speaks Underpaint protocol 2 but the plugin speaks protocol 1: update the "
                           "Underpaint plugin (Krita/GIMP) to a release for protocol 2")


@pytest.mark.parametrize("version", [1, 3])
def test_client_rejects_other_versions(version):
    client = ClientConnection("k")
    client.hello()
    welcome = make_welcome(LIMITS, protocol=version)
    exc = expect(errors.INCOMPATIBLE_VERSION, client.receive_text, welcome.encode())
    assert client.state is State.CLOSED and client.welcome is None
    assert ("upgrade the Underpaint server" if version < 2 else "update this plugin") in exc.message


def test_a_v1_welcome_or_a_v1_servers_field_error_says_upgrade_the_server():
    client = ClientConnection("k")
    client.hello()
    v1 = WELCOME.to_dict()
    del v1["features"]
    v1["protocol"] = 1
    exc = expect(errors.INCOMPATIBLE_VERSION, client.receive_text, json.dumps(v1))
    assert "upgrade the Underpaint server to a release for protocol 2" in exc.message
    client = ClientConnection("k")
    client.hello()  # a v1 server does not know hello.features and says so
    [error] = client.receive_text(Error(code=errors.UNKNOWN_FIELD, message="unknown field 'features'",
                                        field="features").encode())
    assert error.code == errors.INCOMPATIBLE_VERSION and "upgrade the Underpaint server" in error.message
    assert client.state is State.CLOSED


def test_fatal_error_during_handshake_closes_the_client():
    client = ClientConnection("k")
    client.hello()
    [error] = client.receive_text(Error(code=errors.BAD_TOKEN, message="wrong token", field="token").encode())
    assert error.to_exception().code == errors.BAD_TOKEN and client.state == "closed"
    expect(errors.NOT_READY, csubmit, client, sub(job="j1", kind="img2img"), image())


def test_nothing_before_hello():
    server = ServerConnection(LIMITS)
    expect(errors.NOT_READY, server.receive_bytes, image().encode())
    expect(errors.NOT_READY, server.receive_text, sub(job="j1", kind="img2img").encode())
    expect(errors.NOT_READY, server.receive_text, Cancel(job="j1").encode())
    client = ClientConnection("k")
    expect(errors.NOT_READY, csubmit, client, sub(job="j1", kind="img2img"), image())
    expect(errors.NOT_READY, client.cancel, "j1")
    expect(errors.NOT_READY, client.resume, "j1")
    client.hello()
    expect(errors.NOT_READY, csubmit, client, sub(job="j1", kind="img2img"), image())


def test_img2img_submit_and_frame_make_a_job_request():
    client, server = pair()
    submit = sub(job="j1", kind="img2img", prompt="a cat", seed=3)
    frame = image(x=-5, y=9)
    out = csubmit(client, submit, frame)
    assert isinstance(out[0], str) and isinstance(out[1], bytes) and len(out) == 2
    assert server.receive_text(out[0]) == []
    [request] = server.receive_bytes(out[1])
    assert request == JobRequest.of(submit, {"image": frame, "mask": None}) == JobRequest(submit, {"image": (frame,)})
    assert server.active == {"j1"} and client.jobs == {"j1"}


def test_inpaint_takes_image_then_mask():
    client, server = pair()
    submit = sub(job="j1", kind="inpaint")
    out = csubmit(client, submit, image(x=3, y=4), mask(x=3, y=4))
    assert len(out) == 3
    assert deliver(server, out[:2]) == []
    [request] = server.receive_bytes(out[2])
    assert request.mask() == mask(x=3, y=4) and request.image() == image(x=3, y=4)


def test_frames_say_their_role_so_a_mask_may_come_first():
    _, server = pair()
    server.receive_text(sub(job="j1", kind="inpaint").encode())
    assert server.receive_bytes(mask().encode()) == []
    [request] = server.receive_bytes(image().encode())
    assert request.mask() == mask() and request.image() == image()


@pytest.mark.parametrize("bad_mask", [mask(w=7), mask(h=5), mask(x=1), mask(y=-1)])
def test_mask_must_cover_the_image_region(bad_mask):
    client, server = pair()
    submit = sub(job="j1", kind="inpaint")
    expect(errors.SIZE_MISMATCH, csubmit, client, submit, image(), bad_mask)
    assert client.jobs == set()
    server.receive_text(submit.encode())
    server.receive_bytes(image().encode())
    exc = expect(errors.SIZE_MISMATCH, server.receive_bytes, bad_mask.encode())
    assert exc.job == "j1" and server.active == {"j1"}  # until its terminal error is sent
    assert server.send(Error.from_exception(exc)) is not None and server.active == set()


def test_wrong_frames_for_a_kind():
    client, server = pair()
    expect(errors.MISSING_FRAME, csubmit, client, sub(job="j1", kind="inpaint"), image())
    expect(errors.UNEXPECTED_FRAME, csubmit, client, sub(job="j1", kind="img2img"), image(), mask())
    expect(errors.UNEXPECTED_FRAME, csubmit, client, sub(job="j1", kind="img2img"), image(job="j2"))
    expect(errors.UNEXPECTED_FRAME, csubmit, client, sub(job="j1", kind="img2img"), mask())
    server.receive_text(sub(job="j1", kind="img2img").encode())
    exc = expect(errors.UNEXPECTED_FRAME, server.receive_bytes, mask().encode())
    assert "announced no mask input" in exc.message and exc.job == "j1"
    expect(errors.UNEXPECTED_FRAME, server.receive_bytes, image(job="j9").encode())


def test_duplicate_jobs():
    client, server = pair()
    submit = sub(job="j1", kind="img2img")
    out = csubmit(client, submit, image())
    expect(errors.DUPLICATE_JOB, csubmit, client, submit, image())
    server.receive_text(out[0])
    expect(errors.DUPLICATE_JOB, server.receive_text, out[0])  # still waiting for its frame
    server.receive_bytes(out[1])
    expect(errors.DUPLICATE_JOB, server.receive_text, out[0])  # active
    client.receive_text(server.send(Cancelled(job="j1")))
    assert server.active == set() and client.jobs == set()
    assert deliver(server, csubmit(client, submit, image()))[0].submit == submit  # the id is free again


def test_queue_full_counts_pending_and_active_jobs():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="a", kind="img2img"), image("a")))
    server.receive_text(sub(job="b", kind="img2img").encode())
    exc = expect(errors.QUEUE_FULL, server.receive_text, sub(job="c", kind="img2img").encode())
    assert exc.job == "c"  # names the refused job: the client ends it
    assert json.loads(server.send(Error.from_exception(exc)))["job"] == "c"
    server.send(Result(job="a", images=0))
    assert server.receive_text(sub(job="c", kind="img2img").encode()) == []


def test_limits_from_welcome_are_enforced_on_both_sides():
    client, server = pair()
    for submit, code, field in [(sub(job="j1", kind="img2img", steps=51), errors.OUT_OF_RANGE, "steps"),
                                (sub(job="j1", kind="img2img", batch=5), errors.OUT_OF_RANGE, "batch")]:
        assert expect(code, csubmit, client, submit, image()).field == field
        exc = expect(code, server.receive_text, submit.encode())
        assert exc.field == field and exc.job == "j1"
        server.send(Error.from_exception(exc))
    big = image(w=65, h=64)
    assert expect(errors.TOO_LARGE, csubmit, client, sub(job="j1", kind="img2img"), big).field == "image"
    server.receive_text(sub(job="j1", kind="img2img").encode())
    server.send(Error.from_exception(expect(errors.TOO_LARGE, server.receive_bytes, big.encode())))
    assert client.jobs == set() and server.active == set()


def test_client_refuses_frames_above_the_servers_byte_limit():
    client, _ = pair(Limits(max_pixels=10**6, max_frame_bytes=1000, max_queued_jobs=2, max_batch=1, max_steps=50))
    exc = expect(errors.TOO_LARGE, csubmit, client, sub(job="j1", kind="img2img"), image(w=16, h=16))
    assert "zlib" in exc.message and client.jobs == set()


def test_a_bad_frame_drops_its_pending_job():
    _, server = pair()
    server.receive_text(sub(job="j1", kind="img2img").encode())
    data = bytearray(image().encode())
    data[31] -= 1  # the header's payload length no longer matches
    exc = expect(errors.LENGTH_MISMATCH, server.receive_bytes, bytes(data))
    assert exc.job == "j1" and server.send(Error.from_exception(exc)) and not server.live("j1")
    assert server.receive_bytes(image().encode()) == []  # the rest of a refused job is dropped quietly
    expect(errors.UNEXPECTED_FRAME, server.receive_bytes, image(job="other").encode())


def test_cancel_of_a_pending_submit_answers_cancelled():
    client, server = pair()
    out = csubmit(client, sub(job="j1", kind="inpaint"), image(), mask())
    deliver(server, out[:2])
    [cancelled] = server.receive_text(client.cancel("j1"))
    assert cancelled == Cancelled(job="j1")
    assert server.receive_bytes(out[2]) == []  # frames already on the way are dropped quietly
    assert client.receive_text(server.send(cancelled)) == [cancelled] and client.jobs == set()


def test_cancel_of_an_active_job_goes_to_the_transport():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="j1", kind="img2img"), image()))
    assert server.receive_text(client.cancel("j1")) == [Cancel(job="j1")]
    assert server.receive_text(Cancel(job="nope").encode()) == []  # not live: it crossed its job's end


def test_job_lifecycle_with_previews_and_result_aggregation():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="j1", kind="img2img", batch=2), image()))
    events = []
    for msg in (Queued(job="j1", position=0), Started(job="j1"), Progress(job="j1", step=1, total=2)):
        events += client.receive_text(server.send(msg))
    assert [type(e) for e in events] == [Queued, Started, Progress]
    jpeg = Frame(job="j1", role="preview", width=4, height=2, pixel_format="rgb8", payload=b"\xff\xd8\xff\xd9",
                 encoding="jpeg")
    assert client.receive_bytes(jpeg.encode()) == [PreviewReceived("j1", jpeg)]
    zlib_preview = make_frame("j1", "preview", bytes(24), 4, 2, "rgb8", "zlib", index=1)
    [got] = client.receive_bytes(zlib_preview.encode())
    assert got == PreviewReceived("j1", zlib_preview) and decode_pixels(got.frame) == bytes(24)
    frames = [result_frame(index=0), result_frame(index=1)]
    for frame in frames:
        assert client.receive_bytes(frame.encode()) == []
    result = Result(job="j1", images=2, seeds=(5, 6), timings={"total": 1.5})
    [done] = client.receive_text(server.send(result))
    assert done == ResultReceived("j1", result, tuple(frames))
    assert client.jobs == set() and server.active == set()
    expect(errors.UNKNOWN_JOB, client.receive_text, Progress(job="j1", step=2, total=2).encode())


def test_result_with_a_missing_frame_is_an_error_and_ends_the_job():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="j1", kind="img2img"), image()))
    [error] = client.receive_text(Result(job="j1", images=1).encode())
    assert isinstance(error, Error) and error.code == errors.MISSING_FRAME and error.job == "j1"
    assert client.jobs == set()  # the error is the job's one terminal event


def test_an_error_for_a_job_ends_it_on_both_sides():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="j1", kind="img2img"), image()))
    deliver(server, csubmit(client, sub(job="j2", kind="img2img"), image("j2")))
    error = Error(code=errors.OUT_OF_MEMORY, message="CUDA out of memory", job="j1")
    assert client.receive_text(server.send(error)) == [error]
    assert client.jobs == {"j2"} and server.active == {"j2"} and client.state == "ready"
    expect(errors.UNKNOWN_JOB, client.receive_bytes, result_frame().encode())
    session_error = Error(code=errors.UNKNOWN_JOB, message="no job 'x' of yours to cancel")
    assert client.receive_text(server.send(session_error)) == [session_error]
    assert client.state == "ready" and server.active == {"j2"}


def test_interleaved_jobs_on_one_connection():
    client, server = pair()
    deliver(server, csubmit(client, sub(job="a", kind="img2img"), image("a")))
    deliver(server, csubmit(client, sub(job="b", kind="inpaint"), image("b"), mask("b")))
    client.receive_bytes(result_frame("b").encode())
    client.receive_bytes(result_frame("a").encode())
    [b] = client.receive_text(Result(job="b", images=1).encode())
    [a] = client.receive_text(Result(job="a", images=1).encode())
    assert a.frames == (result_frame("a"),) and b.frames == (result_frame("b"),)


def test_client_rejects_what_servers_never_send():
    client, _ = pair()
    expect(errors.UNKNOWN_JOB, client.receive_bytes, result_frame("zz").encode())
    expect(errors.UNKNOWN_JOB, client.receive_text, Queued(job="zz", position=1).encode())
    expect(errors.UNKNOWN_TYPE, client.receive_text, sub(job="zz", kind="img2img").encode())
    client.resume("zz")
    expect(errors.UNEXPECTED_FRAME, client.receive_bytes, image("zz").encode())


def test_resume_after_a_reconnect_collects_the_kept_result():
    client, server = pair()
    text = client.resume("j1")
    assert server.receive_text(text) == [Resume(job="j1")]
    client.receive_bytes(result_frame().encode())
    [done] = client.receive_text(Result(job="j1", images=1).encode())
    assert done.frames == (result_frame(),)


def test_client_frame_limits_survive_the_welcome():
    client = ClientConnection("k", frame_limits=FrameLimits(max_pixels=3, max_frame_bytes=10**6))
    client.hello()
    client.receive_text(WELCOME.encode())
    client.resume("j1")
    expect(errors.TOO_LARGE, client.receive_bytes, result_frame().encode())


def test_default_client_limits_accept_big_results():
    client = ClientConnection("k")
    client.hello()
    client.receive_text(WELCOME.encode())
    client.resume("j1")
    frame = make_frame("j1", "result", bytes(256 * 256 * 16), 256, 256, "rgbaf32")
    assert client.receive_bytes(frame.encode()) == []  # larger than the server's own frame limit


def test_errors_never_name_a_job_that_goes_on():
    """A client ends a job on an error naming it, so errors about a live job must not name it."""
    client, server = pair()
    deliver(server, csubmit(client, sub(job="live", kind="img2img"), image("live")))
    server.receive_text(sub(job="wait", kind="inpaint").encode())
    for call, data, code in [
        (server.receive_text, sub(job="live", kind="img2img").encode(), errors.DUPLICATE_JOB),
        (server.receive_text, sub(job="wait", kind="img2img").encode(), errors.DUPLICATE_JOB),
        (server.receive_bytes, image("live").encode(), errors.UNEXPECTED_FRAME),
        (server.receive_text, '{"type":"cancel","job":"live","now":true}', errors.UNKNOWN_FIELD),
    ]:
        exc = expect(code, call, data)
        assert exc.job is None and exc.field in ("job", "now")
    assert server.active == {"live"}
    [request] = deliver(server, [image("wait").encode(), mask("wait").encode()])
    assert request.submit.job == "wait"
    server.send(Cancelled(job="wait"))
    server.receive_text(sub(job="gone", kind="img2img").encode())
    assert expect(errors.UNEXPECTED_FRAME, server.receive_bytes, mask("gone").encode()).job == "gone"
