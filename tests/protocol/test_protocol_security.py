"""Issue #11, protocol side: resume keys, bounded buffering, strict text/zlib/offsets, not_ready before hello."""

from __future__ import annotations

import json
import zlib

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors
from underpaint.protocol.connection import ClientConnection, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import FrameLimits, decode_frame
from underpaint.protocol.messages import CLIENT_MESSAGES, JobInput, Limits, Queued, Resume, Submit, decode_message
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.vocabulary import features

LIMITS = Limits(max_pixels=2048 * 2048 * 4, max_frame_bytes=2048 * 2048 * 4 + 4096, max_queued_jobs=4,
                max_batch=4, max_steps=50, keep_results_s=60)
WELCOME = make_welcome(LIMITS, features=features())
KEY = "Xo3lTq9v0pWmQzA7cKdN2sYb8uHfRjEe"


def ready(limits: Limits = LIMITS, **kwargs) -> ServerConnection:
    server = ServerConnection(limits, **kwargs)
    server.receive_text(ClientConnection("t").hello())
    server.accept(make_welcome(limits, features=features()))
    return server


def expect(code: str, call, *args) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    assert info.value.code == code, info.value
    return info.value


def tiles_submit(job: str, n: int) -> str:
    return Submit(job=job, kind="img2img", inputs=(JobInput(role="image", tiles=n),)).encode()


def tile(job: str, i: int, side: int = 2048) -> bytes:
    return make_frame(job, "image", bytes(side * side * 4), side, side, "rgba8", x=side * (i % 64), y=0,
                      index=i).encode()


# ----------------------------------------------------------------------------- item 1: resume keys
def test_client_keeps_the_resume_key_of_a_kept_job_and_presents_it():
    client = ClientConnection("t")
    client.hello()
    client.receive_text(WELCOME.encode())
    image = make_frame("j1", "image", bytes(16), 2, 2, "rgba8")
    client.submit(Submit(job="j1", kind="img2img", keep_result=True), {"image": image})
    client.receive_text(Queued(job="j1", position=0, resume_key=KEY).encode())
    assert client.resume_keys == {"j1": KEY}
    client.close()  # a dropped connection keeps the keys ...
    again = ClientConnection("t")  # ... and a new connection is given them
    again.hello()
    again.receive_text(WELCOME.encode())
    sent = json.loads(again.resume("j1", client.resume_keys["j1"]))
    assert sent == {"type": "resume", "job": "j1", "key": KEY}


def test_resume_key_is_a_feature_guarded_field():
    assert "key" not in Resume(job="j1").to_dict() and "resume_key" not in Queued(job="j", position=1).to_dict()
    text = json.dumps({"type": "resume", "job": "j1", "key": KEY})
    assert decode_message(text, CLIENT_MESSAGES) == Resume(job="j1", key=KEY)
    expect(errors.BAD_VALUE, decode_message, '{"type":"resume","job":"j1","key":"a b"}', CLIENT_MESSAGES)


# ----------------------------------------------------------------------------- item 2: bounded buffering
def test_oversized_tiles_are_refused_as_they_arrive_not_after_the_last():
    """submit tiles=4096 then 2048x2048 raw tiles: the 5th tile passes 16 Mpx and nothing more is held."""
    limits = Limits(max_pixels=4096 * 4096, max_frame_bytes=2048 * 2048 * 4 + 4096, max_queued_jobs=4,
                    max_batch=4, max_steps=50)
    server = ready(limits)
    server.receive_text(tiles_submit("big", 4096))
    for i in range(4):
        assert server.receive_bytes(tile("big", i)) == []
    exc = expect(errors.TOO_LARGE, server.receive_bytes, tile("big", 4))
    assert exc.job == "big" and "16777216" in exc.message
    assert server.buffered == 0  # the four tiles were let go at once
    for i in range(5, 9):
        assert server.receive_bytes(tile("big", i)) == []  # the rest is dropped, never stored
    assert server.buffered == 0


def test_bytes_held_per_connection_and_per_server_are_capped_and_released():
    from underpaint.protocol.server_connection import BufferPool

    pool = BufferPool(limit=3 * 2048 * 2048 * 4 + 1000)
    one = ready(max_bytes=2 * 2048 * 2048 * 4 + 500, pool=pool)
    one.receive_text(tiles_submit("a", 4))
    one.receive_bytes(tile("a", 0))
    one.receive_bytes(tile("a", 1))
    exc = expect(errors.TOO_LARGE, one.receive_bytes, tile("a", 2))  # over this connection's cap
    assert "this connection" in exc.message and one.buffered == 0 and pool.used == 0
    two, three = ready(pool=pool), ready(pool=pool)
    two.receive_text(tiles_submit("b", 4))
    for i in range(3):
        two.receive_bytes(tile("b", i))
    three.receive_text(tiles_submit("c", 2))
    exc = expect(errors.TOO_LARGE, three.receive_bytes, tile("c", 0))  # the server as a whole is full
    assert "server" in exc.message
    assert two.close() == frozenset({"b"}) and pool.used == 0  # a closed connection gives its bytes back


