"""Malformed and hostile input over a raw websocket: each case gets its own error code, and the server goes on
serving other clients' jobs to completion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from server_helpers import TIMEOUT, Raw, connected, image_frame, make_image, mask_frame, quick_job, submit
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import HEADER_SIZE

PIXELS = make_image(64, 64, seed=21)


def result_of(raw: Raw, job: str) -> dict:
    """Read until the job's result or error message (skipping progress and binary frames)."""
    while True:
        message = raw.recv(TIMEOUT)
        if message.get("job") == job and message["type"] in ("result", "error", "cancelled"):
            return message


@pytest.fixture
def raw(live):
    conn = Raw(live.url)
    yield conn
    conn.close()


def test_bad_json_is_reported_and_the_session_goes_on(live, raw):
    assert raw.hello()["type"] == "welcome"
    raw.send("{oops")
    error = raw.recv_error()
    assert error["code"] == "bad_json" and "not valid JSON" in error["message"]
    sub = submit(prompt="after bad json")
    raw.send(sub.to_dict())
    raw.send_frame(image_frame(sub, PIXELS))
    assert result_of(raw, sub.job)["type"] == "result"  # the same connection still works
    quick_job(live.url)


SUB = '{"type":"submit","kind":"img2img","inputs":[{"role":"image"}],'  # + the job and one bad field


@pytest.mark.parametrize(("message", "code", "field"), [
    (SUB + '"job":"j-nan","strength":NaN}', "not_finite", "strength"),
    (SUB + '"job":"j-inf","guidance":Infinity}', "not_finite", "guidance"),
    (SUB + '"job":"j-range","strength":1.5}', "out_of_range", "strength"),
    ('{"type":"submit","job":"j-kind","kind":"txt2img"}', "bad_value", "kind"),
    (SUB + '"job":"j-extra","sneaky":1}', "unknown_field", "sneaky"),
    ('{"type":"submit","job":"bad job id!","kind":"img2img"}', "bad_value", "job"),
    ('{"type":"launch_missiles"}', "unknown_type", "type"),
    ('[1, 2, 3]', "bad_message", None),
])
def test_invalid_submit_fields_name_the_field(live, raw, message, code, field):
    raw.hello()
    raw.send(message)
    error = raw.recv_error()
    assert (error["code"], error["field"]) == (code, field), error
    if code != "unknown_type" and field != "job" and message.startswith("{"):
        assert error["job"] == json.loads(message.replace("NaN", "0").replace("Infinity", "0"))["job"]
    quick_job(live.url)


def test_frames_before_hello_are_refused(live, raw):
    sub = submit()
    raw.send_frame(image_frame(sub, PIXELS))
    error = raw.recv_error()
    assert error["code"] == "not_ready"
    assert raw.hello()["type"] == "welcome"  # not fatal: the handshake can still happen
    raw.send({"type": "hello", "protocol": 2, "client": "raw", "features": []})
    assert raw.recv_error()["code"] == "already_hello"
    quick_job(live.url)


def test_submit_before_hello_is_refused(live, raw):
    raw.send(submit().to_dict())
    assert raw.recv_error()["code"] == "not_ready"
    quick_job(live.url)


def test_cancel_before_the_frames_arrive(live, raw):
    raw.hello()
    sub = submit(job="no-frames-yet")
    raw.send(sub.to_dict())
    raw.send({"type": "cancel", "job": sub.job})
    assert raw.recv() == {"type": "cancelled", "job": sub.job}
    raw.send_frame(image_frame(sub, PIXELS))  # its frame, still on the way: dropped quietly
    raw.send({"type": "cancel", "job": sub.job})  # a cancel of an ended job is moot: no answer
    after = submit(prompt="after the cancel")
    raw.send(after.to_dict())
    raw.send_frame(image_frame(after, PIXELS))
    message = raw.recv(TIMEOUT)
    assert message.get("job") == after.job, message  # no error about the cancelled job came first
    assert result_of(raw, after.job)["type"] == "result"


def test_mask_size_mismatch(live, raw):
    raw.hello()
    sub = submit("inpaint")
    raw.send(sub.to_dict())
    raw.send_frame(image_frame(sub, PIXELS))
    raw.send_frame(mask_frame(sub, np.full((32, 32), 255, np.uint8)))
    error = raw.recv_error()
    assert (error["code"], error["field"], error["job"]) == ("size_mismatch", "mask", sub.job)
    quick_job(live.url)


def test_frame_for_a_job_that_was_never_submitted(live, raw):
    raw.hello()
    raw.send_frame(image_frame(submit(job="ghost"), PIXELS))
    error = raw.recv_error()
    # the error names no job (naming one ends it on the client), but its sentence says which
    assert (error["code"], error["job"]) == ("unexpected_frame", None) and "'ghost'" in error["message"]
    quick_job(live.url)


def test_corrupt_frame_header(live, raw):
    raw.hello()
    sub = submit()
    raw.send(sub.to_dict())
    data = bytearray(image_frame(sub, PIXELS).encode())
    data[:4] = b"NOPE"
    raw.send_frame(bytes(data))
    assert raw.recv_error()["code"] == "bad_frame"
    raw.send_frame(image_frame(sub, PIXELS).encode()[:HEADER_SIZE + 10])
    assert raw.recv_error()["code"] == "truncated_frame"
    quick_job(live.url)


def test_unknown_model(live):
    with connected(live.url) as (client, _):
        sub = submit(model="no-such-model")
        with pytest.raises(ProtocolError) as info:
            client.run_job(sub, {"image": image_frame(sub, PIXELS)}, timeout=TIMEOUT)
    assert (info.value.code, info.value.field) == ("unknown_model", "model")
    assert "no-such-model" in info.value.message
    quick_job(live.url)


