"""Wire pixel formats, depth conversion and model sizing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from underpaint.protocol.geometry import Size
from underpaint.protocol.vocabulary import PIXEL_FORMATS
from underpaint.server.imaging import (
    alpha_of,
    bytes_per_pixel,
    convert_depth,
    decode_pixels,
    encode_pixels,
    fit_to_model,
    resize_mask,
    resize_rgb,
    to_rgb8,
)

EXPECTED_BPP = {
    "rgba8": 4, "bgra8": 4, "rgb8": 3, "rgba16": 8, "bgra16": 8, "rgbaf16": 8, "rgbaf32": 16,
    "gray8": 1, "graya8": 2, "gray16": 2, "graya16": 4,
}  # fmt: skip
NATIVE = {"8": np.uint8, "16": np.uint16, "f16": np.float16, "f32": np.float32}


def native_dtype(fmt: str) -> type:
    for suffix in ("f16", "f32", "16", "8"):
        if fmt.endswith(suffix):
            return NATIVE[suffix]
    raise AssertionError(fmt)


def test_bytes_per_pixel() -> None:
    assert {f: bytes_per_pixel(f) for f in PIXEL_FORMATS} == EXPECTED_BPP
    with pytest.raises(ValueError, match="unknown pixel format 'rgb16'"):
        bytes_per_pixel("rgb16")


@given(st.sampled_from(sorted(PIXEL_FORMATS)), st.integers(1, 5), st.integers(1, 5), st.data())
def test_decode_encode_round_trip(fmt: str, width: int, height: int, data: st.DataObject) -> None:
    n = width * height * EXPECTED_BPP[fmt]
    raw = data.draw(st.binary(min_size=n, max_size=n))
    pixels = decode_pixels(raw, width, height, fmt)
    assert pixels.shape == (height, width, 4) and pixels.dtype == native_dtype(fmt)
    assert pixels.flags.writeable
    assert encode_pixels(pixels, fmt) == raw


def test_decode_channel_orders() -> None:
    assert decode_pixels(bytes([1, 2, 3, 4]), 1, 1, "bgra8").tolist() == [[[3, 2, 1, 4]]]
    assert decode_pixels(bytes([1, 2, 3]), 1, 1, "rgb8").tolist() == [[[1, 2, 3, 255]]]
    assert decode_pixels(bytes([9, 8]), 2, 1, "gray8").tolist() == [[[9, 9, 9, 255], [8, 8, 8, 255]]]
    assert decode_pixels(bytes([9, 8]), 1, 1, "graya8").tolist() == [[[9, 9, 9, 8]]]
    # little-endian: bytes 01 02 -> 0x0201
    assert decode_pixels(bytes([1, 2, 3, 4]), 1, 1, "graya16").tolist() == [[[513, 513, 513, 1027]]]
    assert decode_pixels(bytes([1, 2]), 1, 1, "gray16").tolist() == [[[513, 513, 513, 65535]]]
    bgra16 = decode_pixels(np.array([1, 2, 3, 4], "<u2").tobytes(), 1, 1, "bgra16")
    assert bgra16.tolist() == [[[3, 2, 1, 4]]]
    f16 = decode_pixels(np.array([0.5, 1.0, -2.0, 0.25], "<f2").tobytes(), 1, 1, "rgbaf16")
    assert f16.dtype == np.float16 and f16.tolist() == [[[0.5, 1.0, -2.0, 0.25]]]


@pytest.mark.parametrize(
    "args, message",
    [
        ((b"\0" * 7, 1, 2, "rgba8"), "rgba8 pixels of 1x2 need 8 bytes, got 7"),
        ((b"\0" * 4, 1, 1, "cmyk8"), "unknown pixel format 'cmyk8'"),
        ((b"", 0, 1, "rgba8"), "width must be a positive integer"),
        ((b"\0" * 4, 1, 1.0, "rgba8"), "height must be a positive integer"),
    ],
)
def test_decode_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_pixels(*args)


def test_encode_gray_uses_rec709_luma() -> None:
    rgba = np.array([[[255, 0, 0, 10], [0, 255, 0, 20], [0, 0, 255, 30], [10, 20, 30, 40]]], np.uint8)
    assert list(encode_pixels(rgba, "gray8")) == [54, 182, 18, round(0.2126 * 10 + 0.7152 * 20 + 0.0722 * 30)]
    assert list(encode_pixels(rgba, "graya8")) == [54, 10, 182, 20, 18, 30, 19, 40]


def test_encode_converts_depth_and_accepts_rgb() -> None:
    rgba = np.array([[[1, 2, 3, 255]]], np.uint8)
    assert np.frombuffer(encode_pixels(rgba, "bgra16"), "<u2").tolist() == [3 * 257, 2 * 257, 257, 65535]
    assert encode_pixels(rgba[..., :3], "rgba8") == bytes([1, 2, 3, 255])
    assert encode_pixels(rgba, "rgb8") == bytes([1, 2, 3])
    with pytest.raises(ValueError, match="array must be an \\(H, W, 3\\|4\\) array"):
        encode_pixels(np.zeros((2, 2), np.uint8), "rgba8")
    with pytest.raises(ValueError, match="dtype int32"):
        encode_pixels(np.zeros((2, 2, 4), np.int32), "rgba8")


def test_convert_depth_integer_round_trips() -> None:
    u8 = np.arange(256, dtype=np.uint8)
    assert np.array_equal(convert_depth(convert_depth(u8, np.uint16), np.uint8), u8)
    u16 = np.arange(65536, dtype=np.uint16)
    expected = np.array([round(v / 257) for v in range(65536)], np.uint8)
    assert np.array_equal(convert_depth(u16, np.uint8), expected)
    for dtype in (np.float16, np.float32):
        assert np.array_equal(convert_depth(convert_depth(u8, dtype), np.uint8), u8)


def test_convert_depth_float_to_int_clamps() -> None:
    f = np.array([-1.0, 0.0, 0.5, 1.0, 7.0, np.nan, np.inf], np.float32)
    assert convert_depth(f, np.uint8).tolist() == [0, 0, 128, 255, 255, 0, 255]
    assert convert_depth(f, np.uint16).tolist() == [0, 0, 32768, 65535, 65535, 0, 65535]


def test_to_rgb8_and_alpha_of() -> None:
    u16 = np.array([[[128, 129, 65535, 32768]]], np.uint16)
    assert to_rgb8(u16).tolist() == [[[0, 1, 255]]]
    assert alpha_of(u16).dtype == np.float32 and alpha_of(u16)[0, 0] == pytest.approx(0.5, abs=1e-4)
    f = np.array([[[1.5, -0.5, 0.2, 2.0], [0.0, 0.0, 0.0, np.nan]]], np.float16)
    assert to_rgb8(f).tolist() == [[[255, 0, round(float(np.float32(np.float16(0.2))) * 255)], [0, 0, 0]]]
    assert alpha_of(f).tolist() == [[1.0, 0.0]]
    u8 = np.array([[[1, 2, 3, 51]]], np.uint8)
    assert to_rgb8(u8).tolist() == [[[1, 2, 3]]] and to_rgb8(u8).flags.c_contiguous
    assert alpha_of(u8)[0, 0] == pytest.approx(0.2)


def test_fit_to_model_examples() -> None:
    assert fit_to_model(Size(64, 64), 512) == Size(512, 512)  # upscale
    assert fit_to_model(Size(4096, 4096), 1024) == Size(1024, 1024)  # downscale
    assert fit_to_model(Size(2048, 1024), 512) == Size(728, 360)
    assert fit_to_model(Size(3, 5), 1024, max_pixels=4096) == Size(48, 80)  # huge upscale, capped


def test_fit_to_model_sliver() -> None:
    s = fit_to_model(Size(1, 4000), 512)
    assert s.width == 8 and s.height % 8 == 0 and abs(s.area - 512 * 512) <= 0.02 * 512 * 512
    s = fit_to_model(Size(100000, 1), 512, max_pixels=200_000)
    assert s.height == 8 and s.area <= 200_000


def test_fit_to_model_errors() -> None:
    with pytest.raises(ValueError, match="empty size 0x5"):
        fit_to_model(Size(0, 5), 512)
    with pytest.raises(ValueError, match="max_pixels=10 is below the minimum 8x8"):
        fit_to_model(Size(5, 5), 512, max_pixels=10)
    with pytest.raises(ValueError, match="resolution and multiple must be >= 1"):
        fit_to_model(Size(5, 5), 0)


@given(
    st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([256, 512, 768, 1024]),
    st.one_of(st.none(), st.integers(64, 2_000_000)),
)  # fmt: skip
def test_fit_to_model_properties(width: int, height: int, resolution: int, max_pixels: int | None) -> None:
    s = fit_to_model(Size(width, height), resolution, max_pixels)
    assert s.width % 8 == 0 and s.height % 8 == 0 and s.width >= 8 and s.height >= 8
    target = min(resolution**2, max_pixels) if max_pixels is not None else resolution**2
    if max_pixels is not None:
        assert s.area <= max_pixels
    aspect = width / height
    if 1 / 8 <= aspect <= 8 and target >= 128 * 128:
        assert 0.8 * target <= s.area <= 1.1 * target
        assert math.isclose(s.width / s.height, aspect, rel_tol=0.2)


def test_resize_rgb_and_mask() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
    same = resize_rgb(img, Size(20, 10))
    assert np.array_equal(same, img) and same is not img
    assert resize_rgb(img, Size(8, 16)).shape == (16, 8, 3)
    flat = np.full((10, 20, 3), 77, np.uint8)
    assert np.all(resize_rgb(flat, Size(64, 40)) == 77)
    mask = np.zeros((10, 20), np.uint8)
    mask[:, 10:] = 255
    small = resize_mask(mask, Size(4, 2))
    assert small.dtype == np.uint8 and small[:, 0].tolist() == [0, 0] and small[:, -1].tolist() == [255, 255]
    assert resize_mask(mask.astype(np.float32) / 255, Size(40, 20)).dtype == np.float32
    with pytest.raises(ValueError, match="empty size"):
        resize_rgb(img, Size(0, 3))
    with pytest.raises(ValueError, match="resize_rgb needs \\(H, W, 3\\) uint8"):
        resize_rgb(img.astype(np.uint16), Size(3, 3))
    with pytest.raises(ValueError, match="resize_mask needs"):
        resize_mask(mask.astype(np.int16), Size(3, 3))
