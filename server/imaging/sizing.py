"""Model-side sizes and resampling."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from underpaint.protocol.geometry import Size


def _wh(size: Size) -> tuple[int, int]:
    if size.is_empty:
        raise ValueError(f"cannot resize to an empty size {size.width}x{size.height}")
    return size.width, size.height


def fit_to_model(size: Size, resolution: int, max_pixels: int | None = None, multiple: int = 8) -> Size:
    """The model-side size for a region: area about ``resolution ** 2``, same aspect, sides multiples of
    ``multiple`` and >= ``multiple``, area <= ``max_pixels`` when given.

    Small regions are upscaled and large ones downscaled. For slivers too thin to keep the aspect, the
    short side becomes ``multiple`` and the long side takes the rest of the area budget.
    """
    if size.is_empty:
        raise ValueError(f"cannot fit an empty size {size.width}x{size.height} to the model")
    if resolution < 1 or multiple < 1:
        raise ValueError(f"resolution and multiple must be >= 1, got {resolution} and {multiple}")
    target = float(resolution) ** 2
    if max_pixels is not None:
        if max_pixels < multiple * multiple:
            raise ValueError(f"max_pixels={max_pixels} is below the minimum {multiple}x{multiple}")
        target = min(target, float(max_pixels))
    scale = math.sqrt(target / size.area)
    width, height = size.width * scale, size.height * scale
    if width < multiple:
        width, height = multiple, max(multiple, target / multiple)
    elif height < multiple:
        width, height = max(multiple, target / multiple), multiple
    w = max(multiple, round(width / multiple) * multiple)
    h = max(multiple, round(height / multiple) * multiple)
    while max_pixels is not None and w * h > max_pixels:
        if w >= h and w > multiple:
            w -= multiple
        else:
            h -= multiple
    return Size(w, h)


def resize_rgb(img: np.ndarray, size: Size) -> np.ndarray:
    """Resize (H, W, 3) uint8 with PIL LANCZOS; an unchanged size returns a copy, pixel for pixel."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"resize_rgb needs (H, W, 3) uint8, got {img.shape} {img.dtype}")
    if (img.shape[1], img.shape[0]) == _wh(size):
        return img.copy()
    resized = Image.fromarray(np.ascontiguousarray(img), "RGB").resize(_wh(size), Image.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def resize_float(img: np.ndarray, size: Size) -> np.ndarray:
    """Resize (H, W, C) float32 channel by channel with PIL LANCZOS in 32-bit float (16-bit and float layers
    keep their levels); an unchanged size returns a copy. Lanczos may overshoot the input's range a little."""
    if img.ndim != 3 or img.dtype != np.float32:
        raise ValueError(f"resize_float needs (H, W, C) float32, got {img.shape} {img.dtype}")
    if (img.shape[1], img.shape[0]) == _wh(size):
        return img.copy()
    channels = [Image.fromarray(np.ascontiguousarray(img[..., c]), "F").resize(_wh(size), Image.LANCZOS)
                for c in range(img.shape[2])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def resize_colour(img: np.ndarray, size: Size) -> np.ndarray:
    """Resize (H, W, 3) colour with LANCZOS in its own dtype: uint8 as RGB, float32 channel by channel."""
    return resize_rgb(img, size) if img.dtype == np.uint8 else resize_float(img, size)


def resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W) uint8 or float32 mask with PIL BILINEAR (antialiased when shrinking)."""
    if mask.ndim != 2 or mask.dtype not in (np.uint8, np.float32):
        raise ValueError(f"resize_mask needs (H, W) uint8 or float32, got {mask.shape} {mask.dtype}")
    if (mask.shape[1], mask.shape[0]) == _wh(size):
        return mask.copy()
    mode = "L" if mask.dtype == np.uint8 else "F"
    resized = Image.fromarray(np.ascontiguousarray(mask), mode).resize(_wh(size), Image.BILINEAR)
    return np.asarray(resized, dtype=mask.dtype).copy()


def padded_size(size: Size, multiple: int = 8) -> Size:
    """``size`` rounded up to multiples of ``multiple`` (a tiled run's model size)."""
    if size.is_empty:
        raise ValueError(f"cannot pad an empty size {size.width}x{size.height}")
    return Size(-(-size.width // multiple) * multiple, -(-size.height // multiple) * multiple)


def pad_edges(img: np.ndarray, size: Size) -> np.ndarray:
    """(H, W[, C]) grown to ``size`` at the right and bottom by repeating the last column and row."""
    h, w = img.shape[:2]
    if size.width < w or size.height < h:
        raise ValueError(f"cannot pad {w}x{h} to the smaller {size.width}x{size.height}")
    pad = [(0, size.height - h), (0, size.width - w)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pad, mode="edge")
