"""Geometry value types in document pixel coordinates, shared by the plugins and the server.

Standard library only: this module is bundled into the Krita and GIMP plugins.
Rectangles are half-open: ``Rect(x, y, w, h)`` covers columns ``x .. x + w - 1``, rows ``y .. y + h - 1``.
``x`` and ``y`` may be negative (Krita layers can sit at negative offsets); sizes are never negative.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

__all__ = ["Size", "Rect", "context_region", "bounding_box"]


def _as_int(name: str, value: Any) -> int:
    """``value`` as a plain int; accepts anything with ``__index__`` (numpy ints) but not bool or float."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None


def _non_negative(name: str, value: Any) -> int:
    number = _as_int(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


def _fields_from_dict(kind: str, data: Any, names: tuple[str, ...]) -> list[Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{kind} must be a JSON object, got {type(data).__name__}")
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"{kind} is missing field(s): {', '.join(missing)}")
    extra = sorted(str(k) for k in data if k not in names)
    if extra:
        raise ValueError(f"{kind} has unknown field(s): {', '.join(extra)}")
    return [data[n] for n in names]


@dataclass(frozen=True)
class Size:
    """A width and height in pixels, both >= 0."""

    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", _non_negative("Size.width", self.width))
        object.__setattr__(self, "height", _non_negative("Size.height", self.height))

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def to_dict(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: Any) -> Size:
        """Inverse of ``to_dict``; raises ValueError naming the bad or missing field."""
        return cls(*_fields_from_dict("Size", data, ("width", "height")))


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in document pixels; ``right`` and ``bottom`` are exclusive."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _as_int("Rect.x", self.x))
        object.__setattr__(self, "y", _as_int("Rect.y", self.y))
        object.__setattr__(self, "width", _non_negative("Rect.width", self.width))
        object.__setattr__(self, "height", _non_negative("Rect.height", self.height))

    @classmethod
    def from_edges(cls, left: int, top: int, right: int, bottom: int) -> Rect:
        """The rect spanning ``left <= x < right``, ``top <= y < bottom``; raises when inverted."""
        if right < left or bottom < top:
            raise ValueError(f"Rect edges are inverted: left={left} top={top} right={right} bottom={bottom}")
        return cls(left, top, right - left, bottom - top)

    @classmethod
    def from_size(cls, size: Size, x: int = 0, y: int = 0) -> Rect:
        return cls(x, y, size.width, size.height)

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)

    def intersect(self, other: Rect) -> Rect:
        """The overlap of both rects; ``Rect(0, 0, 0, 0)`` when they do not overlap (or either is empty)."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        if right <= left or bottom <= top:
            return Rect(0, 0, 0, 0)
        return Rect.from_edges(left, top, right, bottom)

    def union(self, other: Rect) -> Rect:
        """The smallest rect covering both; an empty operand is ignored (two empties give ``self``)."""
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        left, top = min(self.x, other.x), min(self.y, other.y)
        return Rect.from_edges(left, top, max(self.right, other.right), max(self.bottom, other.bottom))

    def expand(self, n: int) -> Rect:
        """Grow by ``n`` pixels on every side; negative ``n`` shrinks, down to an empty rect at the centre."""
        n = _as_int("n", n)
        width, height = self.width + 2 * n, self.height + 2 * n
        x = self.x - n if width >= 0 else self.x + self.width // 2
        y = self.y - n if height >= 0 else self.y + self.height // 2
        return Rect(x, y, max(width, 0), max(height, 0))

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.width, self.height)

    def contains(self, other: Rect) -> bool:
        """True when every pixel of ``other`` lies in ``self``; an empty ``self`` contains nothing."""
        if self.is_empty:
            return False
        inside_x = self.x <= other.x and other.right <= self.right
        return inside_x and self.y <= other.y and other.bottom <= self.bottom

    def contains_point(self, x: int, y: int) -> bool:
        return self.x <= x < self.right and self.y <= y < self.bottom

    def clamp_to(self, bounds: Rect) -> Rect:
        """Each edge clamped into ``bounds``: the intersection when they overlap, otherwise an empty rect on
        the nearest border of ``bounds`` (so the result always lies within ``bounds``)."""

        def clamp(v: int, lo: int, hi: int) -> int:
            return min(max(v, lo), hi)

        left, right = clamp(self.x, bounds.x, bounds.right), clamp(self.right, bounds.x, bounds.right)
        top, bottom = clamp(self.y, bounds.y, bounds.bottom), clamp(self.bottom, bounds.y, bounds.bottom)
        return Rect.from_edges(left, top, right, bottom)

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: Any) -> Rect:
        """Inverse of ``to_dict``; raises ValueError naming the bad or missing field."""
        return cls(*_fields_from_dict("Rect", data, ("x", "y", "width", "height")))


def _align_span(start: int, length: int, lo: int, hi: int, multiple: int) -> tuple[int, int]:
    """Grow the span ``[start, start + length)`` inside ``[lo, hi)`` to a multiple of ``multiple``.

    If ``hi - lo`` is too short, the span becomes the whole of ``[lo, hi)``.
    """
    target = -(-length // multiple) * multiple
    if target > hi - lo:
        return lo, hi - lo
    extra = target - length
    start -= extra // 2
    start = min(max(start, lo), hi - target)
    return start, target


def context_region(selection: Rect, layer: Rect, padding: int, multiple: int = 8) -> Rect:
    """The region a plugin sends for an inpaint, in document coordinates.

    Exactly:
      1. ``selection`` is clipped to ``layer``; an empty selection or one that does not overlap the layer
         raises ValueError.
      2. The clipped selection grows by ``padding`` pixels on every side and is clipped to ``layer`` again.
      3. Each of width and height is then grown to the next multiple of ``multiple``: the extra pixels are
         split between both sides (the odd one on the right/bottom) and the span is shifted back inside the
         layer where it would cross a layer edge. If the layer is narrower (shorter) than that multiple, the
         region spans the layer's full width (height) instead, which is then not a multiple.

    The result always contains the clipped selection and lies within ``layer``.
    """
    padding = _as_int("padding", padding)
    multiple = _as_int("multiple", multiple)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if selection.is_empty:
        raise ValueError(f"selection is empty: {selection}")
    core = selection.intersect(layer)
    if core.is_empty:
        raise ValueError(f"selection {selection} lies outside the layer {layer}")
    grown = core.expand(padding).intersect(layer)
    x, width = _align_span(grown.x, grown.width, layer.x, layer.right, multiple)
    y, height = _align_span(grown.y, grown.height, layer.y, layer.bottom, multiple)
    return Rect(x, y, width, height)


_ZERO = b"\x00"


def bounding_box(
    mask: bytes | bytearray | memoryview, width: int, height: int, threshold: int = 1
) -> Rect | None:
    """Bounds of the pixels ``>= threshold`` in a tightly packed row-major 8-bit mask; None if there are none.

    The result is in mask coordinates (origin 0, 0); translate it by the layer offset for document space.
    """
    width, height = _non_negative("width", width), _non_negative("height", height)
    threshold = _as_int("threshold", threshold)
    if not 1 <= threshold <= 255:
        raise ValueError(f"threshold must be in 1..255, got {threshold}")
    data = bytes(mask)
    if len(data) != width * height:
        raise ValueError(f"mask has {len(data)} bytes, expected {width}x{height} = {width * height}")
    if threshold > 1:
        data = data.translate(bytes(0 if v < threshold else 1 for v in range(256)))
    head = len(data) - len(data.lstrip(_ZERO))
    if head == len(data):
        return None
    tail = len(data.rstrip(_ZERO))
    top, bottom = head // width, (tail - 1) // width + 1
    left, right = width, 0
    for row in range(top, bottom):
        line = data[row * width : (row + 1) * width]
        if left > 0:
            left = min(left, width - len(line.lstrip(_ZERO)))
        if right < width:
            right = max(right, len(line.rstrip(_ZERO)))
        if left == 0 and right == width:
            break
    return Rect.from_edges(left, top, right, bottom)
