"""Fuzz: whatever arrives, the decoders and sessions raise ProtocolError and nothing else.

Every test here runs a weighted share of the FUZZ profile (cheap inputs get more examples): about 1,000
examples in all locally and over 10,000 under CI=true. ``test_fuzz_examples_really_ran`` counts the examples the
test bodies actually ran (running any fuzz test that was not selected) and checks that sum.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib

from hypothesis import given
from hypothesis import strategies as st
from proto_strategies import (
    BPP,
    CI,
    EXAMPLES_RUN,
    PIXEL_FORMATS,
    all_messages,
    frames,
    fuzz,
    json_scalars,
    json_values,
    make_welcome,
    text,
)
from underpaint.protocol import errors
from underpaint.protocol.connection import ClientConnection, JobRequest, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame, FrameLimits, decode_frame
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Cancel,
    Cancelled,
    Error,
    Hello,
    JobInput,
    Limits,
    Progress,
    Queued,
    Result,
    Started,
    Submit,
    decode_message,
)
from underpaint.protocol.pixels import decode_pixels, make_frame

TABLES = (CLIENT_MESSAGES, SERVER_MESSAGES)
LIMITS = Limits(max_pixels=4096, max_frame_bytes=1 << 16, max_queued_jobs=3, max_batch=4, max_steps=50)
SMALL = FrameLimits(max_pixels=4096, max_frame_bytes=1 << 16)


def only_protocol_errors(call, *args):
    """Run ``call``; a ProtocolError is fine (and returned), anything else fails the test."""
    try:
        return call(*args)
    except ProtocolError as exc:
        assert exc.code and exc.message
        return exc


def decode_everything(data: str | bytes) -> None:
    for table in TABLES:
        only_protocol_errors(decode_message, data, table)


def decode_frame_fully(data: bytes, limits: FrameLimits = SMALL) -> None:
    frame = only_protocol_errors(decode_frame, data, limits)
    if isinstance(frame, Frame):
        pixels = only_protocol_errors(decode_pixels, frame)
        assert isinstance(pixels, ProtocolError) or len(pixels) == frame.raw_size


# --------------------------------------------------------------------------------------------- mutations
@st.composite
def mutate(draw, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "truncate", "extend", "set", "insert", "delete")))
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[pos:]
        elif op == "extend":
            buf += draw(st.binary(min_size=1, max_size=16))
        elif op == "set" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del buf[pos:pos + draw(st.integers(1, 8))]
    return bytes(buf)


HEADER_FIELDS = (  # name, struct code, range of values worth trying
    ("magic", "4s", None), ("role", "B", (0, 255)), ("format", "B", (0, 255)), ("encoding", "B", (0, 255)),
    ("job_len", "B", (0, 255)), ("index", "H", (0, 0xFFFF)), ("reserved", "H", (0, 0xFFFF)),
    ("width", "I", (0, 2**32 - 1)), ("height", "I", (0, 2**32 - 1)), ("x", "i", (-(2**31), 2**31 - 1)),
    ("y", "i", (-(2**31), 2**31 - 1)), ("length", "I", (0, 2**32 - 1)),
)


@st.composite
def header_change(draw, data: bytes) -> bytes:
    """Replace 1-3 header fields of an encoded frame with other values of the right width."""
    fields = list(struct.unpack_from(">4sBBBBHHIIiiI", data))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(HEADER_FIELDS) - 1))
        _, _, bounds = HEADER_FIELDS[i]
        if bounds is None:
            fields[i] = draw(st.binary(min_size=4, max_size=4))
        else:
            near = st.integers(max(bounds[0], fields[i] - 3), min(bounds[1], fields[i] + 3))
            fields[i] = draw(st.integers(*bounds) | near | st.sampled_from(bounds))
    return struct.pack(">4sBBBBHHIIiiI", *fields) + data[32:]


# --------------------------------------------------------------------------------------------- messages
@fuzz(2.5)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_decode_message_on_random_text_and_bytes(data):
    decode_everything(data)


@fuzz(0.7)
@given(json_values)
def test_decode_message_on_random_json(value):
    decode_everything(json.dumps(value))


def _field_names(table: dict) -> list[str]:
    names = {f.name for cls in table.values() for f in dataclasses.fields(cls)}
    return sorted(names | {"preview", "inpaint", "limits", "defaults", "models", "unknown"})


@st.composite
def typed_objects(draw) -> str:
    """A JSON object with a real ``type`` and random values under real field names (and nested objects)."""
    table = draw(st.sampled_from(TABLES))
    kind = draw(st.sampled_from(sorted(table)))
    names = _field_names(table)
    inner = st.sampled_from(names + ["max_size", "grow", "model", "max_pixels", "id"])
    values = json_scalars | st.lists(json_scalars, max_size=3) | st.dictionaries(inner, json_scalars, max_size=3)
    obj = draw(st.dictionaries(st.sampled_from(names), values, max_size=5))
    obj["type"] = kind
    return json.dumps(obj)


@fuzz(0.5)
@given(typed_objects())
def test_decode_message_on_typed_random_objects(data):
    decode_everything(data)


@fuzz(0.6)
@given(st.data())
def test_decode_message_on_mutated_valid_messages(data):
    msg = data.draw(all_messages)
    encoded = msg.encode().encode("utf-8")
    decode_everything(data.draw(mutate(encoded)))
    obj = msg.to_dict()
    key = data.draw(st.sampled_from(sorted(obj)))
    action = data.draw(st.sampled_from(("replace", "delete", "add", "nest")))
    if action == "replace":
        obj[key] = data.draw(json_values)
    elif action == "delete":
        del obj[key]
    elif action == "add":
        obj[data.draw(text(10))] = data.draw(json_values)
    elif isinstance(obj[key], dict) and obj[key]:
        inner = data.draw(st.sampled_from(sorted(obj[key])))
        obj[key][inner] = data.draw(json_values)
    decode_everything(json.dumps(obj))


# --------------------------------------------------------------------------------------------- frames
@fuzz(2.5)
@given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: b"UPF1" + b))
def test_decode_frame_on_random_bytes(data):
    decode_frame_fully(data)
    decode_frame_fully(data, FrameLimits())


@fuzz(0.7)
@given(st.data())
def test_decode_frame_on_mutated_valid_frames(data):
    frame, _ = data.draw(frames())
    encoded = frame.encode()
    mutated = data.draw(mutate(encoded) | header_change(encoded))
    decode_frame_fully(mutated)
    decode_frame_fully(mutated, FrameLimits())


@st.composite
def random_pngs(draw) -> Frame:
    """PNGs with valid CRCs and random IHDR/IDAT contents: exercises the decoder past the CRC check."""
    fmt = draw(st.sampled_from(("gray8", "rgb8", "graya8", "rgba8", "gray16", "graya16", "rgba16")))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    stride = width * BPP[fmt]
    colour = {"gray8": 0, "rgb8": 2, "graya8": 4, "rgba8": 6, "gray16": 0, "graya16": 4, "rgba16": 6}[fmt]
    ihdr = [width, height, 16 if "16" in fmt else 8, colour, 0, 0, 0]
    if draw(st.booleans()):
        ihdr[draw(st.integers(0, 6))] = draw(st.integers(0, 255))
    rows = b"".join(bytes([draw(st.integers(0, 6))]) + draw(st.binary(min_size=stride, max_size=stride))
                    for _ in range(height))
    idat = zlib.compress(draw(mutate(rows)) if draw(st.booleans()) else rows)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    parts = [chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr)), chunk(b"IDAT", idat), chunk(b"IEND", b"")]
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    payload = b"\x89PNG\r\n\x1a\n" + b"".join(parts)
    return Frame(job="j1", role="result", width=width, height=height, pixel_format=fmt, payload=payload,
                 encoding="png")


@fuzz(0.6)
@given(random_pngs() | st.builds(
    lambda fmt, w, h, payload: Frame(job="j1", role="image", width=w, height=h, pixel_format=fmt,
                                     payload=payload, encoding="zlib"),
    st.sampled_from(PIXEL_FORMATS), st.integers(1, 8), st.integers(1, 8),
    st.binary(max_size=64) | st.binary(max_size=300).map(zlib.compress) | st.binary(max_size=64).map(
        lambda b: zlib.compress(b)[: len(b) // 2]),
))
def test_decode_pixels_on_random_payloads(frame):
    decode_frame_fully(frame.encode())


# --------------------------------------------------------------------------------------------- sessions
JOBS = ("j1", "j2", "j3", "j4")
pool = st.sampled_from(JOBS)


def _welcome(protocol: int = 2):
    return make_welcome(LIMITS, protocol=protocol)


def _submit(job: str, kind: str, **kw) -> Submit:
    roles = ("image", "mask") if kind == "inpaint" else ("image",)
    tiles = kw.pop("tiles", 1)
    return Submit(job=job, kind=kind, inputs=tuple(JobInput(role=r, tiles=tiles) for r in roles), **kw)


@st.composite
def client_inputs(draw):
    """What a server might receive: real client messages on a small job pool, their frames, and junk."""
    job = draw(pool)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return _submit(job, draw(st.sampled_from(("img2img", "inpaint", "outpaint"))),
                       steps=draw(st.integers(1, 60)), batch=draw(st.integers(1, 5)),
                       tiles=draw(st.integers(1, 3))).encode()
    if choice == 1:
        return draw(st.sampled_from((Cancel(job=job).encode(), Hello(protocol=draw(st.integers(1, 3)),
                                                                     client="c").encode())))
    if choice in (2, 3):
        role = draw(st.sampled_from(("image", "image", "mask", "result", "control")))
        fmt = "gray8" if role == "mask" else draw(st.sampled_from(("rgba8", "gray8")))
        w, h = draw(st.integers(1, 80)), draw(st.integers(1, 4))
        return make_frame(job, role, bytes(w * h * BPP[fmt]), w, h, fmt, x=draw(st.integers(0, 1)) * w,
                          index=draw(st.integers(0, 2))).encode()
    if choice == 4:
        frame, _ = draw(frames())
        return draw(mutate(frame.encode()))
    if choice == 5:
        return json.dumps(draw(json_values))
    return draw(mutate(_submit(job, "inpaint").encode().encode()))


@fuzz(0.4)
@given(st.lists(client_inputs(), max_size=8), st.booleans())
def test_server_connection_on_random_sequences(inputs, handshake):
    conn = ServerConnection(LIMITS)
    if handshake:
        conn.receive_text(Hello(protocol=2, client="c", features=("kind:img2img", "kind:inpaint")).encode())
        conn.accept(_welcome())
    for data in inputs:
        receive = conn.receive_bytes if isinstance(data, bytes) and data[:4] == b"UPF1" else conn.receive_text
        out = only_protocol_errors(receive, data)
        assert len(conn.active) + len(conn._pending) <= LIMITS.max_queued_jobs
        if isinstance(out, ProtocolError):
            conn.send(Error.from_exception(out))  # like a transport: the error ends the job it names
        for event in out if isinstance(out, list) else []:
            if isinstance(event, JobRequest):
                assert event.submit.kind in ("img2img", "inpaint")  # outpaint was not advertised by both
                assert event.image().role == "image" and event.image().job == event.submit.job
                assert (event.mask() is not None) == (event.submit.kind == "inpaint")
                assert conn.send(Cancelled(job=event.submit.job)) is not None
                assert conn.send(Cancelled(job=event.submit.job)) is None  # one terminal event per job
    only_protocol_errors(conn.receive_bytes, b"\x00" * 40)


@st.composite
def server_inputs(draw):
    """What a client might receive: server messages on a small job pool, result/preview frames, and junk."""
    job = draw(pool)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.sampled_from((Queued(job=job, position=0), Started(job=job),
                                     Progress(job=job, step=1, total=2), Cancelled(job=job),
                                     Result(job=job, images=draw(st.integers(0, 2)))))).encode()
    if choice in (1, 2):
        role = draw(st.sampled_from(("result", "preview", "image")))
        return make_frame(job, role, bytes(4), 1, 1, "rgba8").encode()
    if choice == 3:
        frame, _ = draw(frames())
        return draw(mutate(frame.encode()))
    if choice == 4:
        return draw(mutate(_welcome().encode().encode()))
    if choice == 5:
        return draw(st.sampled_from((_welcome().encode(), _welcome(protocol=3).encode(), _welcome(1).encode())))
    return json.dumps(draw(json_values))


@fuzz(0.4)
@given(st.lists(server_inputs(), max_size=8), st.booleans())
def test_client_connection_on_random_sequences(inputs, handshake):
    conn = ClientConnection("fuzz", frame_limits=SMALL)
    conn.hello()
    if handshake:
        conn.receive_text(_welcome().encode())
        for job in JOBS[:3]:
            conn.submit(Submit(job=job, kind="img2img"), {"image": make_frame(job, "image", bytes(4), 1, 1, "rgba8")})
    for data in inputs:
        receive = conn.receive_bytes if isinstance(data, bytes) and data[:4] == b"UPF1" else conn.receive_text
        only_protocol_errors(receive, data)
        assert conn.jobs <= set(JOBS[:3])
    lost = conn.close()
    assert all(e.code == errors.CONNECTION_LOST and e.job in JOBS for e in lost) and conn.jobs == frozenset()


@fuzz(1.5)
@given(st.binary(max_size=120) | st.text(max_size=120), st.booleans())
def test_connections_on_raw_garbage(data, as_text):
    for conn in (ServerConnection(LIMITS), ClientConnection("fuzz")):
        if isinstance(conn, ClientConnection):
            conn.hello()
        payload = data if isinstance(data, bytes) or not as_text else data.encode("utf-8")
        only_protocol_errors(conn.receive_text, data)
        if isinstance(payload, bytes):
            only_protocol_errors(conn.receive_bytes, payload)


FUZZ_TESTS = [name for name in dir() if name.startswith("test_") and hasattr(globals()[name], "hypothesis")]


def test_fuzz_examples_really_ran():
    """The decoders saw the budget: at least 10,000 examples under CI (1,000 locally), counted in the test
    bodies as they ran. Fuzz tests deselected in this session are run here, so the count is always complete."""
    assert len(FUZZ_TESTS) == 10
    for name in FUZZ_TESTS:
        if EXAMPLES_RUN[name] == 0:
            globals()[name]()
    ran = {name: EXAMPLES_RUN[name] for name in FUZZ_TESTS}
    configured = {name: globals()[name]._hypothesis_internal_use_settings.max_examples for name in FUZZ_TESTS}
    assert all(ran[n] >= configured[n] for n in FUZZ_TESTS), {n: (ran[n], configured[n]) for n in FUZZ_TESTS}
    assert sum(ran.values()) >= (10_000 if CI else 1_000), ran
