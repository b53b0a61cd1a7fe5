"""Frame payload codecs in pure Python: raw, zlib and PNG (what a host plugin can do without PIL).

JPEG/WebP previews are decoded by the host (Qt's QImage, GIMP's loaders), never here.
"""

from __future__ import annotations

import struct
import zlib
from array import array

from . import errors
from .errors import ProtocolError
from .frames import Frame
from .vocabulary import BYTES_PER_PIXEL, PNG_FORMATS

__all__ = ["PNG_FORMATS", "decode_pixels", "encode_payload", "make_frame"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_frame(job: str, role: str, pixels: bytes, width: int, height: int, pixel_format: str,
               encoding: str = "raw", x: int = 0, y: int = 0, index: int = 0, level: int = 1) -> Frame:
    """Build a frame from raw pixel bytes, compressing them as ``encoding`` asks."""
    expected = width * height * BYTES_PER_PIXEL[pixel_format]
    if len(pixels) != expected:
        raise ProtocolError(errors.LENGTH_MISMATCH, f"{pixel_format} pixels of {width}x{height} must be "
                            f"{expected} bytes (got {len(pixels)})", "payload", job)
    payload = encode_payload(pixels, width, height, pixel_format, encoding, level)
    return Frame(job=job, role=role, width=width, height=height, pixel_format=pixel_format, payload=payload,
                 encoding=encoding, x=x, y=y, index=index)


def encode_payload(pixels: bytes, width: int, height: int, pixel_format: str, encoding: str, level: int = 1) -> bytes:
    if encoding == "raw":
        return bytes(pixels)
    if encoding == "zlib":
        return zlib.compress(pixels, level)
    if encoding == "png":
        return encode_png(pixels, width, height, pixel_format, level)
    raise ProtocolError(errors.UNSUPPORTED, f"cannot encode {encoding} in pure Python", "encoding")


def decode_pixels(frame: Frame) -> bytes:
    """The frame's raw pixel bytes (exactly ``frame.raw_size`` of them), decompressing as needed."""
    expected = frame.raw_size
    if frame.encoding == "raw":
        if len(frame.payload) != expected:
            raise ProtocolError(errors.LENGTH_MISMATCH, f"raw payload is {len(frame.payload)} bytes, expected "
                                f"{expected}", "payload", frame.job)
        return frame.payload
    if frame.encoding == "zlib":
        data = _inflate(frame.payload, expected, frame.job)
        if len(data) != expected:
            raise ProtocolError(errors.LENGTH_MISMATCH, f"zlib payload inflates to {len(data)} bytes, expected "
                                f"{expected}", "payload", frame.job)
        return data
    if frame.encoding == "png":
        return decode_png(frame.payload, frame.width, frame.height, frame.pixel_format, frame.job)
    raise ProtocolError(errors.UNSUPPORTED, f"{frame.encoding} payloads are decoded by the host, not the protocol",
                        "encoding", frame.job)


def _inflate(data: bytes, limit: int, job: str | None) -> bytes:
    """Decompress at most ``limit`` bytes; more output than that is an error, not an allocation."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(errors.BAD_PAYLOAD, f"payload is not valid zlib data: {exc}", "payload", job) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ProtocolError(errors.LENGTH_MISMATCH, f"payload inflates to more than {limit} bytes", "payload", job)
    if not inflater.eof:
        raise ProtocolError(errors.TRUNCATED_FRAME, "zlib payload is truncated", "payload", job)
    if inflater.unused_data:
        raise ProtocolError(errors.LENGTH_MISMATCH, f"{len(inflater.unused_data)} bytes after the end of the zlib "
                            "stream", "payload", job)
    return out


def _swap16(data: bytes) -> bytes:
    """Little-endian <-> big-endian for 16-bit samples (PNG is big-endian)."""
    samples = array("H", data)
    samples.byteswap()
    return samples.tobytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(pixels: bytes, width: int, height: int, pixel_format: str, level: int = 1) -> bytes:
    if pixel_format not in PNG_FORMATS:
        raise ProtocolError(errors.UNSUPPORTED, f"PNG cannot carry {pixel_format}; use raw or zlib",
                            "pixel_format")
    colour, depth = PNG_FORMATS[pixel_format]
    if depth == 16:
        pixels = _swap16(pixels)
    stride = width * BYTES_PER_PIXEL[pixel_format]
    rows = b"".join(b"\x00" + pixels[i:i + stride] for i in range(0, stride * height, stride))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")


def _png_chunks(data: bytes, job: str | None) -> tuple[bytes, bytes]:
    if not data.startswith(PNG_SIGNATURE):
        raise ProtocolError(errors.BAD_PAYLOAD, "payload is not a PNG", "payload", job)
    pos, ihdr, idat = len(PNG_SIGNATURE), b"", []
    while True:
        if pos + 8 > len(data):
            raise ProtocolError(errors.TRUNCATED_FRAME, "PNG ends before its IEND chunk", "payload", job)
        length, kind = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > len(data):
            raise ProtocolError(errors.TRUNCATED_FRAME, f"PNG chunk {kind!r} is truncated", "payload", job)
        body = data[pos + 8:body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ProtocolError(errors.BAD_PAYLOAD, f"PNG chunk {kind!r} fails its CRC", "payload", job)
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            return ihdr, b"".join(idat)
        pos = body_end + 4


def decode_png(data: bytes, width: int, height: int, pixel_format: str, job: str | None = None) -> bytes:
    if pixel_format not in PNG_FORMATS:
        raise ProtocolError(errors.UNSUPPORTED, f"PNG cannot carry {pixel_format}", "pixel_format", job)
    ihdr, idat = _png_chunks(data, job)
    if len(ihdr) != 13:
        raise ProtocolError(errors.BAD_PAYLOAD, "PNG has no valid IHDR chunk", "payload", job)
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (w, h) != (width, height):
        raise ProtocolError(errors.SIZE_MISMATCH, f"PNG is {w}x{h} but the frame header says {width}x{height}",
                            "payload", job)
    if (colour, depth) != PNG_FORMATS[pixel_format] or interlace:
        raise ProtocolError(errors.BAD_PAYLOAD, f"PNG colour type {colour}/{depth}-bit (interlace {interlace}) "
                            f"does not match {pixel_format}", "payload", job)
    bpp = BYTES_PER_PIXEL[pixel_format]
    stride = width * bpp
    raw = _inflate(idat, (stride + 1) * height, job)
    if len(raw) != (stride + 1) * height:
        raise ProtocolError(errors.LENGTH_MISMATCH, "PNG image data has the wrong size", "payload", job)
    out = _unfilter(raw, stride, height, bpp, job)
    return _swap16(out) if depth == 16 else out


def _unfilter(raw: bytes, stride: int, height: int, bpp: int, job: str | None) -> bytes:
    filters = raw[:: stride + 1]
    if not filters.strip(b"\x00"):
        return b"".join(raw[i * (stride + 1) + 1:(i + 1) * (stride + 1)] for i in range(height))
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for r in range(height):
        start = r * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ProtocolError(errors.BAD_PAYLOAD, f"PNG row {r} has unknown filter {kind}", "payload", job)
        out[r * stride:(r + 1) * stride] = line
        prev = line
    return bytes(out)

