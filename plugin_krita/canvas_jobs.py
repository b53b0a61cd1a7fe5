"""Krita's side of the jobs that change the canvas: expand canvas and upscale.

Capture: what is sent (expand: the whole canvas padded with transparent pixels to the expanded region;
upscale: the selection or the source layer's pixels on the canvas). Placement: expand grows the canvas only
once the result is here, then the result layer is added; upscale adds a layer of the new size at the scaled
offset, after scaling the whole image by the factor when the painter ticked "Upscale canvas".

Undo: Krita's scripting API has no undo macro (no ``beginMacro``; ``Document.resizeImage``/``scaleImage`` and
``Node.addChildNode`` each push their own command; ``Node.setPixelData`` pushes none). The growth and the new
layer are two commands, chained by ``undo_chain`` so that one undo (or redo) takes both; the History docker
still lists two entries. GIMP does both in one undo group.
"""

from __future__ import annotations

from typing import Any

from .jobs import Capture, UserError
from .params import GenerationParams
from .pixels import BYTES_PER_PIXEL, check_size
from .proto import core, geometry

Rect = geometry.Rect
CANVAS_KINDS = core.params.CANVAS_KINDS
SCALE_FILTER = "Bicubic"  # how the existing layers are scaled by "Upscale canvas"


def capture(kdoc: Any, params: GenerationParams, fmt: str) -> Capture:
    """The pixels of an expand canvas (``core.canvas.EXPAND``) or upscale job."""
    doc = kdoc.doc
    canvas = Rect(0, 0, doc.width(), doc.height())
    node = None
    if params.source == "layer":
        node = doc.activeNode()
        if node is None:
            raise UserError("There is no active layer: select the layer to work on.")
    read = (lambda r: node.projectionPixelData(r.x, r.y, r.width, r.height)) if node is not None else (
        lambda r: doc.pixelData(r.x, r.y, r.width, r.height))
    source_id = node.uniqueId().toString() if node is not None else ""
    source_name = node.name() if node is not None else "Visible image"
    try:
        if params.mode == core.canvas.EXPAND:
            expand = core.canvas.plan_expand(canvas, core.canvas.Expansion(*params.expand))
            pixels = bytes(read(canvas))
            check_size(fmt, pixels, canvas.width, canvas.height, "the canvas's pixel data")
            region = expand.region
            padded = core.canvas.pad(pixels, BYTES_PER_PIXEL[fmt], canvas, region)
            plan = core.regions.Plan(core.canvas.EXPAND, region, region, masked=False)
            return Capture(plan, fmt, padded, None, source_id, source_name, expand=expand)
        sel_rect, _ = kdoc.selection(canvas)
        bounds = geometry_of(node.bounds()) if node is not None else None
        base = core.regions.plan_region(core.regions.IMG2IMG, canvas, sel_rect, 0, source=bounds,
                                        bounds_name="canvas")
        region = base.region
        pixels = bytes(read(region))
        check_size(fmt, pixels, region.width, region.height, "the layer's pixel data")
        plan = core.regions.Plan(core.canvas.UPSCALE, canvas, region, base.masked)
        return Capture(plan, fmt, pixels, None, source_id, source_name,
                       result_region=core.canvas.upscaled(region, params.upscale_factor))
    except (core.canvas.CanvasError, core.regions.RegionError) as exc:
        raise UserError(str(exc)) from None


def geometry_of(qrect: Any) -> Rect:
    return Rect(qrect.x(), qrect.y(), max(0, qrect.width()), max(0, qrect.height()))


def grow_canvas(doc: Any, capture: Capture, params: GenerationParams) -> tuple[int, int]:
    """Grow (expand) or scale (upscale with "Upscale canvas") the image for a finished job; returns the shift
    of document coordinates (expand: the pixels added left and top). Nothing for a plain upscale."""
    if capture.expand is not None:
        region = capture.expand.region
        doc.resizeImage(region.x, region.y, region.width, region.height)
        doc.waitForDone()
        return capture.expand.shift
    if capture.kind == core.canvas.UPSCALE and params.grow_canvas:
        factor = params.upscale_factor
        doc.scaleImage(doc.width() * factor, doc.height() * factor, int(doc.xRes() * factor),
                       int(doc.yRes() * factor), SCALE_FILTER)
        doc.waitForDone()
    return 0, 0
