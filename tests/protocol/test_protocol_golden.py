"""Golden vectors: today's code must produce exactly the checked-in bytes, so any wire change is deliberate.

Regenerate with ``.venv/bin/python tests/protocol/make_golden.py`` only after a deliberate protocol change.
"""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest
from make_golden import FRAMES, GOLDEN, MESSAGES, schema_text
from underpaint.protocol import vocabulary
from underpaint.protocol.frames import HEADER_SIZE, decode_frame
from underpaint.protocol.messages import CLIENT_MESSAGES, SERVER_MESSAGES, Record, decode_message
from underpaint.protocol.pixels import decode_pixels


def test_every_golden_file_has_a_case_and_back():
    on_disk = {p.name for p in GOLDEN.iterdir()}
    expected = {f"{n}.json" for n in MESSAGES} | {f"{n}.bin" for n in FRAMES} | {"wire_schema.json"}
    assert on_disk == expected
    assert {m.TYPE for m in MESSAGES.values()} == set(CLIENT_MESSAGES) | set(SERVER_MESSAGES)


def test_wire_schema_is_the_checked_in_one():
    """Any change to a field rule, a default, a code table or the frame header changes the bytes some peer
    sends or accepts: it must come with regenerated vectors (and docs/protocol.md)."""
    assert (GOLDEN / "wire_schema.json").read_text(encoding="utf-8") == schema_text(), (
        "the wire changed without its golden vectors: run tests/protocol/make_golden.py and update "
        "docs/protocol.md (a change that is not a feature addition needs a new PROTOCOL_VERSION)")


def test_wire_schema_records_the_version_and_the_tables():
    schema = json.loads((GOLDEN / "wire_schema.json").read_text(encoding="utf-8"))
    assert schema["protocol"] == vocabulary.PROTOCOL_VERSION == 2
    assert schema["tables"]["ROLES"]["mask"]["code"] == 2
    assert set(schema["messages"]) >= {"Submit", "JobInput", "Welcome", "Limits"}


def _non_default_fields(value: Record, prefix: str = "") -> set[str]:
    seen = set()
    for spec in value.specs():
        v = getattr(value, spec.name)
        default = spec.default() if callable(spec.default) else spec.default
        if isinstance(v, Record):
            seen |= _non_default_fields(v, f"{prefix}{spec.name}.")
        elif isinstance(v, tuple) and v and isinstance(v[0], Record):
            seen.add(prefix + spec.name)
            for item in v:
                seen |= _non_default_fields(item, f"{prefix}{spec.name}[].")
        if v != default and not isinstance(v, Record):
            seen.add(prefix + spec.name)
    return seen


def _all_fields(cls, prefix: str = "") -> set[str]:
    out = set()
    for spec in cls.specs():
        out.add(prefix + spec.name)
        if hasattr(spec.kind, "specs"):
            out.discard(prefix + spec.name)
            out |= _all_fields(spec.kind, f"{prefix}{spec.name}.")
        if hasattr(spec.item, "specs"):
            out |= _all_fields(spec.item, f"{prefix}{spec.name}[].")
    return out


@pytest.mark.parametrize("cls", [*CLIENT_MESSAGES.values(), *SERVER_MESSAGES.values()], ids=lambda c: c.TYPE)
def test_golden_vectors_set_every_field(cls):
    """Every field of every message travels with a value other than its default in some vector."""
    seen = set().union(*(_non_default_fields(m) for m in MESSAGES.values() if type(m) is cls))
    # a field whose default the vectors cannot avoid: booleans that are True by default get their False case
    missing = _all_fields(cls) - seen
    assert not missing, sorted(missing)


def test_golden_frames_use_every_role_and_encoding():
    assert {c.role for c in FRAMES.values()} == set(vocabulary.ROLES)
    assert {c.encoding for c in FRAMES.values()} == set(vocabulary.ENCODINGS)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_golden_messages(name):
    msg, data = MESSAGES[name], (GOLDEN / f"{name}.json").read_bytes()
    assert msg.encode().encode("utf-8") == data
    table = CLIENT_MESSAGES if msg.TYPE in CLIENT_MESSAGES else SERVER_MESSAGES
    assert decode_message(data, table) == msg
    assert decode_message(data.decode("utf-8"), table) == msg


def test_feature_guarded_field_is_left_out_at_its_default():
    """keep_result needs the 'resume' feature: a peer without it must never see the field."""
    msg = MESSAGES["submit_inpaint"]
    assert not msg.keep_result and b"keep_result" not in (GOLDEN / "submit_inpaint.json").read_bytes()
    assert b'"keep_result":true' in (GOLDEN / "submit_img2img.json").read_bytes()
    assert dataclasses.replace(msg, keep_result=True).to_dict()["keep_result"] is True


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_golden_frames(name):
    case, data = FRAMES[name], (GOLDEN / f"{name}.bin").read_bytes()
    frame = decode_frame(data)
    assert (frame.job, frame.role, frame.width, frame.height, frame.pixel_format, frame.encoding, frame.x, frame.y,
            frame.index) == (case.job, case.role, case.width, case.height, case.pixel_format, case.encoding, case.x,
                             case.y, case.index)
    assert frame.encode() == data
    if case.encoding in ("jpeg", "webp"):
        assert frame.payload == case.payload
    else:
        assert decode_pixels(frame) == case.pixels
    built = case.frame().encode()
    if case.encoding in ("raw", "jpeg", "webp"):
        assert built == data
    else:  # compressed bytes may differ between zlib builds: the header and the decoded pixels may not
        head = HEADER_SIZE + len(case.job)
        assert built[:28] == data[:28] and built[32:head] == data[32:head]
        assert struct.unpack_from(">I", data, 28)[0] == len(data) - head


def test_golden_bgra8_header_bytes():
    """The worked example of docs/protocol.md, byte by byte."""
    data = (GOLDEN / "image_bgra8_raw.bin").read_bytes()
    assert data.hex(" ") == (
        "55 50 46 31 01 02 01 05 00 00 00 00 00 00 00 02 00 00 00 02 ff ff ff f0 00 00 00 20 00 00 00 10 "
        "6a 6f 62 2d 31 00 00 ff ff 00 ff 00 ff ff 00 00 ff ff ff ff 80"
    )
