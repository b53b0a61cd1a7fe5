"""Which pixel format the plug-in reads from GEGL and sends, independent of GIMP.

Choices (documented in plugin_gimp/README.md):
- RGB images are sent as R'G'B'A, grayscale images as Y'A (never expanded to RGB), both with alpha so
  layers without alpha work the same way; the result layer always has alpha.
- 8-bit integer images travel as 8 bits per channel; every higher precision (16/32-bit integer, half,
  float, double) travels as 16 bits per channel. Float values outside 0..1 are clipped by GEGL.
- Indexed images are refused with a clear error: results would be quantized to the palette.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass

from ._protocol import vocabulary

BASE_TYPES = ("rgb", "gray", "indexed")
COMPONENT_TYPES = ("u8", "u16", "u32", "half", "float", "double")
MASK_BABL = "Y u8"
MASK_FORMAT = "gray8"


class UnsupportedImage(ValueError):
    """The image mode cannot be processed; the message tells the user what to do."""


@dataclass(frozen=True)
class PixelSpec:
    wire_format: str  # protocol pixel format of the image, mask-less
    babl_format: str  # what the plug-in asks GEGL for (and writes back)
    channels: int
    bytes_per_sample: int
    gray: bool

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bytes_per_sample


def component_of(precision_nick: str) -> str:
    """Map a Gimp.Precision nick such as ``u16-non-linear`` or ``float-linear`` to its component type."""
    head = precision_nick.strip().lower().replace("_", "-").split("-", 1)[0]
    if head not in COMPONENT_TYPES:
        raise UnsupportedImage(f"unknown image precision {precision_nick!r}")
    return head


def choose_spec(base_type: str, component: str) -> PixelSpec:
    """The format used for an image of ``base_type`` (rgb/gray/indexed) and ``component`` (u8, u16, ...)."""
    if base_type == "indexed":
        raise UnsupportedImage("Indexed images are not supported: convert the image with "
                               "Image > Mode > RGB (or Grayscale) first, then run Underpaint again.")
    if base_type not in BASE_TYPES:
        raise UnsupportedImage(f"unknown image base type {base_type!r}")
    if component not in COMPONENT_TYPES:
        raise UnsupportedImage(f"unknown image precision {component!r}")
    deep = component != "u8"
    bits = "u16" if deep else "u8"
    size = 2 if deep else 1
    if base_type == "gray":
        return PixelSpec("graya16" if deep else "graya8", f"Y'A {bits}", 2, size, True)
    return PixelSpec("rgba16" if deep else "rgba8", f"R'G'B'A {bits}", 4, size, False)


def to_little_endian(data: bytes, bytes_per_sample: int) -> bytes:
    """GEGL hands out native-endian samples; the wire is little-endian. Also the way back."""
    if bytes_per_sample == 1 or sys.byteorder == "little":
        return bytes(data)
    if bytes_per_sample != 2:
        raise ValueError(f"unsupported sample size {bytes_per_sample}")
    if len(data) % 2:
        raise ValueError("16-bit pixel data must have an even length")
    samples = array("H")
    samples.frombytes(bytes(data))
    samples.byteswap()
    return samples.tobytes()


from_little_endian = to_little_endian


_SUPPORT = bytes([0] + [255] * 255)


def support_mask(mask8: bytes) -> bytes:
    """255 wherever an 8-bit mask is above 0: the pixels an inpaint result may differ in.

    The server already blends inpaint results by the selection's grey levels, so the result layer's mask
    must only cut at the selection's edge; applying the grey levels again would square the feathering.
    """
    return bytes(mask8).translate(_SUPPORT)


def preview_rgb(pixel_format: str, data: bytes, width: int, height: int) -> tuple[bytes, bool] | None:
    """8-bit RGB or RGBA bytes (and whether there is alpha) for showing a preview; None if unknown."""
    if pixel_format.endswith("16") and not pixel_format.startswith(("bgra", "rgbaf")):
        data, pixel_format = bytes(data)[1::2], pixel_format[:-2] + "8"  # high bytes of little-endian
    row = vocabulary.PIXEL_FORMATS.get(pixel_format)
    shown = row is not None and row.dtype == "|u1" and row.layout in ("RGB", "RGBA", "Y", "YA")
    channels = row.channels if shown else 0
    if not shown or len(data) != width * height * channels:
        return None
    data = bytes(data)
    if pixel_format == "gray8":
        rgb = bytearray(len(data) * 3)
        for c in range(3):
            rgb[c::3] = data
        return bytes(rgb), False
    if pixel_format == "graya8":
        rgba = bytearray(len(data) * 2)
        for c in range(3):
            rgba[c::4] = data[0::2]
        rgba[3::4] = data[1::2]
        return bytes(rgba), True
    return data, channels == 4


def check_pixels(data: bytes, width: int, height: int, spec: PixelSpec, what: str) -> None:
    expected = width * height * spec.bytes_per_pixel
    if len(data) != expected:
        raise ValueError(f"{what}: expected {expected} bytes for {width}x{height} {spec.wire_format}, "
                         f"got {len(data)}")


def upscale_nearest(data: bytes, width: int, height: int, bpp: int, out_w: int, out_h: int) -> bytes:
    """Nearest-neighbour resize of packed pixels (a small preview stretched over the job's region)."""
    if len(data) != width * height * bpp or min(width, height, out_w, out_h) <= 0:
        raise ValueError(f"cannot resize {len(data)} bytes as {width}x{height}x{bpp} to {out_w}x{out_h}")
    columns = [min(width - 1, x * width // out_w) * bpp for x in range(out_w)]
    rows: dict[int, bytes] = {}
    out = bytearray()
    for y in range(out_h):
        sy = min(height - 1, y * height // out_h)
        row = rows.get(sy)
        if row is None:
            src = data[sy * width * bpp:(sy + 1) * width * bpp]
            row = rows[sy] = b"".join(src[c:c + bpp] for c in columns)
        out += row
    return bytes(out)
