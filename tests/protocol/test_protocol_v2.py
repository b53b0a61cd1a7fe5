"""Protocol v2: features both peers advertised, inputs by role driven by the kinds table, one terminal event
per job, and state that only the connections' transitions change."""

from __future__ import annotations

import dataclasses
import json

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors, vocabulary
from underpaint.protocol.connection import ClientConnection, JobRequest, ServerConnection, State
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import (
    Cancelled,
    Error,
    Hello,
    JobInput,
    Limits,
    PreviewOptions,
    Progress,
    Queued,
    Result,
    Started,
    Submit,
)
from underpaint.protocol.pixels import make_frame

LIMITS = Limits(max_pixels=64 * 64, max_frame_bytes=64 * 64 * 8 + 200, max_queued_jobs=4, max_batch=4,
                max_steps=50)
SERVER = vocabulary.features(kinds=("img2img", "inpaint"), roles=(), samplers=("euler",), encodings=("jpeg",),
                             flags=())


def frame(role: str, job: str = "j1", w: int = 8, h: int = 4, x: int = 0, y: int = 0):
    fmt = "gray8" if role == "mask" else "rgba8"
    return make_frame(job, role, bytes(w * h * vocabulary.BYTES_PER_PIXEL[fmt]), w, h, fmt, x=x, y=y)


def pair(server_features=SERVER, client_features=None) -> tuple[ClientConnection, ServerConnection]:
    client, server = ClientConnection("t", features=client_features), ServerConnection(LIMITS)
    server.receive_text(client.hello())
    client.receive_text(server.accept(make_welcome(LIMITS, features=server_features)))
    return client, server


def expect(code, call, *args, **kw) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kw)
    assert info.value.code == code, info.value
    return info.value


# ----------------------------------------------------------------------------- features
def test_only_what_both_advertised_is_common():
    client, server = pair(client_features=("kind:img2img", "kind:outpaint", "sampler:euler", "x.future"))
    assert client.features == server.features == {"kind:img2img", "sampler:euler"}


@pytest.mark.parametrize("submit, field, says", [
    (Submit(job="j1", kind="outpaint"), "kind", "the server does not offer job kind 'outpaint' (it offers: "
     "img2img, inpaint)"),
    (Submit(job="j1", kind="img2img", sampler="lcm"), "sampler", "sampler 'lcm' (it offers: euler)"),
    (Submit(job="j1", kind="img2img", preview=PreviewOptions(encoding="webp")), "preview.encoding", "'webp'"),
    (Submit(job="j1", kind="img2img", keep_result=True), "keep_result", "'resume'"),
])
def test_a_feature_the_server_lacks_is_unsupported_on_both_sides(submit, field, says):
    client, server = pair()
    exc = expect(errors.UNSUPPORTED, client.submit, submit, {"image": frame("image")})
    assert exc.field == field and says in exc.message and client.jobs == set()
    raw = dataclasses.replace(submit, inputs=(JobInput(role="image"),))
    exc = expect(errors.UNSUPPORTED, server.receive_text, raw.encode())
    assert exc.field == field and exc.job == "j1"  # the refused submit is named: its error ends it
    assert json.loads(server.send(Error.from_exception(exc)))["job"] == "j1" and not server.live("j1")
    assert server.receive_bytes(frame("image").encode()) == []  # its frame is dropped quietly


def test_a_feature_the_client_did_not_advertise_is_refused_by_the_server():
    _, server = pair(client_features=("kind:img2img",))
    exc = expect(errors.UNSUPPORTED, server.receive_text,
                 Submit(job="j1", kind="inpaint", inputs=(JobInput(role="image"), JobInput(role="mask"))).encode())
    assert "the client did not advertise job kind 'inpaint'" in exc.message


def test_optional_roles_need_their_feature():
    client, _ = pair()
    exc = expect(errors.UNSUPPORTED, client.submit, Submit(job="j1", kind="img2img"),
                 {"image": frame("image"), "control": frame("control")})
    assert exc.field == "inputs[1].role" and "input role 'control'" in exc.message
    client, server = pair(server_features=SERVER + ("role:control", "role:reference"))
    out = client.submit(Submit(job="j1", kind="img2img"), {"image": frame("image"), "control": frame("control"),
                                                           "reference": frame("reference", w=3, h=3, x=50)})
    events = []
    for data in out:
        events += server.receive_bytes(data) if isinstance(data, bytes) else server.receive_text(data)
    [request] = events
    assert request.frame("reference").width == 3 and request.frame("control") == frame("control")


def test_every_flag_is_advertised_by_default_now_that_live_is_real():
    assert not vocabulary.RESERVED_FLAGS
    assert "live" in vocabulary.features() and "live" in vocabulary.ALL_FEATURES
    assert "resume" in vocabulary.features()
    with pytest.raises(KeyError):
        vocabulary.features(flags=("teleport",))


# ----------------------------------------------------------------------------- the kinds table drives validation
@pytest.mark.parametrize("kind", list(vocabulary.KINDS.values()), ids=lambda k: k.name)
def test_every_kind_requires_its_roles_and_refuses_others(kind):
    client, _ = pair(server_features=vocabulary.features())
    full = {role: frame(role) for role in kind.required}
    for missing in kind.required:
        inputs = {r: f for r, f in full.items() if r != missing}
        exc = expect(errors.MISSING_INPUT, client.submit, Submit(job="j1", kind=kind.name), inputs)
        assert f"a {kind.name} job needs a {missing} input" == exc.message
    for extra in set(vocabulary.INPUT_ROLES) - set(kind.roles):
        exc = expect(errors.UNEXPECTED_INPUT, client.submit, Submit(job="j1", kind=kind.name),
                     {**full, extra: frame(extra)})
        assert f"takes no {extra} input" in exc.message
    out = client.submit(Submit(job="j1", kind=kind.name), full)
    assert [i["role"] for i in json.loads(out[0])["inputs"]] == list(kind.required)


