"""A Krita job's pixels on the wire: the encodings chosen by the shared policy (``core.transfer``) and, for
8-bit documents sent compressed, PNG tiles encoded by Qt (libpng, in C)."""

from __future__ import annotations

from typing import Any

from .proto import core, frames

PREVIEW_ENCODINGS = ("jpeg",)  # Qt decodes these (and png, which is core) for the preview layer


def native_png(pixel_format: str) -> core.transfer.PngEncoder | None:
    """Qt's PNG encoder for 8-bit BGRA; None for other formats and outside Krita (no Qt: zlib instead)."""
    if pixel_format != "bgra8":
        return None
    try:
        from .qt import encode_png_bgra8
    except ImportError:
        return None
    return encode_png_bgra8


def wire_inputs(job: Any, mode: str, url: str, tile_side: int
                ) -> tuple[core.transfer.Encodings, dict[str, frames.Frame | tuple[frames.Frame, ...]], int]:
    """Encodings, input frames and ``result_tile`` of a captured ``job`` (``jobs.Job``) sent to ``url``."""
    cap = job.capture
    png = native_png(cap.pixel_format)
    encodings = core.transfer.choose(mode, url, png is not None, PREVIEW_ENCODINGS)
    inputs, result_tile = core.transfer.job_inputs(job.id, cap.region, cap.pixel_format, cap.pixels, cap.mask,
                                                   encodings, png, tile_side)
    return encodings, inputs, result_tile


__all__ = ["PREVIEW_ENCODINGS", "native_png", "wire_inputs"]
