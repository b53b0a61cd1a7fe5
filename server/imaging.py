"""Pure image functions between wire pixels and the model: decode/encode, resize, masks, paste-back.

No I/O and no torch. Colour images are numpy arrays of shape (H, W, 4) in RGBA order with dtype
uint8, uint16, float16 or float32 (not premultiplied). Masks are (H, W) uint8 (0 = untouched, 255 = selected);
blend alphas are (H, W) float32 in 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from underpaint.protocol.geometry import Rect, Size, context_region

__all__ = [
    "PIXEL_FORMATS", "KINDS", "Prepared", "bytes_per_pixel", "decode_pixels", "encode_pixels",
    "convert_depth", "to_rgb8", "alpha_of", "fit_to_model", "resize_rgb", "resize_mask", "mask_bbox",
    "crop_for_inpaint", "grow_mask", "feather_mask", "composite", "prepare", "finish",
]  # fmt: skip

# name -> (wire dtype, channel layout on the wire)
PIXEL_FORMATS: dict[str, tuple[str, str]] = {
    "rgba8": ("u1", "RGBA"),
    "bgra8": ("u1", "BGRA"),
    "rgb8": ("u1", "RGB"),
    "rgba16": ("<u2", "RGBA"),
    "bgra16": ("<u2", "BGRA"),
    "rgbaf16": ("<f2", "RGBA"),
    "rgbaf32": ("<f4", "RGBA"),
    "gray8": ("u1", "Y"),
    "graya8": ("u1", "YA"),
    "gray16": ("<u2", "Y"),
    "graya16": ("<u2", "YA"),
}
KINDS = ("img2img", "inpaint")
_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float16), np.dtype(np.float32))
_LUMA = (0.2126, 0.7152, 0.0722)  # Rec.709 luma weights, applied to the encoded (non-linear) values


def _format(fmt: str) -> tuple[np.dtype, str]:
    if fmt not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel format {fmt!r}; expected one of {', '.join(PIXEL_FORMATS)}")
    wire, layout = PIXEL_FORMATS[fmt]
    return np.dtype(wire), layout


def _check_colour(name: str, array: np.ndarray, channels: tuple[int, ...] = (4,)) -> None:
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] not in channels:
        shape = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"{name} must be an (H, W, {'|'.join(map(str, channels))}) array, got {shape}")
    if array.dtype not in _DTYPES:
        raise ValueError(f"{name} has dtype {array.dtype}; expected uint8, uint16, float16 or float32")


def _max_value(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def _wh(size: Size) -> tuple[int, int]:
    if size.is_empty:
        raise ValueError(f"cannot resize to an empty size {size.width}x{size.height}")
    return size.width, size.height


def _desc(array: object) -> str:
    return f"{getattr(array, 'shape', type(array).__name__)} {getattr(array, 'dtype', '')}".strip()


def _check_mask_shape(mask: np.ndarray, size: Size) -> None:
    if getattr(mask, "shape", None) != (size.height, size.width):
        raise ValueError(f"mask is {_desc(mask)} but the image is {size.width}x{size.height}")


def bytes_per_pixel(fmt: str) -> int:
    wire, layout = _format(fmt)
    return wire.itemsize * len(layout)


def decode_pixels(data: bytes | bytearray | memoryview, width: int, height: int, fmt: str) -> np.ndarray:
    """Wire pixels -> a writable (H, W, 4) RGBA array in the format's native dtype.

    Formats without alpha get an opaque alpha (255, 65535); gray formats copy Y into R, G and B.
    """
    wire, layout = _format(fmt)
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    expected = width * height * wire.itemsize * len(layout)
    if len(data) != expected:
        raise ValueError(f"{fmt} pixels of {width}x{height} need {expected} bytes, got {len(data)}")
    wire_pixels = np.frombuffer(data, dtype=wire).reshape(height, width, len(layout))
    native = wire.newbyteorder("=")
    out = np.empty((height, width, 4), dtype=native)
    index = {"RGBA": (0, 1, 2, 3), "BGRA": (2, 1, 0, 3), "RGB": (0, 1, 2), "Y": (0, 0, 0), "YA": (0, 0, 0, 1)}
    src = index[layout]
    for channel, source_channel in enumerate(src):
        out[..., channel] = wire_pixels[..., source_channel]
    if len(src) == 3:
        out[..., 3] = _max_value(native)
    return out


def encode_pixels(array: np.ndarray, fmt: str) -> bytes:
    """An (H, W, 4) RGBA (or opaque (H, W, 3) RGB) array -> wire bytes; the inverse of ``decode_pixels``.

    The array is first converted to the format's depth with ``convert_depth``. Gray formats take Rec.709
    luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the stored (gamma-encoded) values, rounded to nearest; data
    that came from ``decode_pixels`` in the same format round-trips byte for byte.
    """
    wire, layout = _format(fmt)
    _check_colour("array", array, (3, 4))
    pixels = convert_depth(array, wire.newbyteorder("="))
    if pixels.shape[2] == 3:
        alpha = np.full(pixels.shape[:2] + (1,), _max_value(pixels.dtype), dtype=pixels.dtype)
        pixels = np.concatenate([pixels, alpha], axis=2)
    if layout in ("RGBA", "RGB"):
        out = pixels[..., : len(layout)]
    elif layout == "BGRA":
        out = pixels[..., (2, 1, 0, 3)]
    else:
        rgb = pixels[..., :3].astype(np.float64)
        y = rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2]
        y = np.clip(np.rint(y), 0, _max_value(pixels.dtype)).astype(pixels.dtype)
        out = y[..., None] if layout == "Y" else np.stack([y, pixels[..., 3]], axis=2)
    return np.ascontiguousarray(out, dtype=wire).tobytes()


def convert_depth(array: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Convert pixel values between uint8, uint16, float16 and float32 (float range 0..1).

    uint8 -> uint16 is ``x * 257`` (exact inverse: uint16 -> uint8 is ``round(x / 257)``); float -> integer
    clamps to 0..1 (NaN becomes 0) and rounds to nearest. Returns ``array`` itself when the dtype matches.
    """
    target = np.dtype(dtype)
    if target not in _DTYPES:
        raise ValueError(f"cannot convert pixels to dtype {target}")
    source = array.dtype
    if source == target:
        return array
    if source not in _DTYPES:
        raise ValueError(f"cannot convert pixels from dtype {source}")
    if source.kind == "u" and target.kind == "u":
        if target == np.uint16:
            return array.astype(np.uint16) * np.uint16(257)
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if target.kind == "f":
        scaled = array.astype(np.float32)
        if source.kind == "u":
            scaled /= np.float32(_max_value(source))
        return scaled.astype(target)
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    top = _max_value(target)
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(top)).astype(target)


