"""Jobs that change the canvas, host-independent: expand canvas, upscale, and the resolution choice.

Expand canvas: the plugin sends the *expanded* canvas as one ``image`` input (the old canvas at its place, the new
area transparent; ``x, y`` may be negative) and grows the canvas only when the result arrives, in one undo step
with the result layer. Upscale: results are the input x ``factor`` at ``(x * factor, y * factor)``; the painter
chooses whether the whole image is scaled by the factor first ("Upscale canvas") or the new layer simply lands at
that offset in the canvas as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import geometry, vocabulary

Rect = geometry.Rect
EXPAND = "outpaint"  # the kind of "Expand canvas"
UPSCALE = "upscale"
SIDES = ("left", "top", "right", "bottom")
MAX_EXPAND = 8192  # pixels added on one side
ANCHORS = ("center", "top_left", "top", "top_right", "left", "right", "bottom_left", "bottom", "bottom_right")


class CanvasError(ValueError):
    """An expansion or upscale the plugin cannot do; the message says what to change."""


@dataclass(frozen=True)
class Expansion:
    """Pixels added on each side of the canvas."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for side in SIDES:
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CanvasError(f"Expand {side} must be a whole number of pixels (got {value!r}).")
            if not 0 <= value <= MAX_EXPAND:
                raise CanvasError(f"Expand {side} must be between 0 and {MAX_EXPAND} pixels (got {value}).")

    @property
    def is_empty(self) -> bool:
        return not (self.left or self.top or self.right or self.bottom)

    def describe(self) -> str:
        """``128 px right, 128 px bottom``."""
        return ", ".join(f"{getattr(self, s)} px {s}" for s in SIDES if getattr(self, s)) or "nothing"


def expand_sides(pixels: int, sides: tuple[str, ...] | list[str]) -> Expansion:
    """``pixels`` on each of ``sides`` (names from SIDES)."""
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        raise CanvasError(f"Unknown side {unknown[0]!r}: use {', '.join(SIDES)}.")
    return Expansion(**{s: pixels for s in set(sides)})


def expand_to_size(width: int, height: int, new_width: int, new_height: int, anchor: str = "center") -> Expansion:
    """The expansion that makes a ``width`` x ``height`` canvas ``new_width`` x ``new_height``; ``anchor`` is
    where the old canvas stays (``center``: the new area split evenly, the odd pixel right/bottom)."""
    if anchor not in ANCHORS:
        raise CanvasError(f"Unknown anchor {anchor!r}: use one of {', '.join(ANCHORS)}.")
    if new_width < width or new_height < height:
        raise CanvasError(f"The new size {new_width}x{new_height} is smaller than the canvas {width}x{height}: "
                          "expanding only adds pixels.")
    dw, dh = new_width - width, new_height - height
    left = 0 if "left" in anchor else dw if "right" in anchor else dw // 2
    top = 0 if "top" in anchor else dh if "bottom" in anchor else dh // 2
    return Expansion(left, top, dw - left, dh - top)


