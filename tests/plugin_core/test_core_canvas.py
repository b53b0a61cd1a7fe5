"""Expand canvas, upscale placement and the resolution menu, as both host plugins use them."""

from __future__ import annotations

import pytest
from underpaint.protocol import geometry, vocabulary
from underpaint.protocol.plugin_core import canvas
from underpaint.protocol.plugin_core.canvas import CanvasError, Expansion

Rect = geometry.Rect


def test_expanding_right_and_bottom_keeps_the_origin() -> None:
    plan = canvas.plan_expand(Rect(0, 0, 1536, 1024), canvas.expand_sides(128, ["right", "bottom"]))
    assert plan.region == Rect(0, 0, 1664, 1152)
    assert plan.shift == (0, 0)
    assert plan.expansion.describe() == "128 px right, 128 px bottom"


def test_expanding_left_and_top_sends_negative_coordinates_and_shifts_content() -> None:
    plan = canvas.plan_expand(Rect(0, 0, 100, 80), Expansion(left=16, top=8, right=4))
    assert plan.region == Rect(-16, -8, 120, 88)
    assert plan.shift == (16, 8)
    assert plan.after_growth(plan.region) == Rect(0, 0, 120, 88)
    assert plan.after_growth(Rect(0, 0, 100, 80)) == Rect(16, 8, 100, 80)


def test_expand_to_a_size_or_aspect() -> None:
    assert canvas.expand_to_size(100, 80, 121, 80) == Expansion(left=10, right=11)
    assert canvas.expand_to_size(100, 80, 140, 100, "top_left") == Expansion(right=40, bottom=20)
    assert canvas.expand_to_size(100, 80, 140, 100, "bottom_right") == Expansion(left=40, top=20)
    assert canvas.expand_to_aspect(1600, 900, 1, 1) == Expansion(top=350, bottom=350)
    assert canvas.expand_to_aspect(900, 900, 16, 9) == Expansion(left=350, right=350)
    e = canvas.expand_to_aspect(1000, 1000, 3, 2)  # 1500 wide
    assert (1000 + e.left + e.right, 1000 + e.top + e.bottom) == (1500, 1000)


@pytest.mark.parametrize("call, words", [
    (lambda: canvas.expand_to_size(100, 80, 90, 80), "smaller than the canvas"),
    (lambda: canvas.expand_to_size(100, 80, 120, 80, "middle"), "Unknown anchor"),
    (lambda: canvas.expand_sides(8, ["up"]), "Unknown side 'up'"),
    (lambda: Expansion(right=-1), "between 0 and"),
    (lambda: Expansion(right=1.5), "whole number"),
    (lambda: canvas.expand_to_aspect(10, 10, 0, 1), "two positive numbers"),
    (lambda: canvas.plan_expand(Rect(0, 0, 10, 10), Expansion()), "at least one side"),
    (lambda: canvas.plan_expand(Rect(0, 0, 100, 100), Expansion(right=100), max_pixels=10_000),
     "accepts at most 10,000"),
])
def test_bad_expansions_say_what_to_change(call, words) -> None:
    with pytest.raises(CanvasError, match=words):
        call()


def test_pad_puts_the_canvas_into_a_transparent_expanded_buffer() -> None:
    bpp, source = 4, Rect(0, 0, 3, 2)
    pixels = bytes(range(1, 25))  # 3x2 RGBA, no zero byte
    region = Rect(-1, -1, 5, 4)
    out = canvas.pad(pixels, bpp, source, region)
    assert len(out) == region.area * bpp
    rows = [out[r * 20:(r + 1) * 20] for r in range(4)]
    assert rows[0] == bytes(20) and rows[3] == bytes(20)
    assert rows[1] == bytes(4) + pixels[:12] + bytes(4)
    assert rows[2] == bytes(4) + pixels[12:] + bytes(4)
    with pytest.raises(ValueError, match="do not cover"):
        canvas.pad(pixels[:-1], bpp, source, region)


def test_upscale_results_land_at_the_scaled_offset() -> None:
    assert canvas.upscaled(Rect(10, 20, 30, 40), 2) == Rect(20, 40, 60, 80)
    assert canvas.upscaled(Rect(-5, 0, 8, 8), 4) == Rect(-20, 0, 32, 32)
    with pytest.raises(CanvasError, match="x2 or x4"):
        canvas.upscaled(Rect(0, 0, 8, 8), 3)
    assert canvas.upscale_problem(Rect(0, 0, 100, 100), 2, 40_000) is None
    assert "gives 400x400" in canvas.upscale_problem(Rect(0, 0, 100, 100), 4, 40_000)


def test_upscaler_menu_lists_the_servers_models_then_a_plain_resize() -> None:
    class Info:
        id, name, scale = "4x-ultra", "UltraSharp", 4

    assert canvas.upscaler_choices([Info()]) == [("UltraSharp (x4)", "4x-ultra"),
                                                 ("Plain resize (no upscaler model)", None)]


def test_resolution_menu_says_what_auto_picks() -> None:
    big = canvas.resolution_choices(1536, 1024, 512, 0.3)
    assert [v for _, v in big] == list(vocabulary.RESOLUTIONS)
    assert big[0][0] == "Auto (full resolution)" == "Auto (" + canvas.RESOLUTION_LABELS[
        vocabulary.pick_resolution(1536, 1024, 512, 0.3)].split(" (")[0].lower() + ")"
    assert canvas.resolution_choices(1536, 1024, 512, 0.8)[0][0] == "Auto (fit to model)"
    assert canvas.resolution_choices(512, 512, 512, 0.3)[0][0] == "Auto (fit to model)"
    assert dict((v, k) for k, v in big)["full"] == "Full resolution (tiled)"


def test_model_side_comes_from_the_welcome() -> None:
    class M:
        def __init__(self, id, resolution):
            self.id, self.resolution = id, resolution

    class W:
        models = (M("a", 512), M("b", 1024))

        class defaults:  # noqa: N801
            model = "b"

    assert canvas.model_side(W(), None) == 1024 and canvas.model_side(W(), "a") == 512
    assert canvas.model_side(None, None) == 512
