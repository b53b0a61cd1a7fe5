"""Names of the layers the plug-in creates and the parasite it attaches, independent of GIMP."""

from __future__ import annotations

import json
from typing import Any

PARASITE_NAME = "underpaint-params"
PARASITE_VERSION = 1
MAX_PROMPT_CHARS = 48
KIND_TITLES = {"img2img": "Underpaint", "inpaint": "Underpaint inpaint"}


def short_prompt(prompt: str, limit: int = MAX_PROMPT_CHARS) -> str:
    """One line of at most ``limit`` characters; an ellipsis marks a cut."""
    if limit < 2:
        raise ValueError(f"limit must be at least 2 (got {limit})")
    text = " ".join(prompt.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "\u2026"


def result_layer_name(kind: str, prompt: str, seed: int | None) -> str:
    """E.g. ``Underpaint: a red barn at dusk (seed 1234)``."""
    title = KIND_TITLES.get(kind)
    if title is None:
        raise ValueError(f"unknown job kind {kind!r}")
    text = short_prompt(prompt) or "no prompt"
    seed_text = f"seed {seed}" if seed is not None else "seed unknown"
    return f"{title}: {text} ({seed_text})"


def parasite_payload(params: dict[str, Any], seed: int | None, model: str | None, server: str,
                     region: tuple[int, int, int, int]) -> bytes:
    """UTF-8 JSON stored on the result layer: everything needed to repeat the run."""
    data = {
        "version": PARASITE_VERSION,
        "params": dict(params, seed=seed),
        "requested_seed": params.get("seed"),
        "model": model,
        "server": server,
        "region": list(region),
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")


def read_parasite_payload(data: bytes) -> dict[str, Any]:
    """Parse a payload written by ``parasite_payload``; raises ValueError with the reason."""
    try:
        value = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{PARASITE_NAME} parasite is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict) or value.get("version") != PARASITE_VERSION:
        raise ValueError(f"{PARASITE_NAME} parasite has an unknown layout")
    return value
