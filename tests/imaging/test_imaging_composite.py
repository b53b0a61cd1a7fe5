"""Paste-back: byte identity outside the mask at every depth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from underpaint.server.imaging import composite, convert_depth

DTYPES = [np.uint8, np.uint16, np.float16, np.float32]


@st.composite
def scenes(draw: st.DrawFn, dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    itemsize = np.dtype(dtype).itemsize
    raw = draw(st.binary(min_size=h * w * 4 * itemsize, max_size=h * w * 4 * itemsize))
    original = np.frombuffer(raw, dtype=dtype).reshape(h, w, 4).copy()  # any bits: NaN, inf, -0.0 included
    generated = np.frombuffer(draw(st.binary(min_size=h * w * 3, max_size=h * w * 3)), np.uint8)
    levels = st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1, width=32))
    alpha = np.array(draw(st.lists(levels, min_size=h * w, max_size=h * w)), np.float32).reshape(h, w)
    return original, generated.reshape(h, w, 3).copy(), alpha


def check(original: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> None:
    out = composite(original, generated, alpha)
    assert out.dtype == original.dtype and out.shape == original.shape
    raw_out, raw_orig = out.view(np.uint8), original.view(np.uint8)  # compare bytes, not values
    item = original.dtype.itemsize
    outside = alpha == 0
    assert np.array_equal(raw_out[outside], raw_orig[outside])
    assert np.array_equal(raw_out[..., 3 * item :], raw_orig[..., 3 * item :])  # alpha channel untouched
    full = alpha == 1
    assert np.array_equal(out[..., :3][full], convert_depth(generated, original.dtype)[full])
    partial = (alpha > 0) & (alpha < 1)
    if original.dtype.kind == "u":
        lo = np.minimum(original[..., :3], convert_depth(generated, original.dtype))[partial]
        hi = np.maximum(original[..., :3], convert_depth(generated, original.dtype))[partial]
        assert np.all((lo <= out[..., :3][partial]) & (out[..., :3][partial] <= hi))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_composite_properties(dtype: type, data: st.DataObject) -> None:
    check(*data.draw(scenes(dtype)))


def test_composite_blend_values() -> None:
    original = np.array([[[0, 100, 200, 7]]], np.uint8)
    generated = np.array([[[255, 0, 100]]], np.uint8)
    out = composite(original, generated, np.array([[0.5]], np.float32))
    assert out.tolist() == [[[128, 50, 150, 7]]]
    f = composite(original.astype(np.float32) / 255, generated, np.array([[0.25]], np.float32))
    assert np.allclose(f[0, 0, :3], [0.25, 100 / 255 * 0.75, (200 * 0.75 + 100 * 0.25) / 255])
    assert f[0, 0, 3] == np.float32(7) / np.float32(255)


def test_composite_errors() -> None:
    original = np.zeros((2, 2, 4), np.uint16)
    generated = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha must lie in 0..1"):
        composite(original, generated, np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="alpha must lie in 0..1"):
        composite(original, generated, np.full((2, 2), 1.5, np.float32))
    with pytest.raises(ValueError, match="alpha must be \\(2, 2\\)"):
        composite(original, generated, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="generated image must be \\(2, 2, 3\\) uint8"):
        composite(original, generated.astype(np.uint16), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="original_rgba must be an \\(H, W, 4\\) array"):
        composite(original[..., :3], generated, np.zeros((2, 2), np.float32))
