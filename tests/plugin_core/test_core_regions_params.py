"""Region planning and the parameter / feature checks of the plugin core."""

from __future__ import annotations

import pytest
from underpaint.protocol import messages, vocabulary
from underpaint.protocol.geometry import Rect, context_region
from underpaint.protocol.plugin_core import params, regions

CANVAS = Rect(0, 0, 200, 100)
LAYER = Rect(20, 12, 48, 40)


def test_img2img_sends_the_source_clipped_to_the_bounds() -> None:
    plan = regions.plan_region("img2img", CANVAS, None, 16, source=Rect(20, 10, 50, 30))
    assert (plan.region, plan.masked) == (Rect(20, 10, 50, 30), False)
    assert regions.plan_region("img2img", CANVAS, None, 16, source=Rect(-40, -20, 300, 200)).region == CANVAS
    assert regions.plan_region("img2img", LAYER, None, 16).region == LAYER  # GIMP: the layer itself
    forced = regions.plan_region("img2img", CANVAS, Rect(190, 90, 30, 30), 16)
    assert (forced.region, forced.masked) == (Rect(190, 90, 10, 10), True)


def test_inpaint_sends_the_selection_with_context_aligned_inside_the_bounds() -> None:
    sel = Rect(50, 40, 30, 20)
    plan = regions.plan_region("inpaint", CANVAS, sel, 16)
    assert plan.region == context_region(sel, CANVAS, 16) and plan.region.contains(sel.expand(16)) and plan.masked
    small = regions.plan_region("inpaint", LAYER, Rect(30, 20, 10, 10), 4)
    assert LAYER.contains(small.region) and small.region.width % 8 == 0 and small.region.height % 8 == 0
    assert small.local() == small.region.translate(-20, -12)


def test_auto_mode_inpaints_a_selection() -> None:
    assert regions.choose_kind("auto", True) == "inpaint" and regions.choose_kind("auto", False) == "img2img"
    assert regions.choose_kind("img2img", True) == "img2img"
    with pytest.raises(regions.RegionError, match="Unknown mode"):
        regions.choose_kind("paint", False)


@pytest.mark.parametrize(("kind", "bounds", "selection", "source", "fragment"), [
    ("inpaint", CANVAS, None, None, "Inpaint needs a selection"),
    ("inpaint", CANVAS, Rect(3, 3, 0, 0), None, "Inpaint needs a selection"),  # an empty selection is none
    ("img2img", CANVAS, None, Rect(300, 300, 10, 10), "no pixels on the canvas"),
    ("img2img", CANVAS, Rect(500, 500, 5, 5), None, "does not overlap the canvas"),
    ("inpaint", LAYER, Rect(0, 0, 5, 5), None, "does not overlap the canvas"),
    ("img2img", Rect(0, 0, 0, 5), None, None, "has no pixels"),
    ("outpaint", CANVAS, None, None, "Unknown job kind"),
])
def test_plan_errors_tell_the_painter_what_to_do(kind, bounds, selection, source, fragment) -> None:
    with pytest.raises(regions.RegionError, match=fragment):
        regions.plan_region(kind, bounds, selection, 8, source=source, bounds_name="canvas")


def test_results_must_lie_inside_the_region_sent() -> None:
    plan = regions.plan_region("img2img", LAYER, None, 0)
    regions.check_result(plan, LAYER)
    regions.check_result(plan, Rect(24, 16, 8, 8))
    with pytest.raises(regions.RegionError, match=r"returned a result for 48x40 at \(0, 0\), outside"):
        regions.check_result(plan, Rect(0, 0, 48, 40))


@pytest.mark.parametrize(("value", "bounds", "integer", "fragment"), [
    (0.0, vocabulary.STRENGTH, False, "strength must be between 0.01 and 1"),
    (float("nan"), vocabulary.GUIDANCE, False, "must be between"),
    (2.5, vocabulary.STEPS, True, "must be a whole number"),
    (True, vocabulary.STEPS, True, "must be a number"),
    ("7", vocabulary.GUIDANCE, False, "must be a number"),
    (vocabulary.MAX_SEED + 1, (0, vocabulary.MAX_SEED), True, "between 0 and"),
])
def test_numbers_are_checked_against_the_vocabulary_ranges(value, bounds, integer, fragment) -> None:
    with pytest.raises(params.ParamsError, match=fragment):
        params.number("strength" if bounds is vocabulary.STRENGTH else "x", value, bounds, integer)


def test_numbers_in_range_come_back_typed() -> None:
    assert params.number("steps", 20.0, vocabulary.STEPS, integer=True) == 20
    assert params.number("cfg", 7, vocabulary.GUIDANCE) == 7.0 and params.seed("seed", 0) == 0


LIMITS = messages.Limits(max_pixels=1000, max_frame_bytes=10**6, max_queued_jobs=2, max_batch=4, max_steps=50)


def test_server_limits_are_sentences_with_the_hosts_labels() -> None:
    assert params.limit_problem(LIMITS, 50, 4, 1000) is None
    assert "at most 50 steps per job, but Steps is 51" in params.limit_problem(LIMITS, 51, 1)
    assert "at most 4 images per job, but Batch is 5" in params.limit_problem(LIMITS, 1, 5, labels=("S", "Batch"))
    assert "accepts at most 1,000" in params.limit_problem(LIMITS, 1, 1, 1001)


def test_the_ui_offers_only_what_both_peers_advertised() -> None:
    common = ("kind:img2img", "sampler:euler", "encoding:webp", "encoding:jpeg")
    offer = params.offer(common, params.client_features(("jpeg",)))
    assert offer.kinds == ("img2img",) and offer.samplers == ("default", "euler")
    assert offer.preview_encoding(("webp", "jpeg")) == "jpeg"  # webp: this client did not advertise it
    assert params.offer(("kind:inpaint",)).preview_encoding(("jpeg",)) == "png"
    assert params.offer(None).kinds == ("img2img", "inpaint")  # not connected: the canvas kinds wait for a server
    assert params.offer(("kind:upscale", "kind:img2img")).kinds == ("img2img", "upscale")
    assert "does not offer inpaint (it offers img2img)" in params.kind_problem(offer.kinds, "inpaint")
    assert params.kind_problem(offer.kinds, "img2img") is None
    assert "resume" not in params.client_features() and "tiled" in params.client_features()
    assert {"kind:outpaint", "kind:upscale"} <= set(params.client_features())
    assert params.offer(("tiled",), params.client_features()).tiled and not params.offer(("resume",)).tiled
