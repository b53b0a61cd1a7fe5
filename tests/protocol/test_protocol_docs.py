"""docs/protocol.md stays accurate: every code, message and field is documented, and its examples are real."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from make_golden import GOLDEN, MESSAGES
from underpaint.protocol import errors, vocabulary
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Defaults,
    InpaintOptions,
    JobInput,
    Limits,
    ModelInfo,
    PreviewOptions,
    UpscaleOptions,
    UpscalerInfo,
    decode_message,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_every_error_code_is_in_the_table():
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, re.M))
    assert errors.ALL_CODES <= rows, sorted(errors.ALL_CODES - rows)
    for code in errors.FATAL_CODES:
        assert re.search(rf"^\| `{code}` \|.*\| \*\*yes\*\* \|$", DOC, re.M), code


@pytest.mark.parametrize("cls", [*CLIENT_MESSAGES.values(), *SERVER_MESSAGES.values(), PreviewOptions,
                                 InpaintOptions, ModelInfo, Defaults, Limits, JobInput, UpscaleOptions,
                                 UpscalerInfo], ids=lambda c: c.__name__)
def test_every_message_and_field_is_documented(cls):
    if hasattr(cls, "TYPE") and cls.TYPE:
        assert f"#### `{cls.TYPE}`" in DOC
    for field in dataclasses.fields(cls):
        assert f"`{field.name}`" in DOC, field.name


def test_frame_codes_match_the_header_table():
    for table in (vocabulary.ROLES, vocabulary.PIXEL_FORMATS, vocabulary.ENCODINGS):
        for name, row in table.items():
            assert f"{row.code} `{name}`" in DOC, name


def _row(first_cell: str) -> list[str]:
    [line] = [line for line in DOC.splitlines() if line.startswith(f"| `{first_cell}` |")][:1] or [""]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))]


def _names(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([a-z_0-9]+)`", cell))


def test_kind_table_is_the_vocabulary():
    for kind in vocabulary.KINDS.values():
        row = _row(kind.name)
        assert row and _names(row[1]) == kind.required and _names(row[2]) == kind.optional, kind.name


def test_role_table_is_the_vocabulary():
    for role in vocabulary.ROLES.values():
        row = _row(role.name)
        assert row[1] == str(role.code) and row[2] == role.sender, role.name
        assert ("aligned" in row[3]) == role.aligned and (role.feature is None or f"`{role.feature}`" in row[3])


def test_pixel_format_table_is_the_vocabulary():
    for fmt in vocabulary.PIXEL_FORMATS.values():
        row = _row(fmt.name)
        assert row[1:5] == [str(fmt.code), str(fmt.bytes_per_pixel), f"`{fmt.dtype}`".replace("|", "\\|"),
                            fmt.layout], fmt.name


def test_every_feature_is_documented():
    section = DOC.split("### 2.1 Features")[1].split("### 2.2")[0]
    assert set(re.findall(r"`([a-z_0-9]+:[a-z_0-9]+|[a-z_]+)`", section)) >= vocabulary.ALL_FEATURES


def test_ranges_in_the_submit_table_are_the_vocabulary():
    for name, r in (("strength", vocabulary.STRENGTH), ("steps", vocabulary.STEPS),
                    ("guidance", vocabulary.GUIDANCE), ("batch", vocabulary.BATCH)):
        row = _row(name)
        assert row[2] == f"`{r.default}`" and row[3].startswith(f"{r.lo:g} – {r.hi:g}".replace(".0 ", " ")), row


def test_version_is_the_code():
    assert f"# Underpaint wire protocol, version {vocabulary.PROTOCOL_VERSION}" in DOC
    assert f"`PROTOCOL_VERSION = {vocabulary.PROTOCOL_VERSION}`" in DOC


def test_json_examples_decode_to_the_golden_messages():
    blocks = re.findall(r"```json\n(.*?)```", DOC, re.S)
    assert len(blocks) >= len(CLIENT_MESSAGES) + len(SERVER_MESSAGES)
    golden = {m.encode() for m in MESSAGES.values()}
    assert {json.loads("".join(x.strip() for x in b.splitlines()))["type"] for b in blocks} == {
        *CLIENT_MESSAGES, *SERVER_MESSAGES}
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
