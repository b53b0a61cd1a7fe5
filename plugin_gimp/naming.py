"""The parasite GIMP keeps on each result layer: the core's result record under GIMP's parasite name.

Layer names and the record encoding are the shared plugin core's (``core.naming``).
"""

from __future__ import annotations

from typing import Any

from ._protocol import core

PARASITE_NAME = "underpaint-params"
result_layer_name = core.naming.result_layer_name


def parasite_payload(params: dict[str, Any], seed: int | None, model: str | None, server: str,
                     region: tuple[int, int, int, int]) -> bytes:
    """UTF-8 JSON stored on the result layer: everything needed to repeat the run (never the token)."""
    return core.naming.encode_record({"params": dict(params, seed=seed), "requested_seed": params.get("seed"),
                                      "model": model, "server": server, "region": list(region)})


def read_parasite_payload(data: bytes) -> dict[str, Any]:
    """Parse a payload written by ``parasite_payload``; raises ValueError with the reason."""
    return core.naming.decode_record(data, f"{PARASITE_NAME} parasite")
