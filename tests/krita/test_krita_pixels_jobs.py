"""Host-independent pixel handling and job bookkeeping of the Krita plugin."""

from __future__ import annotations

import struct

import pytest
from underpaint.plugin_krita import jobs as J
from underpaint.plugin_krita import pixels as X
from underpaint.protocol import plugin_core as core
from underpaint.protocol.geometry import Rect

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


def test_plans_come_from_the_core_with_the_canvas_as_bounds() -> None:
    plan = core.regions.plan_region("img2img", CANVAS, None, 16, source=Rect(20, 10, 50, 30), bounds_name="canvas")
    job = _job("a", 1)
    assert job.capture.kind == "img2img" and plan.bounds == CANVAS


def _job(job_id: str, doc: int) -> J.Job:
    capture = J.Capture(J.Plan("img2img", CANVAS, Rect(0, 0, 1, 1), False), "bgra8", bytes(4), None, "", "x")
    return J.Job(job_id, doc, "doc", capture, params=None)  # type: ignore[arg-type]
