"""Which part of the layer is sent and where the result goes, independent of GIMP.

All rectangles are in image (document) coordinates; ``local`` converts to the layer's own pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._protocol import geometry
from .params import IMG2IMG, INPAINT

Rect = geometry.Rect


class RegionError(ValueError):
    """The selection and layer do not give anything to process; the message says why."""


@dataclass(frozen=True)
class Plan:
    """``region``: pixels sent and replaced; ``masked``: the result keeps only the selection."""

    kind: str
    layer: Rect
    region: Rect
    masked: bool

    def local(self) -> Rect:
        """``region`` in the layer's pixel coordinates (what the layer's GEGL buffer is read at)."""
        return self.region.translate(-self.layer.x, -self.layer.y)


def plan(kind: str, layer: Rect, selection: Rect | None, context: int = 64) -> Plan:
    """Decide the region of a run.

    img2img without a selection sends the whole layer; with one, the selection bounds clipped to the layer
    (the result then gets the selection as its layer mask, like any GIMP filter). Inpaint needs a selection
    and sends ``context_region`` (selection bounds + ``context`` padding, clipped to the layer).
    """
    if layer.is_empty:
        raise RegionError("The layer is empty (0 pixels).")
    if selection is not None and selection.is_empty:
        selection = None
    if kind == IMG2IMG:
        if selection is None:
            return Plan(kind, layer, layer, masked=False)
        region = selection.intersect(layer)
        if region.is_empty:
            raise RegionError("The selection does not overlap the layer: select part of the layer or "
                              "choose Select > None.")
        return Plan(kind, layer, region, masked=True)
    if kind != INPAINT:
        raise RegionError(f"unknown job kind {kind!r}")
    if selection is None:
        raise RegionError("Inpaint needs a selection: select the area to repaint first.")
    if selection.intersect(layer).is_empty:
        raise RegionError("The selection does not overlap the layer: select the area to repaint on this "
                          "layer.")
    return Plan(kind, layer, geometry.context_region(selection, layer, context), masked=True)


def check_result_region(plan_: Plan, x: int, y: int, width: int, height: int) -> None:
    """The server must answer with exactly the region that was sent."""
    got = Rect(x, y, width, height)
    if got != plan_.region:
        raise RegionError(f"The server returned a result for {got.width}x{got.height} at ({got.x}, {got.y}) "
                          f"but {plan_.region.width}x{plan_.region.height} at ({plan_.region.x}, "
                          f"{plan_.region.y}) was sent.")


def mask_has_pixels(mask: bytes, width: int, height: int) -> bool:
    return geometry.bounding_box(mask, width, height) is not None
