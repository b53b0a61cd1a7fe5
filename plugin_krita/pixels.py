"""Pixel buffers of Krita documents in pure Python: formats, crops, preview conversion, inpaint clipping.

Krita's ``pixelData`` is BGRA for 8- and 16-bit integer RGBA and RGBA for 16/32-bit float RGBA, always
little-endian and tightly packed; these map one to one onto protocol pixel formats.
"""

from __future__ import annotations

import struct

from .proto import vocabulary

# (Krita colour model, colour depth) -> protocol pixel format
KRITA_FORMATS = {
    ("RGBA", "U8"): "bgra8",
    ("RGBA", "U16"): "bgra16",
    ("RGBA", "F16"): "rgbaf16",
    ("RGBA", "F32"): "rgbaf32",
}
BYTES_PER_PIXEL = {f: vocabulary.BYTES_PER_PIXEL[f] for f in KRITA_FORMATS.values()}
_F16_LEVELS = [struct.pack("<e", v / 255.0) for v in range(256)]
_F32_LEVELS = [struct.pack("<f", v / 255.0) for v in range(256)]


class UnsupportedDocument(ValueError):
    """The document's colour space has no protocol pixel format."""


def pixel_format(color_model: str, color_depth: str) -> str:
    """The protocol pixel format of a Krita colour space, or UnsupportedDocument with what to do instead."""
    try:
        return KRITA_FORMATS[(color_model, color_depth)]
    except KeyError:
        raise UnsupportedDocument(
            f"Underpaint works on RGBA documents of 8 or 16 bit integer or 16/32 bit float; this one is "
            f"{color_model} {color_depth}. Convert it with Image > Convert Image Color Space."
        ) from None


def expected_size(fmt: str, width: int, height: int) -> int:
    return width * height * BYTES_PER_PIXEL[fmt]


def check_size(fmt: str, data: bytes, width: int, height: int, what: str = "pixel data") -> None:
    need = expected_size(fmt, width, height)
    if len(data) != need:
        raise ValueError(f"{what} has {len(data)} bytes, a {width}x{height} {fmt} image needs {need}")


def from_bgra8(fmt: str, data: bytes) -> bytes:
    """Convert tightly packed BGRA8 (what Qt decodes previews to) into ``fmt``."""
    if len(data) % 4:
        raise ValueError(f"BGRA8 data must be a multiple of 4 bytes (got {len(data)})")
    if fmt == "bgra8":
        return bytes(data)
    if fmt == "bgra16":  # v * 257 little-endian is the byte pair (v, v)
        out = bytearray(len(data) * 2)
        out[0::2] = data
        out[1::2] = data
        return bytes(out)
    if vocabulary.PIXEL_FORMATS[fmt].dtype in ("<f2", "<f4"):  # half and single float RGBA
        rgba = bytearray(data)
        rgba[0::4], rgba[2::4] = data[2::4], data[0::4]
        table = _F16_LEVELS if fmt == "rgbaf16" else _F32_LEVELS
        return b"".join([table[v] for v in rgba])
    raise UnsupportedDocument(f"no preview conversion to {fmt}")


def crop(data: bytes, bpp: int, width: int, x: int, y: int, w: int, h: int) -> bytes:
    """Rows ``y .. y+h`` and columns ``x .. x+w`` of a ``width`` pixels wide buffer."""
    if x < 0 or y < 0 or w < 0 or h < 0 or x + w > width or (y + h) * width * bpp > len(data):
        raise ValueError(f"crop {w}x{h}@{x},{y} lies outside a buffer {width} pixels wide, "
                         f"{len(data) // max(1, width * bpp)} high")
    stride, start, row = width * bpp, x * bpp, w * bpp
    return b"".join(data[(y + r) * stride + start:(y + r) * stride + start + row] for r in range(h))


def clear_unchanged(result: bytes, original: bytes, bpp: int, width: int) -> tuple[bytes, int]:
    """Make every pixel of ``result`` that equals ``original`` fully transparent (all-zero bytes).

    For inpaint results: the server keeps pixels outside the (grown, feathered) selection byte-identical,
    so what is left is exactly the generated part, ready to sit on a layer above the source.
    Returns the new buffer and the number of pixels kept.
    """
    if len(result) != len(original):
        raise ValueError(f"result has {len(result)} bytes but the source region has {len(original)}")
    stride = width * bpp
    if not stride or len(result) % stride:
        raise ValueError(f"buffer of {len(result)} bytes is not whole rows of {width} pixels")
    out = bytearray(result)
    zero_row, zero = bytes(stride), bytes(bpp)
    kept = 0
    for start in range(0, len(result), stride):
        if result[start:start + stride] == original[start:start + stride]:
            out[start:start + stride] = zero_row
            continue
        for i in range(start, start + stride, bpp):
            if result[i:i + bpp] == original[i:i + bpp]:
                out[i:i + bpp] = zero
            else:
                kept += 1
    return bytes(out), kept


def is_blank_mask(mask: bytes) -> bool:
    return not mask.strip(b"\x00")
