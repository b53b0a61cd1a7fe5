"""context_region and bounding_box."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from underpaint.protocol.geometry import Rect, bounding_box, context_region


def test_context_region_in_the_middle() -> None:
    layer = Rect(0, 0, 1000, 1000)
    region = context_region(Rect(100, 200, 50, 30), layer, padding=16)
    # 50 + 32 = 82 -> 88 (3 extra left, 3 right); 30 + 32 = 62 -> 64 (1 extra top, 1 bottom)
    assert region == Rect(81, 183, 88, 64)


def test_context_region_negative_layer_offset() -> None:
    layer = Rect(-300, -200, 400, 300)
    region = context_region(Rect(-290, -195, 10, 10), layer, padding=20)
    assert region.x == -300 and region.y == -200  # clamped at the layer's top-left
    assert region.width % 8 == 0 and region.height % 8 == 0
    assert layer.contains(region) and region.contains(Rect(-290, -195, 10, 10))
    assert region == Rect(-300, -200, 40, 40)  # 10+20 clipped +20 = 40 wide, already a multiple


def test_context_region_shifts_back_inside_at_right_edge() -> None:
    layer = Rect(0, 0, 100, 100)
    region = context_region(Rect(95, 95, 5, 5), layer, padding=2)
    # grown 93..100 (7 px) -> 8 px; would cross the edge, so it moves left
    assert region == Rect(92, 92, 8, 8)


def test_context_region_layer_smaller_than_multiple() -> None:
    layer = Rect(10, 10, 5, 13)
    region = context_region(Rect(11, 11, 1, 1), layer, padding=0)
    assert region == Rect(10, 10, 5, 8)  # width: whole layer (5 < 8); height: 11-3 clamped to the top


def test_context_region_one_pixel_sliver() -> None:
    layer = Rect(0, 0, 512, 512)
    region = context_region(Rect(0, 100, 1, 300), layer, padding=0)
    assert region.x == 0 and region.width == 8
    assert region.height == 304 and region.contains(Rect(0, 100, 1, 300))


def test_context_region_clips_selection_partly_outside() -> None:
    layer = Rect(0, 0, 64, 64)
    assert context_region(Rect(-50, -50, 60, 60), layer, padding=0) == Rect(0, 0, 16, 16)


@pytest.mark.parametrize(
    "selection, message",
    [
        (Rect(5, 5, 0, 10), "selection is empty"),
        (Rect(200, 5, 10, 10), "lies outside the layer"),
        (Rect(-10, 0, 10, 10), "lies outside the layer"),  # touches the left edge only
    ],
)
def test_context_region_errors(selection: Rect, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        context_region(selection, Rect(0, 0, 100, 100), padding=4)


def test_context_region_bad_parameters() -> None:
    with pytest.raises(ValueError, match="padding must be >= 0"):
        context_region(Rect(0, 0, 1, 1), Rect(0, 0, 9, 9), padding=-1)
    with pytest.raises(ValueError, match="multiple must be >= 1"):
        context_region(Rect(0, 0, 1, 1), Rect(0, 0, 9, 9), padding=0, multiple=0)


@given(
    st.builds(Rect, st.integers(-60, 60), st.integers(-60, 60), st.integers(1, 80), st.integers(1, 80)),
    st.builds(Rect, st.integers(-50, 0), st.integers(-50, 0), st.integers(1, 120), st.integers(1, 120)),
    st.integers(0, 40),
    st.sampled_from([1, 8, 64]),
)
def test_context_region_properties(selection: Rect, layer: Rect, padding: int, multiple: int) -> None:
    core = selection.intersect(layer)
    if core.is_empty:
        with pytest.raises(ValueError):
            context_region(selection, layer, padding, multiple)
        return
    region = context_region(selection, layer, padding, multiple)
    grown = core.expand(padding).intersect(layer)
    assert layer.contains(region) and region.contains(grown)
    for size, grown_size, layer_size in (
        (region.width, grown.width, layer.width),
        (region.height, grown.height, layer.height),
    ):
        if layer_size >= -(-grown_size // multiple) * multiple:
            assert size % multiple == 0 and grown_size <= size < grown_size + multiple
        else:
            assert size == layer_size


def brute_bbox(mask: bytes, width: int, height: int, threshold: int) -> Rect | None:
    hits = [(i % width, i // width) for i, v in enumerate(mask) if v >= threshold]
    if not hits:
        return None
    xs, ys = [h[0] for h in hits], [h[1] for h in hits]
    return Rect.from_edges(min(xs), min(ys), max(xs) + 1, max(ys) + 1)


@st.composite
def masks(draw: st.DrawFn) -> tuple[bytes, int, int]:
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    values = st.sampled_from([0, 0, 0, 0, 1, 7, 128, 255])
    data = bytes(draw(st.lists(values, min_size=width * height, max_size=width * height)))
    return data, width, height


@given(masks(), st.sampled_from([1, 2, 128, 255]))
def test_bounding_box_matches_brute_force(mask: tuple[bytes, int, int], threshold: int) -> None:
    data, width, height = mask
    expected = brute_bbox(data, width, height, threshold)
    assert bounding_box(data, width, height, threshold) == expected
    assert bounding_box(bytearray(data), width, height, threshold) == expected
    assert bounding_box(memoryview(data), width, height, threshold) == expected


def test_bounding_box_large_mask() -> None:
    width = height = 4096
    data = bytearray(width * height)
    assert bounding_box(data, width, height) is None
    rng = random.Random(3)
    points = [(rng.randrange(width), rng.randrange(height)) for _ in range(20)]
    for x, y in points:
        data[y * width + x] = 200
    expected = Rect.from_edges(
        min(p[0] for p in points), min(p[1] for p in points),
        max(p[0] for p in points) + 1, max(p[1] for p in points) + 1,
    )  # fmt: skip
    assert bounding_box(data, width, height) == expected
    assert bounding_box(data, width, height, threshold=201) is None


def test_bounding_box_errors() -> None:
    with pytest.raises(ValueError, match="mask has 5 bytes, expected 2x3 = 6"):
        bounding_box(b"\0" * 5, 2, 3)
    with pytest.raises(ValueError, match="threshold must be in 1..255"):
        bounding_box(b"\0" * 6, 2, 3, threshold=0)
    with pytest.raises(ValueError, match="width must be >= 0"):
        bounding_box(b"", -1, 3)
