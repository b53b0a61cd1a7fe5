"""Size and Rect value types."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from underpaint.protocol.geometry import Rect, Size

coord = st.integers(-20, 20)
extent = st.integers(0, 12)
rects = st.builds(Rect, coord, coord, extent, extent)


def pixels(r: Rect) -> set[tuple[int, int]]:
    return {(x, y) for x in range(r.x, r.right) for y in range(r.y, r.bottom)}


def test_properties() -> None:
    r = Rect(-5, 3, 10, 4)
    assert (r.right, r.bottom, r.area, r.is_empty) == (5, 7, 40, False)
    assert r.size == Size(10, 4)
    assert Rect(1, 1, 0, 5).is_empty and Rect(1, 1, 5, 0).is_empty
    assert Size(3, 4).area == 12 and Size(0, 4).is_empty and not Size(1, 1).is_empty


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 0, -1, 2), "Rect.width must be >= 0"),
        ((0, 0, 1, -2), "Rect.height must be >= 0"),
        ((0.5, 0, 1, 1), "Rect.x must be an integer"),
        ((0, True, 1, 1), "Rect.y must be an integer, got bool"),
        ((0, 0, "3", 1), "Rect.width must be an integer"),
    ],
)
def test_rect_rejects_bad_fields(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rect(*args)


def test_size_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="Size.width must be >= 0"):
        Size(-1, 2)
    with pytest.raises(ValueError, match="Size.height must be an integer"):
        Size(1, 2.0)


def test_numpy_integers_become_plain_ints() -> None:
    r = Rect(np.int64(-3), np.int32(2), np.uint16(5), np.int64(6))
    assert r == Rect(-3, 2, 5, 6)
    assert all(type(v) is int for v in (r.x, r.y, r.width, r.height))


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        Rect(0, 0, 1, 1).x = 3  # type: ignore[misc]


def test_from_edges() -> None:
    assert Rect.from_edges(-4, -2, 6, 3) == Rect(-4, -2, 10, 5)
    assert Rect.from_edges(2, 2, 2, 9).is_empty
    with pytest.raises(ValueError, match="inverted"):
        Rect.from_edges(5, 0, 4, 1)


def test_intersect_examples() -> None:
    assert Rect(0, 0, 10, 10).intersect(Rect(5, -5, 10, 10)) == Rect(5, 0, 5, 5)
    assert Rect(-10, -10, 5, 5).intersect(Rect(-7, -8, 100, 1)) == Rect(-7, -8, 2, 1)
    assert Rect(0, 0, 4, 4).intersect(Rect(4, 0, 4, 4)) == Rect(0, 0, 0, 0)  # touching edges: disjoint


@given(rects, rects)
def test_intersect_is_pixel_intersection(a: Rect, b: Rect) -> None:
    result = a.intersect(b)
    assert pixels(result) == pixels(a) & pixels(b)
    if result.is_empty:
        assert result == Rect(0, 0, 0, 0)


@given(rects, rects)
def test_union_is_smallest_cover(a: Rect, b: Rect) -> None:
    u = a.union(b)
    assert pixels(a) | pixels(b) <= pixels(u)
    if not a.is_empty and not b.is_empty:
        assert u.x == min(a.x, b.x) and u.right == max(a.right, b.right)
        assert u.y == min(a.y, b.y) and u.bottom == max(a.bottom, b.bottom)
    elif a.is_empty:
        assert u == (b if not b.is_empty else a)
    else:
        assert u == a


@given(rects, rects)
def test_contains_matches_pixel_subset(a: Rect, b: Rect) -> None:
    if not a.is_empty and not b.is_empty:
        assert a.contains(b) == (pixels(b) <= pixels(a))
    if a.is_empty:
        assert not a.contains(b)


def test_contains_point() -> None:
    r = Rect(-2, -2, 3, 3)
    assert r.contains_point(-2, -2) and r.contains_point(0, 0)
    assert not r.contains_point(1, 0) and not r.contains_point(0, 1)


def test_expand_and_translate() -> None:
    assert Rect(0, 0, 4, 6).expand(3) == Rect(-3, -3, 10, 12)
    assert Rect(0, 0, 4, 6).expand(-1) == Rect(1, 1, 2, 4)
    assert Rect(0, 0, 4, 6).expand(-3) == Rect(2, 3, 0, 0)
    assert Rect(1, 2, 3, 4).translate(-5, 7) == Rect(-4, 9, 3, 4)


@given(rects, st.integers(0, 10))
def test_expand_then_shrink_round_trips(r: Rect, n: int) -> None:
    assert r.expand(n).expand(-n) == r


@given(rects, st.builds(Rect, coord, coord, st.integers(1, 12), st.integers(1, 12)))
def test_clamp_to_lies_within_bounds(r: Rect, bounds: Rect) -> None:
    c = r.clamp_to(bounds)
    assert bounds.x <= c.x <= c.right <= bounds.right
    assert bounds.y <= c.y <= c.bottom <= bounds.bottom
    assert pixels(c) == pixels(r) & pixels(bounds)
    if not r.intersect(bounds).is_empty:
        assert c == r.intersect(bounds)


def test_clamp_to_disjoint_sits_on_nearest_edge() -> None:
    assert Rect(20, 2, 5, 3).clamp_to(Rect(0, 0, 10, 10)) == Rect(10, 2, 0, 3)


@given(rects)
def test_dict_round_trip(r: Rect) -> None:
    assert Rect.from_dict(r.to_dict()) == r
    assert Size.from_dict(r.size.to_dict()) == r.size


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2, 3, 4], "Rect must be a JSON object"),
        ({"x": 0, "y": 0, "width": 1}, "missing field\\(s\\): height"),
        ({"x": 0, "y": 0, "width": 1, "height": 1, "z": 2}, "unknown field\\(s\\): z"),
        ({"x": 0, "y": 0, "width": 1.5, "height": 1}, "Rect.width must be an integer"),
        ({"x": 0, "y": 0, "width": -1, "height": 1}, "Rect.width must be >= 0"),
    ],
)
def test_from_dict_errors(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rect.from_dict(data)


def test_size_from_dict_errors() -> None:
    with pytest.raises(ValueError, match="Size is missing field\\(s\\): width"):
        Size.from_dict({"height": 3})
