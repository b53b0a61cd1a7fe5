"""One handler per job kind: how a job's decoded inputs are cut and masked for the engine.

The registry is keyed by ``vocabulary.KINDS``. A kind is served when it has a handler here; the welcome
advertises exactly those (``Service.welcome``), so a kind the vocabulary declares but this server does not
implement is refused by the connection with ``unsupported`` before any frame is read. Adding a kind = its
vocabulary row + one handler below + the hosts' UI.

``submit.resolution`` (``vocabulary.pick_resolution`` for ``auto``) decides whether a region runs fitted to
the model's area or at its own resolution in tiles (``full``); a region not larger than the model's area
runs fitted either way (it is one tile, and the model works best at its native size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from underpaint.protocol import errors
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import Submit
from underpaint.protocol.vocabulary import KINDS, SERVER_LIMITS, pick_resolution

from .. import imaging
from ..engine.interface import PIPELINES, CancelToken, EngineError
from ..imaging import outpaint as outpainting
from ..imaging.pixels import convert_depth, max_value


@dataclass(frozen=True)
class Inputs:
    """A job's inputs, decoded: ``image`` is (H, W, 4) RGBA covering ``rect``; aligned single-channel roles
    (``mask``) are (H, W) uint8 over the same rectangle."""

    image: np.ndarray
    rect: Rect
    channels: dict[str, np.ndarray]

    def get(self, role: str) -> np.ndarray | None:
        return self.channels.get(role)


@dataclass(frozen=True)
class Model:
    """What a handler needs to know of the model (its native side, the operator's pixel cap) and of the
    server: its upscalers (``engine.upscalers.Upscalers``) and the job's cancel token."""

    resolution: int
    max_pixels: int | None
    upscalers: Any = None
    cancel: CancelToken | None = None
    tiled: bool = True  # its family can refine in tiles (families.Family.tiled): else ``auto`` means ``fit``


@dataclass(frozen=True)
class Plan:
    """What a job runs when it is more than one prepared image pasted back: the document ``region`` its
    results cover, what the engine runs (``prepared``; None = no diffusion), and ``finish``: the generated
    RGB (None without diffusion) -> the (H, W, 4) result over ``region``."""

    region: Rect
    prepared: imaging.Prepared | None
    finish: Callable[[np.ndarray | None], np.ndarray] = field(repr=False)


Prepare = Callable[[Inputs, Submit, Model], "imaging.Prepared | Plan"]


@dataclass(frozen=True)
class Handler:
    """A job kind on this server: the engine pipeline it runs (``engine.interface.PIPELINES``; a model offers
    the kind when it runs that pipeline), how it cuts and masks the inputs for it, and whether a submit of
    it runs the model at all (``diffuses``; else no denoising-steps check applies)."""

    pipeline: str
    prepare: Prepare
    diffuses: Callable[[Submit], bool] = lambda submit: True


def plan(handler: Handler, inputs: Inputs, submit: Submit, model: Model) -> Plan:
    """The handler's prepare as a Plan (a plain Prepared is pasted back by ``imaging.finish``)."""
    out = handler.prepare(inputs, submit, model)
    if isinstance(out, Plan):
        return out
    return Plan(out.region, out, lambda generated: imaging.finish(out, generated))


def tiled(submit: Submit, region: Rect, model: Model) -> bool:
    """Whether a region runs at its own resolution in tiles: ``submit.resolution``, ``auto`` decided by
    ``vocabulary.pick_resolution``; never for a region within the model's area."""
    choice = submit.resolution
    if choice == "auto":
        choice = pick_resolution(region.width, region.height, model.resolution, submit.strength) if model.tiled \
            else "fit"
    return choice == "full" and region.width * region.height > model.resolution ** 2


def img2img(inputs: Inputs, submit: Submit, model: Model) -> imaging.Prepared:
    """The whole image, repainted at ``strength``."""
    return imaging.prepare(inputs.image, inputs.rect, None, cut=imaging.Cut.WHOLE, resolution=model.resolution,
                           max_pixels=model.max_pixels, tiled=tiled(submit, inputs.rect, model))


def inpaint(inputs: Inputs, submit: Submit, model: Model) -> imaging.Prepared:
    """The mask's surroundings (``inpaint.context``), the mask grown and feathered; pasted back by the mask."""
    opts, mask = submit.inpaint, inputs.get("mask")
    cut = {"cut": imaging.Cut.AROUND_MASK, "context": opts.context, "grow": opts.grow, "feather": opts.feather}
    region = imaging.cut_region(inputs.rect, mask, **cut) if mask is not None and mask.any() else inputs.rect
    return imaging.prepare(inputs.image, inputs.rect, mask, **cut, resolution=model.resolution,
                           max_pixels=model.max_pixels, tiled=tiled(submit, region, model))


def outpaint(inputs: Inputs, submit: Submit, model: Model) -> Plan:
    """Fill the new (transparent, or masked) area of the expanded canvas: pre-filled with the old edge colours
    stretched out plus noise, inpainted with the old image as context (the seam band included), returned over
    the whole canvas with the new area opaque, a soft seam into the old image and nothing over the rest."""
    opts, image = submit.inpaint, inputs.image
    new = outpainting.new_area(image, inputs.get("mask"))
    if not new.any():
        raise imaging.EmptyMask("nothing to fill: the image has no transparent pixel (and no mask)")
    seed = submit.seed if submit.seed is not None else 0
    filled = image.copy()
    rgb = outpainting.prefill(imaging.to_rgb8(image), new, seed)
    filled[..., :3] = np.where(new[..., None], convert_depth(rgb, image.dtype), image[..., :3])
    filled[..., 3] = max_value(image.dtype)
    repaint = np.where(new, np.uint8(255), np.uint8(0))
    # the model repaints the seam band too: the new area grown by feather, pasted back hard (the result's alpha
    # is the soft seam), so the model's colour covers every pixel that alpha reaches
    cut = {"cut": imaging.Cut.AROUND_MASK, "context": opts.context, "grow": opts.feather, "feather": 0}
    region = imaging.cut_region(inputs.rect, repaint, **cut)
    prepared = imaging.prepare(filled, inputs.rect, repaint, **cut, resolution=model.resolution,
                               max_pixels=model.max_pixels, tiled=tiled(submit, region, model))
    alpha = outpainting.seam_alpha(new, opts.feather)
    local = prepared.region.translate(-inputs.rect.x, -inputs.rect.y)

    def finish(generated: np.ndarray | None) -> np.ndarray:
        out = filled.copy()
        out[local.y:local.bottom, local.x:local.right] = imaging.finish(prepared, generated)
        out[..., 3] = (alpha * max_value(image.dtype)).round().astype(image.dtype) \
            if image.dtype.kind != "f" else alpha.astype(image.dtype)
        return out

    return Plan(inputs.rect, prepared, finish)


MAX_UPSCALED_PIXELS = 4 * SERVER_LIMITS["max_pixels"]  # 8192 x 8192


def upscale(inputs: Inputs, submit: Submit, model: Model) -> Plan:
    """The image x ``upscale.factor`` (the chosen upscaler model, else a Lanczos resize; alpha resized), placed
    at (x, y) x factor; then, with ``upscale.refine``, an img2img of it at full resolution (tiled)."""
    opts, rect, image = submit.upscale, inputs.rect, inputs.image
    factor = opts.factor
    region = Rect(rect.x * factor, rect.y * factor, rect.width * factor, rect.height * factor)
    if region.width * region.height > MAX_UPSCALED_PIXELS:
        raise ValueError(f"an upscale to {region.width}x{region.height} exceeds {MAX_UPSCALED_PIXELS} pixels; "
                         "upscale a smaller region or by a smaller factor")
    if opts.upscaler is not None and model.upscalers is None:
        raise EngineError(errors.UNKNOWN_MODEL, f"unknown upscaler {opts.upscaler[:120]!r}: this server has no "
                          "upscaler models", "upscale.upscaler")
    # 16-bit and float layers are upscaled in float (their levels kept) unless refined: diffusion is 8-bit
    work = np.float32 if image.dtype != np.uint8 and not opts.refine else np.uint8
    rgb = np.ascontiguousarray(convert_depth(image[..., :3], work))
    if model.upscalers is not None:
        rgb = model.upscalers.upscale(rgb, opts.upscaler, factor, model.cancel)
    else:
        rgb = imaging.resize_colour(rgb, region.size)
    alpha = imaging.resize_mask(np.ascontiguousarray(convert_depth(image[..., 3], work)), region.size)
    big = np.concatenate([rgb, alpha[..., None]], axis=-1)
    if not opts.refine:
        if work == np.float32:  # Lanczos overshoot: keep within the layer's own range
            top = 1.0 if image.dtype.kind == "u" else max(1.0, float(np.nanmax(image)))
            np.clip(big, 0.0, top, out=big)
        return Plan(region, None, lambda _generated: convert_depth(big, image.dtype))
    prepared = imaging.prepare(big, region, None, cut=imaging.Cut.WHOLE, resolution=model.resolution,
                               max_pixels=model.max_pixels,
                               tiled=model.tiled and region.width * region.height > model.resolution ** 2)
    return Plan(region, prepared, lambda generated: convert_depth(imaging.finish(prepared, generated), image.dtype))


HANDLERS: dict[str, Handler] = {
    "img2img": Handler("img2img", img2img),
    "inpaint": Handler("inpaint", inpaint),
    "outpaint": Handler("inpaint", outpaint),
    "upscale": Handler("img2img", upscale, diffuses=lambda submit: submit.upscale.refine),
}
_unknown = set(HANDLERS) - set(KINDS) or {h.pipeline for h in HANDLERS.values()} - set(PIPELINES)
if _unknown:  # a handler for a kind the protocol does not declare is a bug here, not in a client
    raise ImportError(f"handlers name kinds or pipelines that are not declared: {sorted(_unknown)}")


def kinds_for(pipelines: Iterable[str]) -> tuple[str, ...]:
    """The job kinds a model running these pipelines can serve (``ModelInfo.capabilities``), in vocabulary order."""
    runs = set(pipelines)
    return tuple(kind for kind in KINDS if kind in HANDLERS and HANDLERS[kind].pipeline in runs)
