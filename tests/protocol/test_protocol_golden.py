"""Golden vectors: today's code must produce exactly the checked-in bytes, so any wire change is deliberate.

Regenerate with ``.venv/bin/python tests/protocol/make_golden.py`` only after a deliberate protocol change.
"""

from __future__ import annotations

import struct

import pytest
from make_golden import FRAMES, GOLDEN, MESSAGES
from underpaint.protocol.frames import HEADER_SIZE, decode_frame
from underpaint.protocol.messages import CLIENT_MESSAGES, SERVER_MESSAGES, decode_message
from underpaint.protocol.pixels import decode_pixels


def test_every_golden_file_has_a_case_and_back():
    on_disk = {p.name for p in GOLDEN.iterdir()}
    expected = {f"{n}.json" for n in MESSAGES} | {f"{n}.bin" for n in FRAMES}
    assert on_disk == expected
    assert {m.TYPE for m in MESSAGES.values()} == set(CLIENT_MESSAGES) | set(SERVER_MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_golden_messages(name):
    msg, data = MESSAGES[name], (GOLDEN / f"{name}.json").read_bytes()
    assert msg.encode().encode("utf-8") == data
    table = CLIENT_MESSAGES if msg.TYPE in CLIENT_MESSAGES else SERVER_MESSAGES
    assert decode_message(data, table) == msg
    assert decode_message(data.decode("utf-8"), table) == msg


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