def test_a_submit_whose_frames_stop_arriving_times_out():
    server = ready()
    server.receive_text(tiles_submit("slow", 2))
    server.receive_bytes(tile("slow", 0, side=64))
    assert server.expire(60.0) == []
    [exc] = server.expire(60.0, now=10**9)
    assert exc.code == errors.MISSING_FRAME and exc.job == "slow" and "60 s" in exc.message
    assert server.buffered == 0
    assert server.receive_bytes(tile("slow", 1, side=64)) == []  # late frames are dropped quietly


# ----------------------------------------------------------------------------- item 7: the small ones
def test_a_prompt_with_a_lone_surrogate_is_bad_value():
    text = '{"type":"submit","job":"j1","kind":"img2img","prompt":"cat \\ud800","inputs":[{"role":"image"}]}'
    exc = expect(errors.BAD_VALUE, decode_message, text, CLIENT_MESSAGES)
    assert exc.field == "prompt" and "surrogate" in exc.message


def test_junk_after_a_zlib_stream_is_refused():
    frame = make_frame("j1", "image", bytes(16), 2, 2, "rgba8", "zlib")
    junk = type(frame)(**{**frame.__dict__, "payload": zlib.compress(bytes(16)) + b"junk"})
    assert decode_pixels(frame) == bytes(16)
    exc = expect(errors.LENGTH_MISMATCH, decode_pixels, junk)
    assert "after the end of the zlib stream" in exc.message


def test_a_frame_that_ends_past_2_31_is_out_of_range():
    data = make_frame("j1", "image", bytes(8 * 4), 8, 1, "rgba8", x=2**31 - 8).encode()
    assert decode_frame(data, FrameLimits(10**6, 10**6)).x == 2**31 - 8
    at_edge = bytearray(data)
    at_edge[20:24] = (2**31 - 1).to_bytes(4, "big")  # header x: 8 pixels from 2^31-1 on
    exc = expect(errors.OUT_OF_RANGE, decode_frame, bytes(at_edge), FrameLimits(10**6, 10**6))
    assert exc.field == "x"


@pytest.mark.parametrize("text", ['{"type":"submit","job":"j1"}', '{"type":"nope"}', "[1,2]", "not json"])
def test_anything_malformed_before_hello_is_not_ready(text):
    server = ServerConnection(LIMITS)
    exc = expect(errors.NOT_READY, server.receive_text, text)
    assert "hello" in exc.message
    server.receive_text(ClientConnection("t").hello())  # the session can still start


def test_a_malformed_hello_still_says_what_is_wrong():
    expect(errors.MISSING_FIELD, ServerConnection(LIMITS).receive_text, '{"type":"hello","protocol":2}')


def test_a_job_refused_with_queue_full_gets_exactly_one_error():
    limits = Limits(max_pixels=4096, max_frame_bytes=1 << 16, max_queued_jobs=1, max_batch=1, max_steps=50)
    server = ready(limits)
    server.receive_text(Submit(job="a", kind="img2img", inputs=(JobInput(role="image"),)).encode())
    exc = expect(errors.QUEUE_FULL, server.receive_text,
                 Submit(job="b", kind="img2img", inputs=(JobInput(role="image"),)).encode())
    assert exc.job == "b"
    from underpaint.protocol.messages import Error
    assert server.send(Error.from_exception(exc)) is not None  # its one terminal event
    assert server.receive_bytes(make_frame("b", "image", bytes(16), 2, 2, "rgba8").encode()) == []  # no second


# ----------------------------------------------------------------------------- issue #24: nothing unread is parsed
def test_a_message_before_the_welcome_is_measured_before_it_is_parsed():
    """A hello-sized message is the most a stranger may send: a bigger one is too_large unread (before: parsed
    whole, twice, so a padded v1 hello got incompatible_version and junk got not_ready)."""
    from underpaint.protocol.vocabulary import MAX_HELLO_BYTES

    padded_v1 = json.dumps({"type": "hello", "protocol": 1, "client": "k", "pad": "x" * MAX_HELLO_BYTES})
    for text in (padded_v1, "[" + "0," * MAX_HELLO_BYTES + "0]", padded_v1.encode()):
        server = ServerConnection(LIMITS)
        exc = expect(errors.TOO_LARGE, server.receive_text, text)
        assert str(MAX_HELLO_BYTES) in exc.message and server.state == "new"
    server = ServerConnection(LIMITS)
    assert server.receive_text(ClientConnection("t").hello())[0].client == "t"  # a real hello is far below it


def test_resume_without_the_feature_in_hello_says_the_client_did_not_advertise_it():
    server = ServerConnection(LIMITS)
    server.receive_text(ClientConnection("t", features=("kind:img2img",)).hello())
    server.accept(WELCOME)
    exc = expect(errors.UNSUPPORTED, server.receive_text, Resume(job="j", key=KEY).encode())
    assert exc.message == ("the client did not advertise the 'resume' feature ('resume' is missing from "
                           "hello.features)")
