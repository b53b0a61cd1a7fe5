"""PNG image inputs decoded in C (Pillow) for the 8-bit formats: a host's native PNG encoder (Qt, GEGL) filters
its rows, and the protocol's pure-Python unfilter would take minutes on a 4096² layer."""

from __future__ import annotations

import io
import warnings

from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.vocabulary import PIXEL_FORMATS


def decode_png(frame: Frame) -> bytes | None:
    """The raw pixels of an 8-bit PNG frame, or None for formats Pillow cannot give losslessly (16-bit)."""
    row = PIXEL_FORMATS.get(frame.pixel_format)
    mode = row.pillow if row is not None else None
    if frame.encoding != "png" or mode is None:
        return None
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the frame header's size is checked
            image = Image.open(io.BytesIO(frame.payload), formats=["PNG"])
            if image.size != (frame.width, frame.height):
                raise ProtocolError(errors.SIZE_MISMATCH, f"PNG is {image.size[0]}x{image.size[1]} but the frame "
                                    f"header says {frame.width}x{frame.height}", "payload", frame.job)
            if image.mode != mode or image.info.get("interlace"):
                raise ProtocolError(errors.BAD_PAYLOAD, f"PNG mode {image.mode} does not match "
                                    f"{frame.pixel_format}", "payload", frame.job)
            image.load()
            data = image.tobytes()
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - any broken PNG is the client's bad payload
        raise ProtocolError(errors.BAD_PAYLOAD, f"payload is not a valid PNG: {exc}", "payload", frame.job) from None
    if len(data) != frame.raw_size:
        raise ProtocolError(errors.LENGTH_MISMATCH, "PNG image data has the wrong size", "payload", frame.job)
    return data
