"""Which document region a job sends, and whether a result fits it (rectangles in document pixels)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import geometry, vocabulary

Rect = geometry.Rect
IMG2IMG = "img2img"
INPAINT = "inpaint"
# the kinds ``plan_region`` plans (the others change the canvas: ``canvas``)
REGION_KINDS = tuple(name for name, kind in vocabulary.KINDS.items() if not kind.changes_canvas)
MODES = ("auto", *REGION_KINDS)  # auto: inpaint when there is a selection, img2img otherwise


class RegionError(ValueError):
    """Nothing usable to send (no pixels, selection elsewhere ...); the message says what to do."""


@dataclass(frozen=True)
class Plan:
    """``region``: the pixels sent, which previews and results cover; ``masked``: a selection limits it."""

    kind: str
    bounds: Rect  # what the region may not leave: the canvas (Krita) or the layer (GIMP)
    region: Rect
    masked: bool

    def local(self) -> Rect:
        """``region`` relative to ``bounds`` (e.g. in the layer's own pixel grid)."""
        return self.region.translate(-self.bounds.x, -self.bounds.y)


def choose_kind(mode: str, has_selection: bool) -> str:
    """The job kind for a UI mode (``auto`` inpaints a selection and img2imgs a whole layer)."""
    if mode not in MODES:
        raise RegionError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    if mode == "auto":
        return INPAINT if has_selection else IMG2IMG
    return mode


def plan_region(kind: str, bounds: Rect, selection: Rect | None, context: int, source: Rect | None = None,
                bounds_name: str = "layer") -> Plan:
    """The region to send for ``kind``.

    * inpaint: the selection plus ``context`` pixels around it, inside ``bounds``, aligned to multiples of 8
      (``geometry.context_region``).
    * img2img: the selection if there is one, else ``source`` (the source layer's pixels; None: all of
      ``bounds``), clipped to ``bounds``.
    """
    if bounds.is_empty:
        raise RegionError(f"The {bounds_name} has no pixels (it is 0 pixels wide or high).")
    if selection is not None and selection.is_empty:
        selection = None
    if kind not in REGION_KINDS:
        raise RegionError(f"Unknown job kind {kind!r}.")
    if vocabulary.KINDS[kind].needs_selection and selection is None:
        raise RegionError("Inpaint needs a selection: select the area to repaint first.")
    if selection is not None and selection.intersect(bounds).is_empty:
        raise RegionError(f"The selection does not overlap the {bounds_name}: select part of it, or select "
                          "nothing.")
    if vocabulary.KINDS[kind].needs_selection:
        return Plan(kind, bounds, geometry.context_region(selection, bounds, context), masked=True)
    base = selection if selection is not None else (source if source is not None else bounds)
    region = base.intersect(bounds)
    if region.is_empty:
        raise RegionError(f"The source layer has no pixels on the {bounds_name}: paint something first.")
    return Plan(kind, bounds, region, masked=selection is not None)


def check_result(plan: Plan, rect: Rect) -> None:
    """A result must lie inside the region that was sent (RegionError saying both otherwise)."""
    if not plan.region.contains(rect):
        r = plan.region
        raise RegionError(f"The server returned a result for {rect.width}x{rect.height} at ({rect.x}, {rect.y}), "
                          f"outside the region {r.width}x{r.height} at ({r.x}, {r.y}) that was sent.")
