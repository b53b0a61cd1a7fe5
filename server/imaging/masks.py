"""Selection masks: bounds, inpaint crops, grow/shrink and feather.

Masks are (H, W) uint8 (0 = untouched, 255 = selected); grown or feathered results are float32 0..1.
"""

from __future__ import annotations

import numpy as np
from underpaint.protocol.geometry import Rect, Size, context_region

from .pixels import describe_array


class EmptyMask(ValueError):
    """The mask selects nothing to repaint (as sent, or after shrinking it)."""


def check_mask_shape(mask: np.ndarray, size: Size) -> None:
    """Raise ValueError unless ``mask`` covers an image of ``size``."""
    if getattr(mask, "shape", None) != (size.height, size.width):
        raise ValueError(f"mask is {describe_array(mask)} but the image is {size.width}x{size.height}")


def mask_u8(name: str, mask: np.ndarray) -> np.ndarray:
    """A mask as (H, W) uint8: uint8 as is, bool as 0/255, float 0..1 scaled by 255 and rounded."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) array, got {getattr(mask, 'shape', type(mask).__name__)}")
    if mask.dtype == np.uint8:
        return mask
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8) * np.uint8(255)
    if mask.dtype.kind == "f":
        return np.rint(np.clip(np.nan_to_num(mask, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"{name} must be uint8, bool or float, got {mask.dtype}")


def mask_bbox(mask: np.ndarray) -> Rect | None:
    """Bounds of the non-zero pixels of an (H, W) mask in mask coordinates, or None when all are zero."""
    selected = mask_u8("mask", mask) != 0
    rows, cols = np.flatnonzero(selected.any(axis=1)), np.flatnonzero(selected.any(axis=0))
    if rows.size == 0:
        return None
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def crop_for_inpaint(image_rect: Rect, mask: np.ndarray, context: int) -> Rect:
    """Document-space region to inpaint: the mask's bounds plus ``context`` pixels, clamped to the image and
    aligned to multiples of 8 (see ``context_region``). ``mask`` covers ``image_rect`` pixel for pixel."""
    check_mask_shape(mask, image_rect.size)
    bbox = mask_bbox(mask)
    if bbox is None:
        raise EmptyMask("inpaint mask is empty: no pixel is selected")
    return context_region(bbox.translate(image_rect.x, image_rect.y), image_rect, context)


def _window_extreme(a: np.ndarray, radius: int, axis: int, grow: bool) -> np.ndarray:
    """Max (grow) or min of each window of ``2 * radius + 1`` along ``axis``, edges replicated.

    Uses doubling so the cost is O(log radius) array passes.
    """
    if radius == 0:
        return a
    op = np.maximum if grow else np.minimum
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius, radius)
    b = np.pad(a, pad, mode="edge")
    n, window, span = a.shape[axis], 2 * radius + 1, 1
    while span * 2 <= window:  # b[i] = extreme of padded[i : i + 2 * span]
        length = b.shape[axis] - span
        b = op(b.take(range(length), axis=axis), b.take(range(span, span + length), axis=axis))
        span *= 2
    return op(b.take(range(n), axis=axis), b.take(range(window - span, window - span + n), axis=axis))


def grow_mask(mask: np.ndarray, px: int) -> np.ndarray:
    """Grey-scale dilation by ``px`` pixels (a square, Chebyshev-distance structuring element); negative
    ``px`` erodes (shrinks). Image borders replicate, so a mask touching the border is not eroded from it.
    Takes uint8, bool or float 0..1 masks; returns float32 0..1 (values are multiples of 1/255)."""
    m = mask_u8("mask", mask)
    radius = abs(int(px))
    out = _window_extreme(_window_extreme(m, radius, 0, px > 0), radius, 1, px > 0)
    return out.astype(np.float32) / np.float32(255)


def _box_sum(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sum over windows of ``2 * radius + 1`` along ``axis`` in int64, edges replicated (exact)."""
    if radius == 0:
        return a
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.int64)
    n = a.shape[axis]
    return c.take(range(2 * radius + 1, 2 * radius + 1 + n), axis=axis) - c.take(range(n), axis=axis)


def feather_mask(mask: np.ndarray, px: int) -> np.ndarray:
    """Soften mask edges by ``px`` pixels: three box blurs per axis whose radii sum to ``px`` (a close
    approximation of a gaussian with sigma = sqrt(sum(r * (r + 1)) / 3), about px / 3).

    Exact integer arithmetic: alpha is exactly 0 more than ``px`` pixels (Chebyshev) from any selected pixel
    and exactly 1 more than ``px`` inside a fully selected area. ``px == 0`` returns the mask as 0..1.
    Takes uint8, bool or float 0..1 masks; returns float32 0..1.
    """
    px = int(px)
    if px < 0:
        raise ValueError(f"feather must be >= 0, got {px}")
    m = mask_u8("mask", mask)
    radii = [px // 3 + (1 if i < px % 3 else 0) for i in range(3)]
    total = m.astype(np.int64)
    weight = 255
    for radius in radii:
        for axis in (0, 1):
            total = _box_sum(total, radius, axis)
        weight *= (2 * radius + 1) ** 2
    return (total / weight).astype(np.float32)
