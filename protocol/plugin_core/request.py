"""A job as both hosts plan it (``JobRequest``: host-neutral, pixels already read), what the server would refuse
about it (``problem``: one set of checks for every host), and its ``Submit`` and input frames (``wire``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import frames, messages, vocabulary
from . import canvas, params, transfer
from .regions import Plan

Inputs = dict[str, "frames.Frame | tuple[frames.Frame, ...]"]


@dataclass(frozen=True)
class Previews:
    """How a host shows previews: ``enabled`` for this job; ``encodings``: lossy ones it decodes (e.g. jpeg)."""

    enabled: bool = True
    max_size: int = int(vocabulary.PREVIEW_SIZE.default)
    interval_ms: int = 200
    encodings: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRequest:
    """One job as a host planned it: the region and its pixels (``pixel_format``, also the results' format),
    the gray8 ``mask`` of a selection job, and what the painter asked for. ``result_plan``: where results
    lie when not in the region sent (upscale: the region x factor)."""

    plan: Plan
    pixel_format: str
    image: bytes
    mask: bytes | None
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None  # None: the server's default
    strength: float = vocabulary.STRENGTH.default
    steps: int = int(vocabulary.STEPS.default)
    guidance: float = vocabulary.GUIDANCE.default
    seed: int | None = None  # None: the server picks one
    sampler: str = "default"
    batch: int = 1
    loras: tuple[tuple[str, float], ...] = ()  # ``params.loras`` of what the painter typed
    resolution: str = "auto"
    upscale: messages.UpscaleOptions | None = None  # upscale jobs
    inpaint: messages.InpaintOptions = field(default_factory=messages.InpaintOptions)
    previews: Previews = field(default_factory=Previews)
    result_plan: Plan | None = None
    png: transfer.PngEncoder | None = None  # the host's native PNG encoder for ``pixel_format``, if any

    def __post_init__(self) -> None:
        row = vocabulary.KINDS[self.kind]
        if row.needs_selection and self.mask is None:
            raise ValueError(f"{row.label} needs the selection mask.")

    @property
    def kind(self) -> str:
        return self.plan.kind

    @property
    def results(self) -> Plan:
        """What results are checked against: the plan, or where an upscale's results lie."""
        return self.result_plan or self.plan


def kind_options(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``JobRequest`` keyword of ``kind``'s own options (its row's ``options``: the ``Submit`` field, whose
    message it builds from ``values``, the painter's settings by that message's field names); {} for a kind
    without options."""
    name = vocabulary.KINDS[kind].options
    if name is None:
        return {}
    message = next(spec.kind for spec in messages.Submit.specs() if spec.name == name)
    return {name: message(**{f.name: values[f.name] for f in dataclasses.fields(message) if f.name in values})}


def problem(request: JobRequest, welcome: Any, offer: params.Offer) -> str | None:
    """Why the server of ``welcome`` would refuse ``request`` (a sentence the painter can act on), or None."""
    limits, region = welcome.limits, request.plan.region
    found = canvas_problem(request, limits.max_pixels)
    found = found or params.limit_problem(limits, request.steps, request.batch, region.area)
    found = found or params.model_problem(welcome, request.model)
    found = found or params.kind_problem(offer.kinds, request.kind)
    if found is None and request.resolution != "auto" and not offer.tiled:
        found = ("This server cannot refine at full resolution or choose the fit (it has no tiled refine): "
                 "set the resolution to auto, or update the server.")
    if found is None and request.sampler not in offer.samplers:
        found = (f"This server does not offer the sampler {request.sampler!r} (it offers "
                 f"{', '.join(offer.samplers)}): pick another sampler.")
    if found is None and request.loras and not offer.lora:
        found = "This server offers no LoRAs: clear the LoRAs field (or update the server)."
    return found or params.lora_problem(welcome, request.loras, request.model)


def canvas_problem(request: JobRequest, max_pixels: int) -> str | None:
    """Why the server would refuse a canvas job's size (the expanded canvas, the upscaled image), or None."""
    region = request.plan.region
    if request.upscale is not None and request.results.region.area > max_pixels:
        return canvas.upscale_problem(region, request.upscale.factor, max_pixels)
    if request.kind == canvas.EXPAND and region.area > max_pixels:
        return (f"The expanded canvas {region.width}x{region.height} has {region.area:,} pixels but this server "
                f"accepts at most {max_pixels:,}: expand by less.")
    return None


def wire(request: JobRequest, job: str, offer: params.Offer, url: str, transfer_mode: str, tile_side: int,
         keep: bool) -> tuple[messages.Submit, Inputs]:
    """The ``Submit`` and input frames of ``request`` as job ``job`` to the server at ``url`` (``keep``:
    ``keep_result``, for a resume after a dropped connection)."""
    r = request
    enc = transfer.choose(transfer_mode, url, r.png is not None, r.previews.encodings)
    mask = r.mask if vocabulary.KINDS[r.kind].needs_selection else None
    inputs, result_tile = transfer.job_inputs(job, r.plan.region, r.pixel_format, r.image, mask, enc, r.png,
                                              tile_side)
    preview = messages.PreviewOptions(enabled=r.previews.enabled, max_size=r.previews.max_size,
                                      min_interval_ms=r.previews.interval_ms,
                                      encoding=offer.preview_encoding(enc.preview))
    row = vocabulary.KINDS[r.kind]
    extra: dict[str, Any] = {}
    if offer.tiled and row.refinable:
        extra["resolution"] = r.resolution
    if row.options is not None and getattr(r, row.options, None) is not None:
        extra[row.options] = getattr(r, row.options)
    submit = messages.Submit(
        job=job, kind=r.kind, model=r.model, prompt=r.prompt, negative_prompt=r.negative_prompt,
        strength=r.strength, steps=r.steps, guidance=r.guidance, seed=r.seed, sampler=r.sampler, batch=r.batch,
        preview=preview, inpaint=r.inpaint, result_format=r.pixel_format, result_encoding=enc.result,
        result_tile=result_tile, keep_result=keep,
        loras=tuple(messages.LoraChoice(id=i, weight=w) for i, w in r.loras), **extra)
    return submit, inputs


__all__ = ["Inputs", "JobRequest", "Previews", "canvas_problem", "kind_options", "problem", "wire"]