def test_strength_times_steps_below_one(live):
    with connected(live.url) as (client, _):
        sub = submit(strength=0.1, steps=5)
        with pytest.raises(ProtocolError) as info:
            client.run_job(sub, {"image": image_frame(sub, PIXELS)}, timeout=TIMEOUT)
    assert (info.value.code, info.value.field) == ("out_of_range", "strength")
    assert live.engine.order() == []  # refused before the engine
    quick_job(live.url)


def test_duplicate_job_id(live, raw):
    """A second submit with an id in flight is refused; the error names no job, since the first one goes on."""
    raw.hello()
    waiting = submit(job="twice")
    raw.send(waiting.to_dict())  # still waiting for its frames
    raw.send(waiting.to_dict())
    error = raw.recv_error()
    assert (error["code"], error["job"]) == ("duplicate_job", None) and "'twice'" in error["message"]
    raw.send_frame(image_frame(waiting, PIXELS))
    assert result_of(raw, "twice")["type"] == "result"  # the first submit was not disturbed
    gate = live.engine.hold("held twice")
    running = submit(job="twice-running", prompt="held twice")
    raw.send(running.to_dict())
    raw.send_frame(image_frame(running, PIXELS))
    assert gate.reached.wait(TIMEOUT)
    raw.send(running.to_dict())  # the same id while it runs
    error = raw.recv_error()
    assert (error["code"], error["job"]) == ("duplicate_job", None) and "'twice-running'" in error["message"]
    gate.release.set()
    assert result_of(raw, "twice-running")["type"] == "result"
    quick_job(live.url)


def test_incompatible_protocol_version_closes_the_session(live, raw):
    error = raw.hello(protocol=99)
    assert error["type"] == "error" and error["code"] == "incompatible_version"
    assert error["message"] == ("this server speaks Underpaint protocol 2 but the plugin speaks protocol 99: "
                                "upgrade the Underpaint server to a release for protocol 99")
    assert raw.close_code() == 1008
    quick_job(live.url)


def test_a_v1_plugin_is_told_to_update(live, raw):
    """A protocol-1 hello (no features field) gets the upgrade sentence, not a complaint about its fields."""
    raw.send({"type": "hello", "protocol": 1, "client": "krita", "client_version": "0.3", "token": None})
    error = raw.recv()
    assert (error["type"], error["code"], error["field"]) == ("error", "incompatible_version", "protocol")
    assert error["message"] == ("this server speaks Underpaint protocol 2 but the plugin speaks protocol 1: "
                                "update the Underpaint plugin (Krita/GIMP) to a release for protocol 2")
    assert raw.close_code() == 1008
    quick_job(live.url)


def test_foreign_origin_is_refused(live):
    raw = Raw(live.url, origin="https://evil.example")
    try:
        error = raw.recv_error()
        assert (error["code"], error["field"]) == ("forbidden_origin", "origin")
        assert "https://evil.example" in error["message"]
        assert raw.close_code() == 1008
    finally:
        raw.close()
    quick_job(live.url)


def test_allowed_origin_may_connect(make_live):
    server = make_live(allow_origins=("https://studio.example",))
    raw = Raw(server.url, origin="https://studio.example")
    try:
        assert raw.hello()["type"] == "welcome"
    finally:
        raw.close()


def test_oversize_frame_is_too_large(make_live):
    limit = 64 * 1024
    server = make_live(max_frame_bytes=limit)
    raw = Raw(server.url)
    try:
        assert raw.hello()["limits"]["max_frame_bytes"] == limit
        raw.send_frame(b"\x00" * (limit + 1))
        error = raw.recv_error()
        assert error["code"] == "too_large" and str(limit) in error["message"]
        raw.send_frame(b"\x00" * limit)  # at the limit: read, and refused for what it is
        assert raw.recv_error()["code"] == "bad_frame"
    finally:
        raw.close()
    quick_job(server.url)


def test_frame_beyond_the_websocket_limit_closes_only_that_connection(make_live):
    limit = 64 * 1024
    server = make_live(max_frame_bytes=limit)
    raw = Raw(server.url)
    try:
        raw.hello()
        raw.send_frame(b"\x00" * (limit + 200_000))
        assert raw.close_code() == 1009  # message too big, refused by the websocket layer
    finally:
        raw.close()
    quick_job(server.url)


def test_image_over_max_pixels(make_live):
    server = make_live(max_pixels=32 * 32)
    raw = Raw(server.url)
    try:
        raw.hello()
        sub = submit()
        raw.send(sub.to_dict())
        raw.send_frame(image_frame(sub, PIXELS))
        error = raw.recv_error()
        assert error["code"] == "too_large" and error["job"] == sub.job
    finally:
        raw.close()
    small = submit()
    with connected(server.url) as (client, _):
        result = client.run_job(small, {"image": image_frame(small, PIXELS[:32, :32])}, timeout=TIMEOUT)
    assert result.result.images == 1


def test_raw_queue_full(make_live):
    server = make_live(max_queued_jobs=2)
    raw = Raw(server.url)
    try:
        raw.hello()
        for job in ("p1", "p2", "p3"):
            raw.send(submit(job=job).to_dict())  # frames never sent: each stays in flight
        error = raw.recv_error()
        assert (error["code"], error["job"]) == ("queue_full", "p3")
    finally:
        raw.close()
    quick_job(server.url)
