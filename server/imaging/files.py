"""Whole image files, for REST: an upload decoded (its size checked from the header before any pixel is decoded)
and the answer, the source image with the result pasted in, encoded as PNG."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.pixels import decode_pixels


def read_image(data: bytes, name: str, mode: str, max_pixels: int) -> np.ndarray:
    """An uploaded file as uint8 pixels in Pillow ``mode`` ("RGBA": (H, W, 4), "L": (H, W)); ``too_large`` or
    ``bad_payload`` naming the upload ``name``."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > max_pixels:
            raise ProtocolError(errors.TOO_LARGE, f"{name} of {image.width}x{image.height} exceeds the server's "
                                f"limit of {max_pixels} pixels", name)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:  # ValueError: a
        # text chunk past PIL's limit (a 200 MiB zTXt), and other malformed chunks
        raise ProtocolError(errors.BAD_PAYLOAD, f"{name} is not a readable image: {exc}", name) from None
    return np.asarray(image.convert(mode))


def paste_png(image: np.ndarray, result: Frame) -> bytes:
    """PNG of ``image`` (H, W, 4 uint8) with an rgba8 ``result`` frame pasted at its ``x, y``."""
    region = np.frombuffer(decode_pixels(result), np.uint8).reshape(result.height, result.width, 4)
    whole = image.copy()
    whole[result.y:result.y + result.height, result.x:result.x + result.width] = region
    buf = io.BytesIO()
    Image.fromarray(whole, "RGBA").save(buf, "PNG")
    return buf.getvalue()
