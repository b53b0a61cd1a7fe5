"""GIMP's side of the jobs that change the canvas: Expand Canvas and Upscale.

Expand Canvas sends the layer over the expanded canvas (GEGL's abyss gives transparent pixels outside the
layer, so the new area arrives with alpha 0) and grows the canvas only when the result is here: the growth
and the result layer are one undo group, and a cancelled or failed job leaves the image as it was.
Upscale sends the selection's bounds on the layer (or the layer); its result is the input x factor at the
scaled offset. "Upscale the whole image" scales the image first, in the same undo group.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

from . import gimp_image  # noqa: E402
from ._protocol import core  # noqa: E402
from .params import OUTPAINT, UPSCALE, JobParams  # noqa: E402
from .pixels import PixelSpec  # noqa: E402
from .trace import log  # noqa: E402

Plan, Rect = core.regions.Plan, core.regions.Rect
KINDS = core.params.CANVAS_KINDS


def plans(kind: str, image: Gimp.Image, layer: Gimp.Layer, params: JobParams) -> tuple[Plan, Plan]:
    """(what is sent, what the results cover) of a canvas job; CanvasError/RegionError with a sentence."""
    canvas = Rect(0, 0, image.get_width(), image.get_height())
    layer_rect = gimp_image.layer_rect(layer)
    if kind == OUTPAINT:
        region = core.canvas.plan_expand(canvas, params.expand).region
        sent = Plan(OUTPAINT, layer_rect, region, masked=False)
        return sent, sent
    base = core.regions.plan_region(core.regions.IMG2IMG, layer_rect, gimp_image.selection_rect(image), 0)
    sent = Plan(UPSCALE, layer_rect, base.region, masked=False)
    big = core.canvas.upscaled(base.region, params.factor)
    return sent, Plan(UPSCALE, big, big, masked=False)


def insert(image: Gimp.Image, source: Gimp.Layer, params: JobParams, result_plan: Plan, spec: PixelSpec,
           results: list[tuple[bytes, str, bytes]]) -> list[Gimp.Layer]:
    """Grow (or scale) the image and add the result layers, all in one undo group."""
    gimp_image.check_alive(image, source)
    image.undo_group_start()
    log("undo_group_start", kind=params.kind)
    try:
        placed = result_plan
        if params.kind == OUTPAINT:
            expand = core.canvas.plan_expand(Rect(0, 0, image.get_width(), image.get_height()), params.expand)
            region = expand.region
            image.resize(region.width, region.height, *expand.shift)
            moved = expand.after_growth(result_plan.region)
            placed = Plan(OUTPAINT, moved, moved, masked=False)
            log("canvas_grown", width=region.width, height=region.height)
        elif params.grow_canvas:
            image.scale(image.get_width() * params.factor, image.get_height() * params.factor)
            log("image_scaled", factor=params.factor)
        return gimp_image.insert_results(image, source, placed, spec, results, None)
    finally:
        image.undo_group_end()
        log("undo_group_end", kind=params.kind)
