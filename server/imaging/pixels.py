"""Wire pixel formats (``vocabulary.PIXEL_FORMATS``), depth conversion and the paste-back composite.

Colour images are (H, W, 4) numpy arrays in RGBA order (not premultiplied) with dtype uint8, uint16,
float16 or float32; float values are nominally 0..1.
"""

from __future__ import annotations

import numpy as np
from underpaint.protocol.vocabulary import PIXEL_FORMATS

_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float16), np.dtype(np.float32))
_LUMA = (0.2126, 0.7152, 0.0722)  # Rec.709 luma weights, applied to the encoded (non-linear) values
_BAND = 256  # rows per step when blending


def _format(fmt: str) -> tuple[np.dtype, str]:
    if fmt not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel format {fmt!r}; expected one of {', '.join(PIXEL_FORMATS)}")
    row = PIXEL_FORMATS[fmt]
    return np.dtype(row.dtype), row.layout


def check_colour(name: str, array: np.ndarray, channels: tuple[int, ...] = (4,)) -> None:
    """Raise ValueError (naming ``name``) unless ``array`` is an (H, W, C) colour image of a supported dtype."""
    if not isinstance(array, np.ndarray) or array.ndim != 3 or array.shape[2] not in channels:
        shape = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"{name} must be an (H, W, {'|'.join(map(str, channels))}) array, got {shape}")
    if array.dtype not in _DTYPES:
        raise ValueError(f"{name} has dtype {array.dtype}; expected uint8, uint16, float16 or float32")


def max_value(dtype: np.dtype) -> float:
    """Full scale of a pixel dtype: 255 / 65535 for unsigned integers, 1.0 for floats."""
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def describe_array(array: object) -> str:
    """Shape and dtype of an array for an error sentence (the type name for anything else)."""
    return f"{getattr(array, 'shape', type(array).__name__)} {getattr(array, 'dtype', '')}".strip()


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
    if layout == "RGBA":  # one copy, no per-channel pass
        return wire_pixels.astype(native, copy=True)
    out = np.empty((height, width, 4), dtype=native)
    index = {"RGBA": (0, 1, 2, 3), "BGRA": (2, 1, 0, 3), "RGB": (0, 1, 2), "Y": (0, 0, 0), "YA": (0, 0, 0, 1)}
    src = index[layout]
    for channel, source_channel in enumerate(src):
        out[..., channel] = wire_pixels[..., source_channel]
    if len(src) == 3:
        out[..., 3] = max_value(native)
    return out


def encode_pixels(array: np.ndarray, fmt: str) -> bytes:
    """An (H, W, 4) RGBA (or opaque (H, W, 3) RGB) array -> wire bytes; the inverse of ``decode_pixels``.

    The array is first converted to the format's depth with ``convert_depth``. Gray formats take Rec.709
    luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the stored (gamma-encoded) values, rounded to nearest; data
    that came from ``decode_pixels`` in the same format round-trips byte for byte.
    """
    wire, layout = _format(fmt)
    check_colour("array", array, (3, 4))
    pixels = convert_depth(array, wire.newbyteorder("="))
    if pixels.shape[2] == 3:
        alpha = np.full(pixels.shape[:2] + (1,), max_value(pixels.dtype), dtype=pixels.dtype)
        pixels = np.concatenate([pixels, alpha], axis=2)
    if layout in ("RGBA", "RGB"):
        out = pixels[..., : len(layout)]
    elif layout == "BGRA":  # channel-wise copies into one buffer: several times faster than fancy indexing
        out = np.empty(pixels.shape, dtype=wire)
        for channel, source in enumerate((2, 1, 0, 3)):
            out[..., channel] = pixels[..., source]
    else:
        rgb = pixels[..., :3].astype(np.float64)
        y = rgb[..., 0] * _LUMA[0] + rgb[..., 1] * _LUMA[1] + rgb[..., 2] * _LUMA[2]
        y = np.clip(np.rint(y), 0, max_value(pixels.dtype)).astype(pixels.dtype)
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
            scaled /= np.float32(max_value(source))
        return scaled.astype(target)
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    top = max_value(target)
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(top)).astype(target)


def to_rgb8(rgba: np.ndarray) -> np.ndarray:
    """The colour channels as (H, W, 3) uint8 for the model (16-bit: round(x / 257); float: clamp 0..1)."""
    check_colour("rgba", rgba, (3, 4))
    return np.ascontiguousarray(convert_depth(rgba[..., :3], np.uint8))


def alpha_of(rgba: np.ndarray) -> np.ndarray:
    """The alpha channel as (H, W) float32 in 0..1 (float alpha is clamped, NaN becomes 0)."""
    check_colour("rgba", rgba)
    alpha = convert_depth(rgba[..., 3], np.float32)
    if rgba.dtype.kind == "f":
        alpha = np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
    return np.ascontiguousarray(alpha)


def composite(original_rgba: np.ndarray, generated_rgb8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Paste ``generated_rgb8`` over ``original_rgba`` with ``alpha``, in the original's dtype.

    Where alpha == 0 the result is byte-identical to the original; where alpha == 1 the colour is the
    generated pixel converted with ``convert_depth``; in between a float32 blend. The original's alpha
    channel is always kept as is.
    """
    check_colour("original_rgba", original_rgba)
    shape = original_rgba.shape[:2]
    if generated_rgb8.shape != shape + (3,) or generated_rgb8.dtype != np.uint8:
        raise ValueError(f"generated image must be {shape + (3,)} uint8, got {describe_array(generated_rgb8)}")
    if alpha.shape != shape:
        raise ValueError(f"alpha must be {shape}, got {alpha.shape}")
    a = alpha.astype(np.float32, copy=False)
    if not np.all((a >= 0) & (a <= 1)):
        raise ValueError("alpha must lie in 0..1 (and not be NaN)")
    out = original_rgba.copy()
    generated = convert_depth(generated_rgb8, original_rgba.dtype)
    colour = out[..., :3]
    np.copyto(colour, generated, where=(a >= 1)[..., None])
    partial = (a > 0) & (a < 1)
    for top in range(0, shape[0], _BAND):  # row bands bound the float32 working memory
        band = slice(top, top + _BAND)
        where = partial[band]
        if not where.any():
            continue
        weight = a[band][..., None]
        with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN originals (float layers) stay as they are
            blend = original_rgba[band, :, :3] * (np.float32(1) - weight) + generated[band] * weight
        if out.dtype.kind == "u":
            blend = np.clip(np.rint(blend), 0, max_value(out.dtype))
        np.copyto(colour[band], blend.astype(out.dtype), where=where[..., None])
    return out
