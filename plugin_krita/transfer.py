"""A Krita job as the shared session's ``JobRequest``: its pixels travel in the encodings of the shared policy
(``core.transfer``) and, for 8-bit documents sent compressed, as PNG tiles encoded by Qt (libpng, in C)."""

from __future__ import annotations

from typing import Any

from . import canvas_jobs
from .proto import core, messages

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


def job_request(job: Any, settings: Any) -> core.request.JobRequest:
    """The host-neutral request of a captured ``job`` (``jobs.Job``) with the docker's ``settings``."""
    p, s, cap = job.params, settings, job.capture
    in_document = cap.kind not in canvas_jobs.CANVAS_KINDS  # canvas jobs show no preview layer
    previews = core.request.Previews(enabled=s.preview and in_document, max_size=PREVIEW_MAX_SIZE,
                                     interval_ms=PREVIEW_INTERVAL_MS, encodings=PREVIEW_ENCODINGS)
    return core.request.JobRequest(
        plan=cap.plan, pixel_format=cap.pixel_format, image=cap.pixels, mask=cap.mask, prompt=p.prompt,
        negative_prompt=p.negative_prompt, model=p.model, strength=p.strength, steps=p.steps, guidance=p.guidance,
        seed=p.seed, sampler=p.sampler, batch=p.batch, loras=core.params.loras(p.loras), resolution=p.resolution,
        inpaint=messages.InpaintOptions(feather=s.feather, grow=s.grow, context=s.context_padding), previews=previews,
        result_plan=cap.result_plan if cap.result_region is not None else None, png=native_png(cap.pixel_format),
        **core.request.kind_options(cap.kind, p.option_values()))


__all__ = ["PREVIEW_ENCODINGS", "job_request", "native_png"]