@pytest.mark.parametrize("kind", list(vocabulary.KINDS.values()), ids=lambda k: k.name)
def test_every_kind_describes_itself_for_the_hosts(kind):
    """A host names and describes a kind by its row alone (menus, tooltips, GIMP's procedure blurbs)."""
    assert kind.label and kind.blurb.endswith(".")
    if kind.options is not None:  # its own options travel in a Submit field of that name
        assert kind.options in {spec.name for spec in Submit.specs()}


def test_unknown_input_roles_are_refused_before_anything_else():
    client, _ = pair()
    exc = expect(errors.UNEXPECTED_INPUT, client.submit, Submit(job="j1", kind="img2img"),
                 {"image": frame("image"), "depth": frame("image")})
    assert "'depth' is not an input role" in exc.message


# ----------------------------------------------------------------------------- one terminal event per job
def test_the_server_sends_one_terminal_event_and_nothing_after_it():
    client, server = pair()
    for data in client.submit(Submit(job="j1", kind="img2img"), {"image": frame("image")}):
        server.receive_bytes(data) if isinstance(data, bytes) else server.receive_text(data)
    assert server.send(Queued(job="j1", position=0)) is not None
    assert client.receive_text(server.send(Result(job="j1", images=0)))[0].job == "j1"
    assert server.send(Cancelled(job="j1")) is None  # a second terminal event is never sent
    assert server.send(Progress(job="j1", step=1, total=2)) is None and server.send(Started(job="j1")) is None
    assert server.send_frame(frame("image").encode()) is None  # nor a late frame
    late = json.loads(server.send(Error(code=errors.INTERNAL, message="late", job="j1")))
    assert late["job"] is None  # an error that ends nothing names no job
    assert client.jobs == set()


def test_a_client_disconnect_ends_every_job_in_flight_once():
    client, _ = pair()
    client.submit(Submit(job="a", kind="img2img"), {"image": frame("image", "a")})
    prepared = client.begin_submit(Submit(job="b", kind="img2img"), {"image": frame("image", "b")})
    ended = client.close(ProtocolError(errors.CONNECTION_LOST, "gone"))
    assert {(e.job, e.code, e.message) for e in ended} == {("a", "connection_lost", "gone"),
                                                          ("b", "connection_lost", "gone")}
    assert client.state is State.CLOSED and client.jobs == set()
    assert client.encode_submit(prepared) == []  # it already had its terminal event


def test_a_result_missing_images_is_the_jobs_terminal_error():
    client, _ = pair()
    client.submit(Submit(job="j1", kind="img2img"), {"image": frame("image")})
    [error] = client.receive_text(Result(job="j1", images=2).encode())
    assert (error.code, error.job) == (errors.MISSING_FRAME, "j1") and client.jobs == set()


def test_progress_total_is_fixed_for_a_job():
    client, _ = pair()
    client.submit(Submit(job="j1", kind="img2img"), {"image": frame("image")})
    client.receive_text(Progress(job="j1", step=1, total=12).encode())
    exc = expect(errors.BAD_VALUE, client.receive_text, Progress(job="j1", step=2, total=13).encode())
    assert "from 12 to 13" in exc.message


def test_a_pending_cancel_is_answered_then_ends_the_job():
    client, server = pair()
    out = client.submit(Submit(job="j1", kind="inpaint"), {"image": frame("image"), "mask": frame("mask")})
    server.receive_text(out[0])
    [cancelled] = server.receive_text(client.cancel("j1"))
    assert client.receive_text(server.send(cancelled)) == [cancelled]
    assert server.receive_bytes(out[1]) == [] and not server.live("j1")
    assert client.cancel("j1") is None  # not in flight any more: nothing to send


# ----------------------------------------------------------------------------- transitions, not assignments
def test_state_is_read_only_and_changes_only_by_transitions():
    client, server = ClientConnection("t"), ServerConnection(LIMITS)
    for conn in (client, server):
        with pytest.raises(AttributeError):
            conn.state = State.READY  # type: ignore[misc]
    server.receive_text(client.hello())
    assert (client.state, server.state) == (State.HELLO_SENT, State.HELLO_RECEIVED)
    expect(errors.NOT_READY, server.receive_text, Submit(job="j1", kind="img2img").encode())
    client.receive_text(server.accept(make_welcome(LIMITS)))
    assert client.state is server.state is State.READY
    error = json.loads(server.reject(ProtocolError(errors.BAD_TOKEN, "wrong token", "token")))
    assert error["code"] == "bad_token" and server.state is State.CLOSED
    expect(errors.NOT_READY, server.receive_text, Hello(protocol=2, client="t").encode())
    with pytest.raises(ProtocolError):
        server.accept(make_welcome(LIMITS))
    assert server.close() == frozenset() and client.close() == []


def test_a_fatal_error_sent_closes_the_server_session():
    _, server = pair()
    server.send(Error(code=errors.FORBIDDEN_ORIGIN, message="no"))
    assert server.state is State.CLOSED


def test_job_request_of_frames_in_hand_fills_in_the_inputs():
    request = JobRequest.of(Submit(job="j1", kind="inpaint"), {"image": frame("image"), "mask": frame("mask")},
                            LIMITS)
    assert [i.role for i in request.submit.inputs] == ["image", "mask"] and request.mask() == frame("mask")
    expect(errors.MISSING_INPUT, JobRequest.of, Submit(job="j1", kind="inpaint"), {"image": frame("image")},
           LIMITS)
