"""Pixel format choice and region planning of the GIMP plug-in (no GIMP needed)."""

from __future__ import annotations

import sys

import pytest
from underpaint.plugin_gimp import pixels as px
from underpaint.plugin_gimp.params import IMG2IMG, INPAINT
from underpaint.protocol.geometry import Rect
from underpaint.protocol.plugin_core import regions


@pytest.mark.parametrize(("base", "component", "wire", "babl", "bpp"), [
    ("rgb", "u8", "rgba8", "R'G'B'A u8", 4),
    ("rgb", "u16", "rgba16", "R'G'B'A u16", 8),
    ("rgb", "float", "rgba16", "R'G'B'A u16", 8),
    ("rgb", "half", "rgba16", "R'G'B'A u16", 8),
    ("gray", "u8", "graya8", "Y'A u8", 2),
    ("gray", "u32", "graya16", "Y'A u16", 4),
])
def test_format_choice(base: str, component: str, wire: str, babl: str, bpp: int) -> None:
    spec = px.choose_spec(base, component)
    assert (spec.wire_format, spec.babl_format, spec.bytes_per_pixel) == (wire, babl, bpp)
    assert spec.gray == (base == "gray")


def test_indexed_is_refused_with_advice() -> None:
    with pytest.raises(px.UnsupportedImage, match="Image > Mode > RGB"):
        px.choose_spec("indexed", "u8")
    with pytest.raises(px.UnsupportedImage, match="unknown image base type"):
        px.choose_spec("cmyk", "u8")


@pytest.mark.parametrize(("nick", "component"), [
    ("u8-non-linear", "u8"), ("u16-linear", "u16"), ("float-perceptual", "float"), ("DOUBLE_LINEAR", "double"),
])
def test_precision_nicks(nick: str, component: str) -> None:
    assert px.component_of(nick) == component


def test_unknown_precision() -> None:
    with pytest.raises(px.UnsupportedImage, match="unknown image precision"):
        px.component_of("u12-linear")


def test_byte_order(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes([1, 2, 3, 4])
    assert px.to_little_endian(data, 1) == data
    monkeypatch.setattr(sys, "byteorder", "big")
    assert px.to_little_endian(data, 2) == bytes([2, 1, 4, 3])
    assert px.to_little_endian(data, 1) == data
    with pytest.raises(ValueError, match="even length"):
        px.to_little_endian(b"\x01\x02\x03", 2)


def test_check_pixels() -> None:
    spec = px.choose_spec("gray", "u16")
    px.check_pixels(bytes(2 * 3 * 4), 2, 3, spec, "x")
    with pytest.raises(ValueError, match="expected 24 bytes for 2x3 graya16, got 23"):
        px.check_pixels(bytes(23), 2, 3, spec, "x")


LAYER = Rect(20, 12, 48, 40)


def plan(kind: str, selection: Rect | None, context: int = 64):
    return regions.plan_region(kind, LAYER, selection, context)


def test_img2img_without_selection_sends_the_layer() -> None:
    p = plan(IMG2IMG, None)
    assert p.region == LAYER and not p.masked and p.local() == Rect(0, 0, 48, 40)


def test_img2img_with_selection_sends_the_clipped_selection_masked() -> None:
    p = plan(IMG2IMG, Rect(0, 30, 40, 100))
    assert p.region == Rect(20, 30, 20, 22) and p.masked and p.local() == Rect(0, 18, 20, 22)


def test_inpaint_uses_context_region_inside_the_layer() -> None:
    p = plan(INPAINT, Rect(30, 20, 10, 10), context=4)
    assert p.masked and LAYER.contains(p.region) and p.region.contains(Rect(26, 16, 18, 18))


@pytest.mark.parametrize(("kind", "selection", "message"), [
    (INPAINT, None, "Inpaint needs a selection"),
    (IMG2IMG, Rect(100, 100, 5, 5), "does not overlap the layer"),
])
def test_region_errors_name_the_layer(kind: str, selection: Rect | None, message: str) -> None:
    with pytest.raises(regions.RegionError, match=message):
        plan(kind, selection)


def test_support_mask() -> None:
    assert px.support_mask(bytes([0, 1, 128, 255])) == bytes([0, 255, 255, 255])


def test_preview_rgb_conversions() -> None:
    assert px.preview_rgb("rgb8", b"\x01\x02\x03", 1, 1) == (b"\x01\x02\x03", False)
    assert px.preview_rgb("rgba8", b"\x01\x02\x03\x04", 1, 1) == (b"\x01\x02\x03\x04", True)
    assert px.preview_rgb("gray8", b"\x05\x06", 2, 1) == (b"\x05\x05\x05\x06\x06\x06", False)
    assert px.preview_rgb("graya8", b"\x05\x80", 1, 1) == (b"\x05\x05\x05\x80", True)
    assert px.preview_rgb("rgb16", bytes([0x34, 0x12, 0x78, 0x56, 0xbc, 0x9a]), 1, 1) == (b"\x12\x56\x9a", False)
    assert px.preview_rgb("graya16", bytes([0, 0x40, 0xff, 0xff]), 1, 1) == (b"\x40\x40\x40\xff", True)
    assert px.preview_rgb("rgb8", b"\x01", 1, 1) is None  # wrong size
    assert px.preview_rgb("rgbaf32", bytes(16), 1, 1) is None
