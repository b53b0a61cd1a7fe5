"""Names of the layers a plugin creates, and the JSON record of what produced a result layer.

The record is what a painter's "Reuse parameters" reads back: Krita keeps it in a document annotation keyed
by layer id, GIMP in a parasite on the layer; both hold the same ``record`` object.
"""

from __future__ import annotations

import json
from typing import Any

from .. import vocabulary

PREVIEW_LAYER_NAME = "Underpaint preview"
NAME_PROMPT_CHARS = 48
RECORD_VERSION = 1


def short_prompt(prompt: str, limit: int = NAME_PROMPT_CHARS) -> str:
    """The prompt on one line, cut (at a word boundary when one is near) to at most ``limit`` characters."""
    if limit < 2:
        raise ValueError(f"limit must be at least 2 (got {limit})")
    text = " ".join(prompt.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "\u2026"


def result_layer_name(kind: str, prompt: str, seed: int | None) -> str:
    """E.g. ``a red fox in snow [inpaint, seed 1234]``; ``Underpaint [...]`` without a prompt."""
    if kind not in vocabulary.KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    seed_text = f"seed {seed}" if seed is not None else "seed unknown"
    return f"{short_prompt(prompt) or 'Underpaint'} [{kind}, {seed_text}]"


def encode_record(record: dict[str, Any]) -> bytes:
    """UTF-8 JSON of a result record (the caller's dict, plus the record version)."""
    return json.dumps(dict(record, version=RECORD_VERSION), sort_keys=True, ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def decode_record(data: bytes | str, what: str = "Underpaint record") -> dict[str, Any]:
    """The dict ``encode_record`` wrote; ValueError naming ``what`` when it is not one."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"the {what} is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    if value.get("version") != RECORD_VERSION:
        raise ValueError(f"the {what} has version {value.get('version')!r}; this plugin reads version "
                         f"{RECORD_VERSION}")
    return value
