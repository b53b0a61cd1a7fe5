"""Host-independent pixel handling, region planning and naming of the Krita plugin."""

from __future__ import annotations

import struct

import pytest
from underpaint.plugin_krita import jobs as J
from underpaint.plugin_krita import pixels as X
from underpaint.protocol.geometry import Rect, context_region

CANVAS = Rect(0, 0, 200, 100)


@pytest.mark.parametrize(("model", "depth", "fmt"), [("RGBA", "U8", "bgra8"), ("RGBA", "U16", "bgra16"),
                                                     ("RGBA", "F16", "rgbaf16"), ("RGBA", "F32", "rgbaf32")])
def test_krita_colour_spaces_map_to_protocol_formats(model: str, depth: str, fmt: str) -> None:
    assert X.pixel_format(model, depth) == fmt


@pytest.mark.parametrize(("model", "depth"), [("CMYKA", "U8"), ("GRAYA", "U8"), ("RGBA", "U32")])
def test_other_colour_spaces_are_refused_with_advice(model: str, depth: str) -> None:
    with pytest.raises(X.UnsupportedDocument, match=f"{model} {depth}.*Convert Image Color Space"):
        X.pixel_format(model, depth)


def test_bgra8_previews_convert_to_every_document_format() -> None:
    bgra = bytes([10, 20, 30, 255, 0, 128, 255, 0])
    assert X.from_bgra8("bgra8", bgra) == bgra
    assert struct.unpack("<8H", X.from_bgra8("bgra16", bgra)) == tuple(v * 257 for v in bgra)
    f16 = struct.unpack("<8e", X.from_bgra8("rgbaf16", bgra))
    assert f16 == pytest.approx([30 / 255, 20 / 255, 10 / 255, 1.0, 1.0, 128 / 255, 0.0, 0.0], abs=1e-3)
    f32 = struct.unpack("<8f", X.from_bgra8("rgbaf32", bgra))
    assert f32 == pytest.approx([30 / 255, 20 / 255, 10 / 255, 1.0, 1.0, 128 / 255, 0.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="multiple of 4"):
        X.from_bgra8("bgra8", b"123")


def test_crop_takes_rows_and_columns() -> None:
    data = bytes(range(4 * 3 * 2))  # 4 x 3 pixels, 2 bytes each
    assert X.crop(data, 2, 4, 1, 1, 2, 2) == bytes([10, 11, 12, 13, 18, 19, 20, 21])
    with pytest.raises(ValueError, match="outside"):
        X.crop(data, 2, 4, 3, 0, 2, 1)


def test_clear_unchanged_keeps_only_generated_pixels() -> None:
    original = bytes([1, 2, 3, 255]) * 6  # 3 x 2
    result = bytearray(original)
    result[4:8] = bytes([9, 9, 9, 255])  # pixel (1, 0) changed
    cleared, kept = X.clear_unchanged(bytes(result), original, 4, 3)
    assert kept == 1
    assert cleared == bytes(4) + bytes([9, 9, 9, 255]) + bytes(16)
    with pytest.raises(ValueError, match="source region"):
        X.clear_unchanged(b"1234", b"12345678", 4, 1)
    with pytest.raises(ValueError, match="whole rows"):
        X.clear_unchanged(bytes(12), bytes(12), 4, 2)


def test_check_size_names_the_mismatch() -> None:
    X.check_size("rgbaf32", bytes(32), 2, 1)
    with pytest.raises(ValueError, match="2x1 rgbaf32 image needs 32"):
        X.check_size("rgbaf32", bytes(31), 2, 1)


def test_img2img_sends_the_layer_clipped_to_the_canvas() -> None:
    assert J.plan_region("auto", CANVAS, Rect(20, 10, 50, 30), None, 16) == J.Plan("img2img", Rect(20, 10, 50, 30))
    big = J.plan_region("img2img", CANVAS, Rect(-40, -20, 300, 200), None, 16)
    assert big == J.Plan("img2img", CANVAS)
    assert J.plan_region("auto", CANVAS, None, None, 16) == J.Plan("img2img", CANVAS)  # visible image


def test_selection_means_inpaint_with_context() -> None:
    sel = Rect(50, 40, 30, 20)
    plan = J.plan_region("auto", CANVAS, Rect(0, 0, 10, 10), sel, 16)
    assert plan == J.Plan("inpaint", context_region(sel, CANVAS, 16))
    assert plan.region.contains(sel.expand(16))


def test_img2img_can_be_forced_with_a_selection() -> None:
    plan = J.plan_region("img2img", CANVAS, Rect(0, 0, 200, 100), Rect(190, 90, 30, 30), 16)
    assert plan == J.Plan("img2img", Rect(190, 90, 10, 10))


@pytest.mark.parametrize(("mode", "source", "selection", "fragment"), [
    ("inpaint", Rect(0, 0, 10, 10), None, "Inpaint needs a selection"),
    ("auto", Rect(300, 300, 10, 10), None, "no pixels on the canvas"),
    ("auto", Rect(0, 0, 0, 0), None, "no pixels on the canvas"),
    ("auto", Rect(0, 0, 10, 10), Rect(500, 500, 5, 5), "outside the canvas"),
    ("paint", Rect(0, 0, 10, 10), None, "Unknown mode"),
])
def test_plan_errors_tell_the_painter_what_to_do(mode: str, source: Rect, selection: Rect | None,
                                                 fragment: str) -> None:
    with pytest.raises(J.UserError, match=fragment):
        J.plan_region(mode, CANVAS, source, selection, 8)


def test_empty_selection_counts_as_none() -> None:
    assert J.plan_region("auto", CANVAS, Rect(0, 0, 5, 5), Rect(3, 3, 0, 0), 8).kind == "img2img"


def test_result_layer_names() -> None:
    assert J.result_layer_name("a red fox", 12, "img2img") == "a red fox [img2img, seed 12]"
    assert J.result_layer_name("  ", 1, "inpaint") == "Underpaint [inpaint, seed 1]"
    long = "a very detailed oil painting of a lighthouse on a cliff at dusk, dramatic clouds"
    short = J.short_prompt(long)
    assert len(short) <= J.NAME_PROMPT_CHARS and short.endswith("…") and long.startswith(short[:-1])
    assert J.short_prompt("line\nbreaks\tand  spaces") == "line breaks and spaces"


def _job(job_id: str, doc: int) -> J.Job:
    capture = J.Capture(J.Plan("img2img", Rect(0, 0, 1, 1)), "bgra8", bytes(4), None, "", "x")
    return J.Job(job_id, doc, "doc", capture, params=None)  # type: ignore[arg-type]


def test_job_book_tracks_jobs_per_document() -> None:
    book = J.JobBook()
    book.add(_job("a", 1))
    book.add(_job("b", 2))
    book.add(_job("c", 1))
    with pytest.raises(ValueError, match="already tracked"):
        book.add(_job("a", 3))
    assert [j.id for j in book.for_document(1)] == ["a", "c"]
    assert book.running() is None
    book.get("c").state = "running"
    assert book.running().id == "c"
    assert book.pop("a").id == "a" and book.pop("a") is None and len(book) == 2
    assert book.get(None) is None
