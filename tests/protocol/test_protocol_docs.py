"""docs/protocol.md stays accurate: every code, message and field is documented, and its examples are real."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from make_golden import GOLDEN, MESSAGES
from underpaint.protocol import errors
from underpaint.protocol.frames import ENCODINGS, FORMATS, ROLES
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Defaults,
    InpaintOptions,
    Limits,
    ModelInfo,
    PreviewOptions,
    decode_message,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_every_error_code_is_in_the_table():
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, re.M))
    assert errors.ALL_CODES <= rows, sorted(errors.ALL_CODES - rows)
    for code in errors.FATAL_CODES:
        assert re.search(rf"^\| `{code}` \|.*\| \*\*yes\*\* \|$", DOC, re.M), code


@pytest.mark.parametrize("cls", [*CLIENT_MESSAGES.values(), *SERVER_MESSAGES.values(), PreviewOptions,
                                 InpaintOptions, ModelInfo, Defaults, Limits], ids=lambda c: c.__name__)
def test_every_message_and_field_is_documented(cls):
    if hasattr(cls, "TYPE") and cls.TYPE:
        assert f"#### `{cls.TYPE}`" in DOC
    for field in dataclasses.fields(cls):
        assert f"`{field.name}`" in DOC, field.name


def test_frame_codes_match_the_header_table():
    for table in (ROLES, FORMATS, ENCODINGS):
        for name, code in table.items():
            assert f"{code} `{name}`" in DOC, name


def test_json_examples_decode_to_the_golden_messages():
    blocks = re.findall(r"```json\n(.*?)```", DOC, re.S)
    assert len(blocks) >= len(CLIENT_MESSAGES) + len(SERVER_MESSAGES)
    golden = {m.encode() for m in MESSAGES.values()}
    for block in blocks:
        text = "".join(line.strip() for line in block.splitlines())
        table = CLIENT_MESSAGES if json.loads(text)["type"] in CLIENT_MESSAGES else SERVER_MESSAGES
        assert decode_message(text, table).encode() in golden, text


def test_hex_example_is_the_golden_frame():
    block = DOC.split("**Worked example**")[1].split("```")[1]
    data = bytes.fromhex(" ".join(re.match(r"((?:[0-9a-f]{2} )+)", line + " ").group(1)
                                  for line in block.splitlines() if re.match(r"[0-9a-f]{2} ", line)))
    assert data == (GOLDEN / "image_bgra8_raw.bin").read_bytes()


def test_sixteen_bit_example_bytes():
    data = (GOLDEN / "image_rgba16_raw.bin").read_bytes()
    assert "`ff ff 00 80 01 00 ff ff`" in DOC and data[37:45].hex(" ") == "ff ff 00 80 01 00 ff ff"
