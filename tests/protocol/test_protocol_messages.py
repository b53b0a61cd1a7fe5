"""JSON control messages: round trips for every type, defaults, and the exact error for each bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from proto_strategies import ROUNDTRIP, client_messages, server_messages
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    MAX_TEXT_BYTES,
    SERVER_MESSAGES,
    Cancel,
    Cancelled,
    Error,
    Hello,
    InpaintOptions,
    JobInput,
    Limits,
    PreviewOptions,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
    decode_message,
)

C, S = CLIENT_MESSAGES, SERVER_MESSAGES
LIMITS = {"max_pixels": 4194304, "max_frame_bytes": 33554432, "max_queued_jobs": 8, "max_batch": 4,
          "max_steps": 150}
WELCOME = {"type": "welcome", "protocol": 2, "server_version": "0.1.0", "device": "cpu", "features": [],
           "defaults": {"model": "demo"}, "limits": LIMITS}
IMAGE = [{"role": "image", "tiles": 1}]


@ROUNDTRIP
@given(client_messages)
def test_client_messages_round_trip(msg):
    text = msg.encode()
    assert decode_message(text, C) == msg
    assert decode_message(text.encode("utf-8"), C) == msg
    assert json.loads(text)["type"] == msg.TYPE


@ROUNDTRIP
@given(server_messages)
def test_server_messages_round_trip(msg):
    text = msg.encode()
    assert decode_message(text, S) == msg
    assert decode_message(text.encode("utf-8"), S) == msg


def test_tables_hold_exactly_the_documented_types():
    assert sorted(C) == ["cancel", "hello", "live_frame", "live_start", "live_stop", "resume", "submit"]
    assert sorted(S) == ["cancelled", "error", "live_error", "live_result", "live_skipped", "live_started",
                         "live_stopped", "progress", "queued", "result", "started", "welcome"]


@pytest.mark.parametrize("text, table, expected", [
    ('{"type":"hello","protocol":2,"client":"krita","features":[]}', C,
     Hello(protocol=2, client="krita", client_version="", token=None, features=())),
    ('{"type":"submit","job":"j1","kind":"img2img","inputs":[{"role":"image"}]}', C,
     Submit(job="j1", kind="img2img", inputs=(JobInput(role="image", tiles=1),), model=None, prompt="",
            negative_prompt="", strength=0.5, steps=20,
            guidance=7.0, seed=None, batch=1, sampler="default", preview=PreviewOptions(enabled=True, max_size=256,
            every_steps=1, min_interval_ms=0, encoding="jpeg"), inpaint=InpaintOptions(feather=8, grow=0, context=64),
            result_format="rgba8", result_encoding="raw", result_tile=0, keep_result=False)),
    ('{"type":"cancel","job":"j1"}', C, Cancel(job="j1")),
    ('{"type":"resume","job":"j1"}', C, Resume(job="j1")),
    ('{"type":"queued","job":"j1","position":0}', S, Queued(job="j1", position=0)),
    ('{"type":"started","job":"j1"}', S, Started(job="j1", x=0, y=0, width=0, height=0)),
    ('{"type":"progress","job":"j1","step":3,"total":20}', S, Progress(job="j1", step=3, total=20)),
    ('{"type":"result","job":"j1","images":1}', S, Result(job="j1", images=1, seeds=(), timings={})),
    ('{"type":"error","code":"queue_full","message":"m"}', S, Error(code="queue_full", message="m")),
    ('{"type":"cancelled","job":"j1"}', S, Cancelled(job="j1")),
])
def test_minimal_messages_take_documented_defaults(text, table, expected):
    assert decode_message(text, table) == expected


def test_welcome_defaults_and_int_for_float():
    msg = decode_message(json.dumps({**WELCOME, "defaults": {"model": "m", "strength": 1}}), S)
    assert msg.models == () and msg.limits.keep_results_s == 0
    assert msg.defaults.strength == 1.0 and isinstance(msg.defaults.strength, float)


def test_nested_lists_decode_to_tuples():
    model = {"id": "a", "name": "A", "family": "sd15", "resolution": 512, "capabilities": ["inpaint", "new-kind"]}
    msg = decode_message(json.dumps({**WELCOME, "models": [model], "features": ["kind:inpaint", "x.y"]}), S)
    assert msg.models[0].capabilities == ("inpaint", "new-kind") and msg.models[0].default is False
    assert msg.features == ("kind:inpaint", "x.y")  # names this version does not know are carried, not refused


def submit(**extra) -> str:
    return json.dumps({"type": "submit", "job": "j1", "kind": "inpaint", "inputs": IMAGE, **extra})


def submit_with(tail: str) -> str:
    """A submit with raw JSON (NaN, huge numbers) appended before its closing brace."""
    return submit()[:-1] + tail


def result(**extra) -> str:
    return json.dumps({"type": "result", "job": "j1", "images": 1, **extra})


HUGE = "1" + "0" * 400  # an integer far beyond any double

BAD = [
    # (text, table, code, field)
    ("{", C, errors.BAD_JSON, None),
    ("", C, errors.BAD_JSON, None),
    (b"\xff\xfe\xfa", C, errors.BAD_JSON, None),
    ("[" * 100_000 + "]" * 100_000, C, errors.BAD_JSON, None),
    ('{"type":"result","job":"j1","images":' + "9" * 5000 + "}", S, errors.BAD_JSON, None),
    ("[]", C, errors.BAD_MESSAGE, None),
    ('"hello"', C, errors.BAD_MESSAGE, None),
    ("{}", C, errors.MISSING_FIELD, "type"),
    ('{"type":5}', C, errors.MISSING_FIELD, "type"),
    ('{"type":"nope"}', C, errors.UNKNOWN_TYPE, "type"),
    ('{"type":"welcome"}', C, errors.UNKNOWN_TYPE, "type"),
    ('{"type":"submit","job":"j1","kind":"img2img"}', S, errors.UNKNOWN_TYPE, "type"),
    ('{"type":"progress","job":"j1","step":4,"total":3}', S, errors.OUT_OF_RANGE, "step"),
    ('{"type":"progress","job":"j1","step":0,"total":3}', S, errors.OUT_OF_RANGE, "step"),
    ('{"type":"progress","job":"j1","step":1,"total":0}', S, errors.OUT_OF_RANGE, "total"),
    ('{"type":"started","job":"j1","total":3}', S, errors.UNKNOWN_FIELD, "total"),
    (submit(tiles=2), C, errors.UNKNOWN_FIELD, "tiles"),
    (submit(inputs=[{"role": "image", "tiles": 1, "x": 1}]), C, errors.UNKNOWN_FIELD, "inputs[0].x"),
    (submit(inputs=[{"role": "preview"}]), C, errors.BAD_VALUE, "inputs[0].role"),
    (submit(inputs=[{"role": "image"}, {"role": "image"}]), C, errors.BAD_VALUE, "inputs[1].role"),
    (submit(inputs=[{"role": "image", "tiles": 0}]), C, errors.OUT_OF_RANGE, "inputs[0].tiles"),
    (submit(inputs=[{"role": "image", "tiles": 4097}]), C, errors.OUT_OF_RANGE, "inputs[0].tiles"),
    (submit(inputs=[{"role": m} for m in ("image", "mask", "control", "reference", "image")]), C, errors.TOO_LONG,
     "inputs"),
    ('{"type":"hello","protocol":2,"client":"k","features":["Kind:X"]}', C, errors.BAD_VALUE, "features[0]"),
    ('{"type":"hello","protocol":2,"client":"k","features":["' + "f" * 65 + '"]}', C, errors.TOO_LONG,
     "features[0]"),
    ('{"type":"hello","protocol":2,"client":"k","features":"kind:img2img"}', C, errors.BAD_TYPE, "features"),
    ('{"type":"hello","protocol":2,"client":"k"}', C, errors.MISSING_FIELD, "features"),
    (json.dumps({k: v for k, v in WELCOME.items() if k != "features"}), S, errors.MISSING_FIELD, "features"),
    ('{"type":"submit","job":"j1","kind":"img2img"}', C, errors.MISSING_FIELD, "inputs"),
    # unknown fields, top level and nested
    ('{"type":"hello","protocol":2,"client":"k","features":[],"extra":1}', C, errors.UNKNOWN_FIELD, "extra"),
    (submit(preview={"foo": 1}), C, errors.UNKNOWN_FIELD, "preview.foo"),
    (json.dumps({**WELCOME, "limits": {**LIMITS, "gpu": 1}}), S, errors.UNKNOWN_FIELD, "limits.gpu"),
    # missing fields
    ('{"type":"hello","protocol":2,"features":[]}', C, errors.MISSING_FIELD, "client"),
    ('{"type":"submit","job":"j1","inputs":[]}', C, errors.MISSING_FIELD, "kind"),
    ('{"type":"cancel"}', C, errors.MISSING_FIELD, "job"),
    (json.dumps({**WELCOME, "defaults": {}}), S, errors.MISSING_FIELD, "defaults.model"),
    # wrong types
    ('{"type":"hello","protocol":"1","client":"k","features":[]}', C, errors.BAD_TYPE, "protocol"),
    ('{"type":"hello","protocol":true,"client":"k","features":[]}', C, errors.BAD_TYPE, "protocol"),
    ('{"type":"hello","protocol":1.0,"client":"k","features":[]}', C, errors.BAD_TYPE, "protocol"),
    ('{"type":"hello","protocol":2,"client":null,"features":[]}', C, errors.BAD_TYPE, "client"),
    ('{"type":"hello","protocol":2,"client":"k","features":[],"token":5}', C, errors.BAD_TYPE, "token"),
    (submit(strength="0.5"), C, errors.BAD_TYPE, "strength"),
    (submit(strength=True), C, errors.BAD_TYPE, "strength"),
    (submit(keep_result=1), C, errors.BAD_TYPE, "keep_result"),
    (submit(preview=None), C, errors.BAD_TYPE, "preview"),
    (submit(preview=[]), C, errors.BAD_TYPE, "preview"),
    (submit(inpaint={"feather": 1.5}), C, errors.BAD_TYPE, "inpaint.feather"),
    (submit(job=7), C, errors.BAD_TYPE, "job"),
    (json.dumps({**WELCOME, "models": {}}), S, errors.BAD_TYPE, "models"),
    (json.dumps({**WELCOME, "models": [1]}), S, errors.BAD_TYPE, "models[0]"),
    (result(seeds=["1"]), S, errors.BAD_TYPE, "seeds[0]"),
    (result(timings={"unet": "fast"}), S, errors.BAD_TYPE, "timings.unet"),
    (result(timings=[]), S, errors.BAD_TYPE, "timings"),
    # NaN and infinities
    (submit_with(',"strength":NaN}'), C, errors.NOT_FINITE, "strength"),
    (submit_with(',"guidance":Infinity}'), C, errors.NOT_FINITE, "guidance"),
    (submit_with(',"guidance":-Infinity}'), C, errors.NOT_FINITE, "guidance"),
    (submit_with(',"steps":NaN}'), C, errors.BAD_TYPE, "steps"),
    (result().replace("}", ',"timings":{"unet":NaN}}'), S, errors.NOT_FINITE, "timings.unet"),
    (submit_with(',"guidance":1e999}'), C, errors.NOT_FINITE, "guidance"),
    # out of range
    (submit(strength=0), C, errors.OUT_OF_RANGE, "strength"),
    (submit(strength=1.0000001), C, errors.OUT_OF_RANGE, "strength"),
    (submit(steps=0), C, errors.OUT_OF_RANGE, "steps"),
    (submit(steps=1001), C, errors.OUT_OF_RANGE, "steps"),
    (submit(seed=-1), C, errors.OUT_OF_RANGE, "seed"),
    (submit(seed=2**32), C, errors.OUT_OF_RANGE, "seed"),
    (submit(batch=65), C, errors.OUT_OF_RANGE, "batch"),
    (submit(guidance=50.5), C, errors.OUT_OF_RANGE, "guidance"),
    (submit(preview={"max_size": 15}), C, errors.OUT_OF_RANGE, "preview.max_size"),
    (submit(inpaint={"grow": -513}), C, errors.OUT_OF_RANGE, "inpaint.grow"),
    ('{"type":"hello","protocol":-1,"client":"k","features":[]}', C, errors.OUT_OF_RANGE, "protocol"),
    (json.dumps({**WELCOME, "limits": {**LIMITS, "max_batch": 65}}), S, errors.OUT_OF_RANGE, "limits.max_batch"),
    (json.dumps({**WELCOME, "limits": {**LIMITS, "max_pixels": 0}}), S, errors.OUT_OF_RANGE, "limits.max_pixels"),
    (result(images=65), S, errors.OUT_OF_RANGE, "images"),
    (result(seeds=[-1]), S, errors.OUT_OF_RANGE, "seeds[0]"),
    (result(timings={"unet": -0.5}), S, errors.OUT_OF_RANGE, "timings.unet"),
    (result().replace("}", ',"timings":{"unet":' + HUGE + "}}"), S, errors.OUT_OF_RANGE, "timings.unet"),
    (submit_with(',"strength":' + HUGE + "}"), C, errors.OUT_OF_RANGE, "strength"),
    ('{"type":"queued","job":"j1","position":-1}', S, errors.OUT_OF_RANGE, "position"),
    ('{"type":"started","job":"j1","x":-2147483649}', S, errors.OUT_OF_RANGE, "x"),
    ('{"type":"started","job":"j1","width":-1}', S, errors.OUT_OF_RANGE, "width"),
    # values outside the allowed set
    (submit(kind="txt2video"), C, errors.BAD_VALUE, "kind"),
    (submit(sampler="heun"), C, errors.BAD_VALUE, "sampler"),
    (submit(result_format="cmyk8"), C, errors.BAD_VALUE, "result_format"),
    (submit(result_encoding="jpeg"), C, errors.BAD_VALUE, "result_encoding"),
    (submit(preview={"encoding": "gif"}), C, errors.BAD_VALUE, "preview.encoding"),
    (submit(job=""), C, errors.BAD_VALUE, "job"),
    (submit(job="a b"), C, errors.BAD_VALUE, "job"),
    (submit(job="jöb"), C, errors.BAD_VALUE, "job"),
    ('{"type":"cancel","job":"x/y"}', C, errors.BAD_VALUE, "job"),
    (json.dumps({**WELCOME, "models": [{"id": "a", "name": "A", "family": "f", "resolution": 512,
                                         "capabilities": ["Out Paint"]}]}), S, errors.BAD_VALUE,
     "models[0].capabilities[0]"),
    (json.dumps({**WELCOME, "models": [{"id": "a", "name": "A", "family": "f", "resolution": 512}]}), S,
     errors.MISSING_FIELD, "models[0].capabilities"),
    # too long
    (submit(job="j" * 65), C, errors.TOO_LONG, "job"),
    (submit(prompt="p" * 8001), C, errors.TOO_LONG, "prompt"),
    ('{"type":"hello","protocol":2,"features":[],"client":"' + "k" * 65 + '"}', C, errors.TOO_LONG, "client"),
    (result(seeds=[1] * 65), S, errors.TOO_LONG, "seeds"),
    (result(timings={f"t{i}": 1.0 for i in range(33)}), S, errors.TOO_LONG, "timings"),
    # too large as a whole: a megabyte of characters, or of UTF-8 bytes
    (submit(prompt="p" * MAX_TEXT_BYTES), C, errors.TOO_LARGE, None),
    (submit(prompt="p" * MAX_TEXT_BYTES).encode(), C, errors.TOO_LARGE, None),
    (json.dumps({"type": "submit", "job": "j1", "kind": "inpaint", "inputs": IMAGE, "prompt": "é" * 600_000},
                ensure_ascii=False),
     C, errors.TOO_LARGE, None),
]


@pytest.mark.parametrize("text, table, code, field", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_messages_raise_the_specific_error(text, table, code, field):
    with pytest.raises(ProtocolError) as info:
        decode_message(text, table)
    assert info.value.code == code, info.value
    assert info.value.field == field
    assert info.value.message  # always a sentence for the user
    assert code in errors.ALL_CODES


def test_errors_in_a_job_message_name_the_job():
    with pytest.raises(ProtocolError) as info:
        decode_message(submit(job="job-7", steps=0), C)
    assert info.value.job == "job-7"
    with pytest.raises(ProtocolError) as info:
        decode_message('{"type":"cancel","job":"j" }'.replace('"j"', '"' + "j" * 100 + '"'), C)
    assert info.value.code == errors.TOO_LONG and info.value.job == "j" * 64  # capped, never echoed in full


def test_message_limit_counts_utf8_bytes_not_characters():
    ok = json.dumps({"type": "submit", "job": "j1", "kind": "inpaint", "inputs": IMAGE, "prompt": "é" * 4000},
                    ensure_ascii=False)
    assert decode_message(ok, C).prompt == "é" * 4000


def test_encoding_is_compact_utf8_json():
    text = Submit(job="j1", kind="img2img", prompt="café ☕").encode()
    assert " " not in text.replace("café ☕", "") and "café ☕" in text
    assert json.loads(text)["prompt"] == "café ☕"


def test_error_round_trips_through_an_exception():
    exc = ProtocolError(errors.QUEUE_FULL, "at most 8 jobs", "job", "j1")
    msg = Error.from_exception(exc)
    assert msg == Error(code="queue_full", message="at most 8 jobs", job="j1", field="job")
    assert msg.to_exception() == exc
    assert decode_message(msg.encode(), S).to_exception() == exc
    long = Error.from_exception(ProtocolError(errors.INTERNAL, "x" * 5000))
    assert len(long.message) == 4000 and decode_message(long.encode(), S) == long


def test_error_codes_are_unique_and_fatal_ones_known():
    names = [k for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)]
    assert len({getattr(errors, n) for n in names}) == len(names)
    assert errors.FATAL_CODES <= errors.ALL_CODES
    assert errors.FATAL_CODES == {"incompatible_version", "bad_token", "forbidden_origin", "rate_limited"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"max_batch": 0}, "'max_batch' must be between 1 and 64 (got 0)"),
    ({"max_pixels": 0}, "'max_pixels' must be at least 1 (got 0)"),  # no upper bound: not "between 1 and None"
])
def test_range_errors_state_only_the_bounds_that_exist(fields, message):
    values = {"max_pixels": 16, "max_frame_bytes": 16, "max_queued_jobs": 1, "max_batch": 1, "max_steps": 1}
    with pytest.raises(ProtocolError) as info:
        Limits.from_dict({**values, **fields})
    assert (info.value.code, info.value.message) == ("out_of_range", message)