def expand_to_aspect(width: int, height: int, aspect_w: int, aspect_h: int, anchor: str = "center") -> Expansion:
    """The smallest expansion that gives the canvas the aspect ratio ``aspect_w:aspect_h`` (e.g. 16:9)."""
    if aspect_w <= 0 or aspect_h <= 0:
        raise CanvasError(f"The aspect ratio {aspect_w}:{aspect_h} needs two positive numbers.")
    if width * aspect_h >= height * aspect_w:  # too wide (or exact): add height
        return expand_to_size(width, height, width, -(-width * aspect_h // aspect_w), anchor)
    return expand_to_size(width, height, -(-height * aspect_w // aspect_h), height, anchor)


@dataclass(frozen=True)
class ExpandPlan:
    """``canvas``: the canvas before (document pixels); ``region``: the expanded canvas in those same
    coordinates (what the job sends and the result covers: ``x, y`` <= 0)."""

    canvas: Rect
    expansion: Expansion

    @property
    def region(self) -> Rect:
        e, c = self.expansion, self.canvas
        return Rect(c.x - e.left, c.y - e.top, c.width + e.left + e.right, c.height + e.top + e.bottom)

    @property
    def shift(self) -> tuple[int, int]:
        """How far existing content moves when the canvas grows (the new origin is the region's corner)."""
        return self.expansion.left, self.expansion.top

    def after_growth(self, rect: Rect) -> Rect:
        """``rect`` (old document coordinates) in the grown canvas's coordinates."""
        return rect.translate(*self.shift)


def plan_expand(canvas: Rect, expansion: Expansion, max_pixels: int | None = None) -> ExpandPlan:
    if canvas.is_empty:
        raise CanvasError("The canvas has no pixels.")
    if expansion.is_empty:
        raise CanvasError("Expand canvas needs at least one side to grow: set how many pixels to add.")
    plan = ExpandPlan(canvas, expansion)
    if max_pixels is not None and plan.region.area > max_pixels:
        r = plan.region
        raise CanvasError(f"The expanded canvas {r.width}x{r.height} has {r.area:,} pixels but this server "
                          f"accepts at most {max_pixels:,}: expand by less.")
    return plan


def pad(pixels: bytes, bpp: int, source: Rect, region: Rect) -> bytes:
    """``pixels`` (covering ``source``) placed into a transparent (all-zero) buffer covering ``region``.

    Straight-alpha formats: zero bytes are fully transparent in every protocol RGBA format."""
    if len(pixels) != source.area * bpp:
        raise ValueError(f"{len(pixels)} bytes do not cover {source.width}x{source.height} pixels of {bpp} bytes")
    inside = source.intersect(region)
    out = bytearray(region.area * bpp)
    row = inside.width * bpp
    for y in range(inside.y, inside.bottom):
        src = ((y - source.y) * source.width + (inside.x - source.x)) * bpp
        dst = ((y - region.y) * region.width + (inside.x - region.x)) * bpp
        out[dst:dst + row] = pixels[src:src + row]
    return bytes(out)


# ----------------------------------------------------------------------------- upscale
def upscaled(rect: Rect, factor: int) -> Rect:
    """Where an upscale result of ``rect`` lies: ``(x * factor, y * factor)``, ``factor`` x the size."""
    if factor not in vocabulary.UPSCALE_FACTORS:
        raise CanvasError(f"Upscale by {factor} is not offered: use "
                          f"{' or '.join(f'x{f}' for f in vocabulary.UPSCALE_FACTORS)}.")
    return Rect(rect.x * factor, rect.y * factor, rect.width * factor, rect.height * factor)


def upscale_problem(region: Rect, factor: int, max_pixels: int) -> str | None:
    """A sentence when the upscaled image would be larger than the server accepts, else None."""
    big = upscaled(region, factor)
    if big.area > max_pixels:
        return (f"Upscaling {region.width}x{region.height} by {factor} gives {big.width}x{big.height} "
                f"({big.area:,} pixels) but this server makes at most {max_pixels:,}: select a smaller area or "
                "use a smaller factor.")
    return None


def upscaler_choices(upscalers: tuple | list) -> list[tuple[str, str | None]]:
    """(label, id) pairs for an upscaler menu: each of the server's upscalers, then a plain resize (id None)."""
    return [(f"{u.name} (x{u.scale})", u.id) for u in upscalers] + [("Plain resize (no upscaler model)", None)]


# ----------------------------------------------------------------------------- resolution
RESOLUTION_LABELS = {"fit": "Fit to model (fast)", "full": "Full resolution (tiled)"}


def resolution_choices(width: int, height: int, model_side: int, strength: float) -> list[tuple[str, str]]:
    """(label, value) pairs for a resolution menu; Auto's label says what it will pick for this area."""
    picked = vocabulary.pick_resolution(width, height, model_side, strength) if width and height else None
    auto = f"Auto ({RESOLUTION_LABELS[picked].split(' (')[0].lower()})" if picked else "Auto"
    labels = {"auto": auto, **RESOLUTION_LABELS}
    return [(labels[value], value) for value in vocabulary.RESOLUTIONS]


def model_side(welcome: object, model: str | None) -> int:
    """The native side (pixels) of ``model`` (None: the server's default) from ``welcome.models``; 512 when
    unknown (not connected)."""
    if welcome is None:
        return 512
    wanted = model or welcome.defaults.model  # type: ignore[attr-defined]
    info = next((m for m in welcome.models if m.id == wanted), None)  # type: ignore[attr-defined]
    return info.resolution if info is not None else 512
