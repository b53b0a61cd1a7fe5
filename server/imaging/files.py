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
        return np.asarray(image.convert(mode))
    except UnidentifiedImageError:
        raise ProtocolError(errors.BAD_PAYLOAD, f"{name} is not in an image format the server reads (PNG, JPEG, "
                            "WebP, TIFF, ...)", name) from None
    except (OSError, ValueError, SyntaxError, NotImplementedError, EOFError, Image.DecompressionBombError) as exc:
        # what Pillow raises for damaged or unsupported files: a text chunk past its limit (ValueError), a
        # broken chunk (SyntaxError), a pixel format it cannot decode (NotImplementedError), a colour mode it
        # cannot convert (ValueError)
        raise ProtocolError(errors.BAD_PAYLOAD, f"{name} is not a readable image: {exc}", name) from None


def paste_png(image: np.ndarray, result: Frame) -> bytes:
    """PNG of ``image`` (H, W, 4 uint8) with an rgba8 ``result`` frame pasted at its ``x, y``; a frame that does not
    fit inside ``image`` is a new canvas (upscale: the whole source at its factor, placed at 0, 0) and is the PNG."""
    region = np.frombuffer(decode_pixels(result), np.uint8).reshape(result.height, result.width, 4)
    height, width = image.shape[:2]
    if result.x < 0 or result.y < 0 or result.x + result.width > width or result.y + result.height > height:
        whole = region
    else:
        whole = image.copy()
        whole[result.y:result.y + result.height, result.x:result.x + result.width] = region
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(whole), "RGBA").save(buf, "PNG")
    return buf.getvalue()