def to_rgb8(rgba: np.ndarray) -> np.ndarray:
    """The colour channels as (H, W, 3) uint8 for the model (16-bit: round(x / 257); float: clamp 0..1)."""
    _check_colour("rgba", rgba, (3, 4))
    return np.ascontiguousarray(convert_depth(rgba[..., :3], np.uint8))


def alpha_of(rgba: np.ndarray) -> np.ndarray:
    """The alpha channel as (H, W) float32 in 0..1 (float alpha is clamped, NaN becomes 0)."""
    _check_colour("rgba", rgba)
    alpha = convert_depth(rgba[..., 3], np.float32)
    if rgba.dtype.kind == "f":
        alpha = np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
    return np.ascontiguousarray(alpha)


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


def resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W) uint8 or float32 mask with PIL BILINEAR (antialiased when shrinking)."""
    if mask.ndim != 2 or mask.dtype not in (np.uint8, np.float32):
        raise ValueError(f"resize_mask needs (H, W) uint8 or float32, got {mask.shape} {mask.dtype}")
    if (mask.shape[1], mask.shape[0]) == _wh(size):
        return mask.copy()
    mode = "L" if mask.dtype == np.uint8 else "F"
    resized = Image.fromarray(np.ascontiguousarray(mask), mode).resize(_wh(size), Image.BILINEAR)
    return np.asarray(resized, dtype=mask.dtype).copy()


def _mask_u8(name: str, mask: np.ndarray) -> np.ndarray:
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
    selected = _mask_u8("mask", mask) != 0
    rows, cols = np.flatnonzero(selected.any(axis=1)), np.flatnonzero(selected.any(axis=0))
    if rows.size == 0:
        return None
    return Rect.from_edges(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def crop_for_inpaint(image_rect: Rect, mask: np.ndarray, context: int) -> Rect:
    """Document-space region to inpaint: the mask's bounds plus ``context`` pixels, clamped to the image and
    aligned to multiples of 8 (see ``context_region``). ``mask`` covers ``image_rect`` pixel for pixel."""
    _check_mask_shape(mask, image_rect.size)
    bbox = mask_bbox(mask)
    if bbox is None:
        raise ValueError("inpaint mask is empty: no pixel is selected")
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
    m = _mask_u8("mask", mask)
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
    m = _mask_u8("mask", mask)
    radii = [px // 3 + (1 if i < px % 3 else 0) for i in range(3)]
    total = m.astype(np.int64)
    weight = 255
    for radius in radii:
        for axis in (0, 1):
            total = _box_sum(total, radius, axis)
        weight *= (2 * radius + 1) ** 2
    return (total / weight).astype(np.float32)


def composite(original_rgba: np.ndarray, generated_rgb8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Paste ``generated_rgb8`` over ``original_rgba`` with ``alpha``, in the original's dtype.

    Where alpha == 0 the result is byte-identical to the original; where alpha == 1 the colour is the
    generated pixel converted with ``convert_depth``; in between a float32 blend. The original's alpha
    channel is always kept as is.
    """
    _check_colour("original_rgba", original_rgba)
    shape = original_rgba.shape[:2]
    if generated_rgb8.shape != shape + (3,) or generated_rgb8.dtype != np.uint8:
        raise ValueError(f"generated image must be {shape + (3,)} uint8, got {_desc(generated_rgb8)}")
    if alpha.shape != shape:
        raise ValueError(f"alpha must be {shape}, got {alpha.shape}")
    a = alpha.astype(np.float32, copy=False)
    if not np.all((a >= 0) & (a <= 1)):
        raise ValueError("alpha must lie in 0..1 (and not be NaN)")
    out = original_rgba.copy()
    generated = convert_depth(generated_rgb8, original_rgba.dtype)
    full, partial = a >= 1, (a > 0) & (a < 1)
    colour = out[..., :3]
    colour[full] = generated[full]
    if partial.any():
        base = original_rgba[..., :3][partial].astype(np.float32)
        blend = base + (generated[partial].astype(np.float32) - base) * a[partial][:, None]
        if out.dtype.kind == "u":
            blend = np.clip(np.rint(blend), 0, _max_value(out.dtype))
        colour[partial] = blend.astype(out.dtype)
    return out


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` hands to the model, and what ``finish`` needs to paste the result back."""

    region: Rect  # document coordinates of the pixels that ``finish`` returns
    model_image: np.ndarray  # (h, w, 3) uint8 at model size
    model_mask: np.ndarray | None  # (h, w) uint8 0/255 at model size; inpaint only
    blend_alpha: np.ndarray | None  # (H, W) float32 over ``region``; None = replace every pixel's colour
    source: np.ndarray  # (H, W, 4) the region's original pixels, original dtype
    kind: str = "img2img"

    @property
    def model_size(self) -> Size:
        return Size(self.model_image.shape[1], self.model_image.shape[0])


def prepare(
    image_rgba: np.ndarray,
    image_rect: Rect,
    mask: np.ndarray | None,
    kind: str,
    resolution: int,
    context: int,
    grow: int,
    feather: int,
    max_pixels: int | None,
) -> Prepared:
    """Cut, scale and mask an image for the model.

    img2img: the region is the whole image; a mask, if given, only limits the paste-back (``blend_alpha``).
    inpaint: the region is the mask's bounds plus ``max(context, max(grow, 0) + feather)`` pixels (so the
    feathered edge fits), clamped to the image and aligned to 8 (``context_region``). The mask is grown by
    ``grow`` (negative shrinks); ``model_mask`` is every pixel the grown mask touches, scaled to the model;
    ``blend_alpha`` is the grown mask feathered by ``feather``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    _check_colour("image", image_rgba)
    if image_rgba.shape[:2] != (image_rect.height, image_rect.width):
        raise ValueError(
            f"image is {image_rgba.shape[1]}x{image_rgba.shape[0]} but image_rect is "
            f"{image_rect.width}x{image_rect.height}"
        )
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    if mask is not None:
        _check_mask_shape(mask, image_rect.size)
        mask = _mask_u8("mask", mask)
    if kind == "img2img":
        region, local_mask = image_rect, mask
    else:
        if mask is None:
            raise ValueError("inpaint needs a mask")
        region = crop_for_inpaint(image_rect, mask, max(context, max(grow, 0) + feather))
        local = region.translate(-image_rect.x, -image_rect.y)
        local_mask = mask[local.y : local.bottom, local.x : local.right]
    local = region.translate(-image_rect.x, -image_rect.y)
    source = image_rgba[local.y : local.bottom, local.x : local.right].copy()
    size = fit_to_model(region.size, resolution, max_pixels)
    model_image = resize_rgb(to_rgb8(source), size)
    if local_mask is None:
        return Prepared(region, model_image, None, None, source, kind)
    grown = grow_mask(local_mask, grow)
    if not grown.any():
        raise ValueError(f"the mask is empty after shrinking it by {-grow} px")
    blend_alpha = feather_mask(grown, feather)
    model_mask = None
    if kind == "inpaint":
        touched = np.where(grown > 0, np.uint8(255), np.uint8(0))
        model_mask = np.where(resize_mask(touched, size) > 0, np.uint8(255), np.uint8(0))
    return Prepared(region, model_image, model_mask, blend_alpha, source, kind)


def finish(prepared: Prepared, generated_rgb8: np.ndarray) -> np.ndarray:
    """Scale the model's output back to the region and paste it over ``prepared.source``.

    Returns (H, W, 4) in the source dtype covering ``prepared.region``: colour from the generated image
    (blended by ``blend_alpha`` when there is one), alpha channel unchanged.
    """
    expected = prepared.model_image.shape
    if generated_rgb8.shape != expected or generated_rgb8.dtype != np.uint8:
        raise ValueError(f"generated image must be {expected} uint8, got {_desc(generated_rgb8)}")
    scaled = resize_rgb(generated_rgb8, prepared.region.size)
    alpha = prepared.blend_alpha
    if alpha is None:
        alpha = np.ones(scaled.shape[:2], dtype=np.float32)
    return composite(prepared.source, scaled, alpha)
