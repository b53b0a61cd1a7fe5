"""A Krita job's pixels on the wire: the encodings chosen by the shared policy (``core.transfer``) and, for
8-bit documents sent compressed, PNG tiles encoded by Qt (libpng, in C)."""

from __future__ import annotations

from typing import Any

from . import canvas_jobs
from .proto import core, frames, messages

PREVIEW_ENCODINGS = ("jpeg",)  # Qt decodes these (and png, which is core) for the preview layer
PREVIEW_MAX_SIZE = 512
PREVIEW_INTERVAL_MS = 200


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


def wire_job(job: Any, settings: Any, offer: core.params.Offer, url: str, tile_side: int
             ) -> tuple[messages.Submit, dict[str, frames.Frame | tuple[frames.Frame, ...]]]:
    """The ``Submit`` and input frames of a captured ``job`` for the server at ``url``."""
    p, s, cap = job.params, settings, job.capture
    enc, inputs, result_tile = wire_inputs(job, s.transfer, url, tile_side)
    in_document = cap.kind not in canvas_jobs.CANVAS_KINDS  # canvas jobs show no preview layer
    preview = messages.PreviewOptions(enabled=s.preview and in_document, max_size=PREVIEW_MAX_SIZE,
                                      min_interval_ms=PREVIEW_INTERVAL_MS, encoding=offer.preview_encoding(enc.preview))
    submit = messages.Submit(
        job=job.id, kind=cap.kind, model=p.model, prompt=p.prompt, negative_prompt=p.negative_prompt,
        strength=p.strength, steps=p.steps, guidance=p.guidance, seed=p.seed, batch=p.batch, preview=preview,
        inpaint=messages.InpaintOptions(feather=s.feather, grow=s.grow, context=s.context_padding),
        result_format=cap.pixel_format, result_encoding=enc.result, result_tile=result_tile, keep_result=offer.resume,
        loras=tuple(messages.LoraChoice(id=i, weight=w) for i, w in core.params.loras(p.loras)),
        **canvas_jobs.submit_fields(cap.kind, p, offer))
    return submit, inputs


__all__ = ["PREVIEW_ENCODINGS", "native_png", "wire_inputs", "wire_job"]
