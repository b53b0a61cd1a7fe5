"""PNG image inputs as hosts write them (libpng's filtered rows: Sub/Up/Average/Paeth) decode in C to exactly
the pixels encoded; a PNG that does not match its frame header is the client's bad payload."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.pixels import decode_pixels
from underpaint.server.imaging.png import decode_png


def _frame(payload: bytes, width: int, height: int, fmt: str = "rgba8") -> Frame:
    return Frame(job="j", role="image", width=width, height=height, pixel_format=fmt, payload=payload,
                 encoding="png")


def _host_png(data: bytes, width: int, height: int, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), data).save(out, "PNG", compress_level=6)  # adaptive row filters
    return out.getvalue()


def test_a_filtered_png_decodes_to_the_pixels_sent() -> None:
    width, height = 300, 200
    data = bytes((x * 5 + y * 11 + c * 70 + (x * y) % 13) % 256 for y in range(height) for x in range(width)
                 for c in range(4))
    frame = _frame(_host_png(data, width, height), width, height)
    assert decode_png(frame) == data == decode_pixels(frame)  # the C path agrees with the protocol's decoder


@pytest.mark.parametrize("payload, width, height, fmt, match", [
    (b"not a png", 4, 4, "rgba8", "not a valid PNG"),
    ("rgb", 4, 4, "rgba8", "mode RGB does not match rgba8"),
    ("rgba", 5, 4, "rgba8", "PNG is 4x4 but the frame header says 5x4"),
])
def test_a_png_that_does_not_match_its_frame_is_refused(payload, width, height, fmt, match) -> None:
    if payload == "rgb":
        payload = _host_png(bytes(48), 4, 4, "RGB")
    elif payload == "rgba":
        payload = _host_png(bytes(64), 4, 4)
    with pytest.raises(ProtocolError, match=match):
        decode_png(_frame(payload, width, height, fmt))


def test_16_bit_formats_keep_the_protocol_decoder() -> None:
    assert decode_png(_frame(b"", 1, 1, "rgba16")) is None
