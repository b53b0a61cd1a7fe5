"""Mask bounds, inpaint crops, grow and feather."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from underpaint.protocol.geometry import Rect
from underpaint.server.imaging import crop_for_inpaint, feather_mask, grow_mask, mask_bbox

small_masks = arrays(
    np.uint8, st.tuples(st.integers(1, 14), st.integers(1, 14)), elements=st.sampled_from([0, 0, 0, 40, 255])
)


def brute_extreme(mask: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    out = np.empty_like(mask)
    h, w = mask.shape
    for y in range(h):
        for x in range(w):
            window = mask[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
            out[y, x] = window.max() if grow else window.min()
    return out


def test_mask_bbox() -> None:
    mask = np.zeros((6, 9), np.uint8)
    assert mask_bbox(mask) is None
    mask[2, 3] = 1
    mask[4, 7] = 255
    assert mask_bbox(mask) == Rect(3, 2, 5, 3)
    assert mask_bbox(mask.astype(bool)) == Rect(3, 2, 5, 3)
    with pytest.raises(ValueError, match="mask must be an \\(H, W\\) array"):
        mask_bbox(np.zeros((2, 2, 1), np.uint8))


def test_crop_for_inpaint_negative_offset() -> None:
    image = Rect(-100, -50, 200, 120)
    mask = np.zeros((120, 200), np.uint8)
    mask[10:20, 30:33] = 255  # document x -70..-67, y -40..-30
    region = crop_for_inpaint(image, mask, context=8)
    assert image.contains(region) and region.contains(Rect(-70, -40, 3, 10))
    assert region.width % 8 == 0 and region.height % 8 == 0
    assert region == Rect(-80, -50, 24, 32)  # top clipped at the image edge


def test_crop_for_inpaint_errors() -> None:
    with pytest.raises(ValueError, match="inpaint mask is empty"):
        crop_for_inpaint(Rect(0, 0, 4, 4), np.zeros((4, 4), np.uint8), 8)
    with pytest.raises(ValueError, match="mask is \\(4, 5\\) uint8 but the image is 4x4"):
        crop_for_inpaint(Rect(0, 0, 4, 4), np.zeros((4, 5), np.uint8), 8)


def test_grow_single_pixel_makes_square() -> None:
    mask = np.zeros((9, 9), np.uint8)
    mask[4, 4] = 255
    grown = grow_mask(mask, 2)
    assert grown.dtype == np.float32
    assert np.array_equal(np.argwhere(grown == 1.0).min(0), [2, 2])
    assert np.array_equal(np.argwhere(grown == 1.0).max(0), [6, 6])
    assert (grown > 0).sum() == 25
    assert not grow_mask(mask, -1).any()


def test_grow_zero_is_the_mask_as_alpha() -> None:
    mask = np.array([[0, 51, 255]], np.uint8)
    assert grow_mask(mask, 0).tolist() == [[0.0, np.float32(51) / np.float32(255), 1.0]]


def test_shrink_keeps_image_border() -> None:
    mask = np.full((6, 6), 255, np.uint8)
    mask[:, 4:] = 0
    shrunk = grow_mask(mask, -1)
    assert shrunk[:, :3].all() and not shrunk[:, 3:].any()  # only the inner edge moved


@given(small_masks, st.integers(-4, 4))
def test_grow_matches_brute_force(mask: np.ndarray, px: int) -> None:
    expected = brute_extreme(mask, abs(px), px > 0).astype(np.float32) / np.float32(255)
    assert np.array_equal(grow_mask(mask, px), expected)


def test_feather_zero_and_errors() -> None:
    mask = np.array([[0, 128, 255]], np.uint8)
    assert np.array_equal(feather_mask(mask, 0), mask.astype(np.float32) / np.float32(255))
    with pytest.raises(ValueError, match="feather must be >= 0"):
        feather_mask(mask, -1)
    with pytest.raises(ValueError, match="mask must be uint8, bool or float"):
        feather_mask(np.zeros((2, 2), np.int32), 1)


def test_feather_is_a_soft_symmetric_edge() -> None:
    mask = np.zeros((1, 41), np.uint8)
    mask[0, 20:] = 255
    row = feather_mask(mask, 6)[0]
    assert np.all(np.diff(row) >= 0)  # monotonic ramp
    assert row[:14].tolist() == [0.0] * 14 and row[26:].tolist() == [1.0] * 15
    assert 0 < row[14] < row[25] < 1
    assert np.allclose(row[14:20] + row[25:19:-1], 1.0, atol=1e-6)  # the ramp is point-symmetric


@given(small_masks, st.integers(1, 6))
def test_feather_support_is_exact(mask: np.ndarray, px: int) -> None:
    alpha = feather_mask(mask, px)
    assert alpha.dtype == np.float32 and alpha.shape == mask.shape
    assert alpha.min() >= 0 and alpha.max() <= 1
    near_any = brute_extreme(mask, px, grow=True) > 0
    all_full = brute_extreme(mask, px, grow=False) == 255
    assert not alpha[~near_any].any()  # exactly 0 beyond px of every selected pixel
    assert np.all(alpha[all_full] == 1.0)  # exactly 1 deep inside
    assert np.all(alpha[near_any & ~all_full] < 1.0)


def test_feather_accepts_float_alpha_from_grow() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[8:12, 8:12] = 255
    assert np.array_equal(feather_mask(grow_mask(mask, 2), 3), feather_mask(brute_extreme(mask, 2, True), 3))
