"""Binary frames and their payload codecs: layout, every valid combination, and each specific error."""

from __future__ import annotations

import io
import itertools
import random
import struct
import tracemalloc
import zlib

import pytest
from hypothesis import given
from PIL import Image
from proto_strategies import BPP, MASK_FORMATS, PIXEL_FORMATS, PNG_PIXEL_FORMATS, ROUNDTRIP, frames
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import HEADER_SIZE, Frame, FrameLimits, decode_frame
from underpaint.protocol.pixels import PNG_SIGNATURE, decode_pixels, encode_png, make_frame

ROLES = ("image", "mask", "preview", "result")


def combinations():
    for role, fmt in itertools.product(ROLES, PIXEL_FORMATS):
        if role == "mask" and fmt not in MASK_FORMATS:
            continue
        encodings = ["raw", "zlib"] + (["png"] if fmt in PNG_PIXEL_FORMATS else [])
        encodings += ["jpeg", "webp"] if role == "preview" else []
        for enc in encodings:
            yield role, fmt, enc


@pytest.mark.parametrize("role, fmt, enc", list(combinations()))
def test_every_valid_combination_round_trips(role, fmt, enc):
    rng = random.Random(f"{role}{fmt}{enc}")
    width, height = 5, 3
    if enc in ("jpeg", "webp"):
        frame = Frame(job="j1", role=role, width=width, height=height, pixel_format=fmt, payload=b"\xff\xd8opaque",
                      encoding=enc, x=-3, y=7, index=2)
        pixels = None
    else:
        pixels = rng.randbytes(width * height * BPP[fmt])
        frame = make_frame("j1", role, pixels, width, height, fmt, enc, x=-3, y=7, index=2)
    data = frame.encode()
    decoded = decode_frame(data)
    assert decoded == frame
    assert decoded.encode() == data
    if pixels is None:
        with pytest.raises(ProtocolError) as info:
            decode_pixels(decoded)
        assert info.value.code == errors.UNSUPPORTED
    else:
        assert decode_pixels(decoded) == pixels


@ROUNDTRIP
@given(frames())
def test_generated_frames_round_trip(case):
    frame, pixels = case
    decoded = decode_frame(frame.encode())
    assert decoded == frame
    if pixels is not None:
        assert decode_pixels(decoded) == pixels


def test_header_layout_byte_by_byte():
    frame = Frame(job="ab", role="mask", width=0x0102, height=0x0304, pixel_format="gray16", payload=b"",
                  encoding="zlib", x=-2, y=0x0506, index=0x0708)
    data = frame.encode()
    assert len(data) == HEADER_SIZE + 2 == 34
    assert data[0:4] == b"UPF1"
    assert data[4:8] == bytes([2, 10, 2, 2])  # role mask, format gray16, encoding zlib, job length
    assert data[8:10] == b"\x07\x08" and data[10:12] == b"\x00\x00"  # index, reserved
    assert data[12:16] == b"\x00\x00\x01\x02" and data[16:20] == b"\x00\x00\x03\x04"  # width, height
    assert data[20:24] == b"\xff\xff\xff\xfe" and data[24:28] == b"\x00\x00\x05\x06"  # x (signed), y
    assert data[28:32] == b"\x00\x00\x00\x00" and data[32:] == b"ab"  # payload length, job id


def test_sixteen_bit_samples_are_little_endian_and_png_swaps_them():
    pixels = struct.pack("<3H", 0x1234, 0xFFFE, 0x0001)
    frame = make_frame("j1", "mask", pixels, 3, 1, "gray16", "png")
    image = Image.open(io.BytesIO(frame.payload))
    assert image.mode.startswith("I") and [image.getpixel((i, 0)) for i in range(3)] == [0x1234, 0xFFFE, 1]
    assert decode_pixels(frame) == pixels


@pytest.mark.parametrize("fmt, mode", [("gray8", "L"), ("rgb8", "RGB"), ("rgba8", "RGBA"), ("graya8", "LA"),
                                       ("gray16", "I;16")])
def test_png_matches_pillow_both_ways(fmt, mode):
    rng = random.Random(fmt)
    width, height = 23, 11
    size = width * height * BPP[fmt]
    noise = rng.randbytes(size // 2 + 1)
    pixels = bytes(b for v in noise for b in (v, (v + 1) % 256))[:size]  # noise and gradients: several filters
    ours = encode_png(pixels, width, height, fmt)
    assert Image.open(io.BytesIO(ours)).tobytes() == pixels
    buf = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels).save(buf, "PNG")
    frame = Frame(job="j1", role="result", width=width, height=height, pixel_format=fmt, payload=buf.getvalue(),
                  encoding="png")
    assert decode_pixels(decode_frame(frame.encode())) == pixels


def _filter_rows(pixels: bytes, stride: int, bpp: int) -> bytes:
    """A reference PNG encoder using filter ``row % 5`` on each row: covers None/Sub/Up/Average/Paeth."""
    out, prev = bytearray(), bytes(stride)
    for r in range(len(pixels) // stride):
        line, kind = pixels[r * stride:(r + 1) * stride], r % 5
        enc = bytearray()
        for i in range(stride):
            a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            pred = (0, a, b, (a + b) // 2, paeth)[kind]
            enc.append((line[i] - pred) % 256)
        out += bytes([kind]) + enc
        prev = line
    return bytes(out)


def _png(ihdr: bytes, idat: bytes, extra: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", PNG_PIXEL_FORMATS)
def test_png_decoder_handles_all_five_filters(fmt):
    width, height, bpp = 7, 10, BPP[fmt]
    pixels = random.Random(fmt).randbytes(width * height * bpp)
    colour = {"gray8": 0, "rgb8": 2, "graya8": 4, "rgba8": 6, "gray16": 0, "graya16": 4, "rgba16": 6}[fmt]
    depth = 16 if "16" in fmt else 8
    big_endian = pixels
    if depth == 16:
        big_endian = b"".join(pixels[i + 1:i + 2] + pixels[i:i + 1] for i in range(0, len(pixels), 2))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    data = _png(ihdr, zlib.compress(_filter_rows(big_endian, width * bpp, bpp)),
                extra=struct.pack(">I", 4) + b"tEXt" + b"a\x00bc" + struct.pack(">I", zlib.crc32(b"tEXta\x00bc")))
    frame = Frame(job="j1", role="image", width=width, height=height, pixel_format=fmt, payload=data,
                  encoding="png")
    assert decode_pixels(frame) == pixels


# --------------------------------------------------------------------------------------------- errors
def frame_bytes(**changes) -> bytes:
    """A valid 2x2 rgba8 raw image frame with some header fields overwritten."""
    fields = dict(magic=b"UPF1", role=1, fmt=1, enc=1, job_len=2, index=0, reserved=0, width=2, height=2, x=0, y=0,
                  length=16)
    job, payload = changes.pop("job", b"j1"), changes.pop("payload", bytes(16))
    fields.update(changes)
    return struct.pack(">4sBBBBHHIIiiI", *fields.values()) + job + payload


def test_frame_bytes_helper_is_valid():
    assert decode_frame(frame_bytes()) == Frame(job="j1", role="image", width=2, height=2, pixel_format="rgba8",
                                                payload=bytes(16))


BAD_FRAMES = [
    (b"", errors.TRUNCATED_FRAME, None),
    (frame_bytes()[:31], errors.TRUNCATED_FRAME, None),
    (frame_bytes(magic=b"UPF2"), errors.BAD_FRAME, "magic"),
    (b"GET / HTTP/1.1\r\n" * 3, errors.BAD_FRAME, "magic"),
    (frame_bytes(reserved=1), errors.BAD_FRAME, "reserved"),
    (frame_bytes(role=0), errors.BAD_FRAME, "role"),
    (frame_bytes(role=8), errors.BAD_FRAME, "role"),
    (frame_bytes(fmt=0), errors.BAD_FRAME, "pixel_format"),
    (frame_bytes(fmt=12), errors.BAD_FRAME, "pixel_format"),
    (frame_bytes(enc=0), errors.BAD_FRAME, "encoding"),
    (frame_bytes(enc=6), errors.BAD_FRAME, "encoding"),
    (frame_bytes(job_len=40, payload=b""), errors.TRUNCATED_FRAME, "job"),
    (frame_bytes(job_len=0, job=b""), errors.BAD_FRAME, "job"),
    (frame_bytes(job=b"\xc3\xa9"), errors.BAD_FRAME, "job"),
    (frame_bytes(job=b"j "), errors.BAD_FRAME, "job"),
    (frame_bytes(job_len=65, job=b"j" * 65), errors.BAD_FRAME, "job"),
    (frame_bytes(width=0, length=0, payload=b""), errors.BAD_FRAME, "width"),
    (frame_bytes(height=2**31), errors.BAD_FRAME, "width"),
    (frame_bytes(length=17), errors.TRUNCATED_FRAME, "payload"),
    (frame_bytes(length=15), errors.LENGTH_MISMATCH, "payload"),
    (frame_bytes(length=15, payload=bytes(15)), errors.LENGTH_MISMATCH, "payload"),
    (frame_bytes(length=17, payload=bytes(17)), errors.LENGTH_MISMATCH, "payload"),
    (frame_bytes(enc=4), errors.BAD_FRAME, "encoding"),  # jpeg is for previews only
    (frame_bytes(role=4, enc=5), errors.BAD_FRAME, "encoding"),  # webp result
    (frame_bytes(role=2), errors.BAD_FRAME, "pixel_format"),  # an rgba8 mask
    (frame_bytes(width=100_000, height=100_000), errors.TOO_LARGE, "width"),  # before the payload check
]


@pytest.mark.parametrize("data, code, field", BAD_FRAMES, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD_FRAMES)])
def test_bad_frames_raise_the_specific_error(data, code, field):
    with pytest.raises(ProtocolError) as info:
        decode_frame(data)
    assert (info.value.code, info.value.field) == (code, field), info.value
    assert info.value.job in (None, "j1")
    if field == "payload" or code == errors.TOO_LARGE and field:
        assert info.value.job == "j1"  # once the job id is known, the error names it


def test_limits_are_checked_before_the_payload_is_touched():
    limits = FrameLimits(max_pixels=1024, max_frame_bytes=1 << 20)
    too_many_pixels = frame_bytes(width=64, height=64, length=64 * 64 * 4, payload=bytes(64 * 64 * 4))
    with pytest.raises(ProtocolError) as info:
        decode_frame(too_many_pixels, limits)
    assert info.value.code == errors.TOO_LARGE and info.value.job == "j1"
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame_bytes(payload=bytes(1 << 20)), limits)
    assert info.value.code == errors.TOO_LARGE and info.value.field is None
    big = bytearray(frame_bytes(width=4096, height=4096, length=4096 * 4096 * 4, payload=bytes(4096 * 4096 * 4)))
    tracemalloc.start()
    try:
        for small in (FrameLimits(max_pixels=1 << 20, max_frame_bytes=1 << 30), FrameLimits(max_frame_bytes=1 << 20)):
            with pytest.raises(ProtocolError) as info:
                decode_frame(big, small)
            assert info.value.code == errors.TOO_LARGE
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the 64 MiB payload was never copied


@pytest.fixture(scope="module")
def zlib_bomb() -> bytes:
    """256 MiB of zeros in about 256 KiB."""
    packer = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(256)) + packer.flush()


def _frame(payload: bytes, encoding: str, fmt: str = "gray8", width: int = 64, height: int = 64) -> Frame:
    return Frame(job="j1", role="image", width=width, height=height, pixel_format=fmt, payload=payload,
                 encoding=encoding)


def test_zlib_bomb_is_rejected_without_inflating_it(zlib_bomb):
    assert len(zlib_bomb) < 1 << 20
    frame = decode_frame(_frame(zlib_bomb, "zlib").encode())
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            decode_pixels(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.value.code, info.value.field, info.value.job) == (errors.LENGTH_MISMATCH, "payload", "j1")
    assert peak < 4 << 20


def test_png_bomb_is_rejected_without_inflating_it(zlib_bomb):
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            decode_pixels(_frame(_png(ihdr, zlib_bomb), "png"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == errors.LENGTH_MISMATCH
    assert peak < 4 << 20


GOOD_PNG = encode_png(bytes(range(64)) * 64, 64, 64, "gray8")
IHDR_64 = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
BAD_PAYLOADS = [
    (_frame(b"not zlib at all", "zlib"), errors.BAD_PAYLOAD),
    (_frame(zlib.compress(bytes(4096))[:-6], "zlib"), errors.TRUNCATED_FRAME),
    (_frame(zlib.compress(bytes(4095)), "zlib"), errors.LENGTH_MISMATCH),
    (_frame(zlib.compress(bytes(4097)), "zlib"), errors.LENGTH_MISMATCH),
    (_frame(b"GIF89a", "png"), errors.BAD_PAYLOAD),
    (_frame(GOOD_PNG[:40], "png"), errors.TRUNCATED_FRAME),
    (_frame(GOOD_PNG[:-12], "png"), errors.TRUNCATED_FRAME),  # no IEND
    (_frame(GOOD_PNG[:30] + bytes([GOOD_PNG[30] ^ 1]) + GOOD_PNG[31:], "png"), errors.BAD_PAYLOAD),  # IHDR CRC
    (_frame(GOOD_PNG[:-20] + bytes([GOOD_PNG[-20] ^ 0x10]) + GOOD_PNG[-19:], "png"), errors.BAD_PAYLOAD),  # IDAT
    (_frame(GOOD_PNG, "png", width=32), errors.SIZE_MISMATCH),
    (_frame(encode_png(bytes(64 * 64 * 2), 64, 64, "gray16"), "png"), errors.BAD_PAYLOAD),  # 16-bit for gray8
    (_frame(_png(IHDR_64[:-1] + b"\x01", zlib.compress(bytes(65 * 64))), "png"), errors.BAD_PAYLOAD),  # interlaced
    (_frame(_png(IHDR_64, zlib.compress(b"\x05" + bytes(64) + bytes(65 * 63))), "png"), errors.BAD_PAYLOAD),  # filter
    (_frame(_png(IHDR_64, zlib.compress(bytes(65 * 63))), "png"), errors.LENGTH_MISMATCH),  # a row short
    (_frame(_png(IHDR_64[:12], zlib.compress(bytes(65 * 64))), "png"), errors.BAD_PAYLOAD),  # short IHDR
    (_frame(GOOD_PNG, "png", fmt="rgba8"), errors.BAD_PAYLOAD),  # colour type
    (_frame(GOOD_PNG, "png", fmt="bgra8"), errors.UNSUPPORTED),
    (_frame(bytes(10), "raw"), errors.LENGTH_MISMATCH),  # a hand-built frame that never went through the wire
]


@pytest.mark.parametrize("frame, code", BAD_PAYLOADS, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD_PAYLOADS)])
def test_bad_payloads_raise_the_specific_error(frame, code):
    with pytest.raises(ProtocolError) as info:
        decode_pixels(frame)
    assert info.value.code == code, info.value
    assert info.value.job == "j1"


def test_good_png_fixture_decodes():
    assert decode_pixels(_frame(GOOD_PNG, "png")) == bytes(range(64)) * 64


@pytest.mark.parametrize("changes, code", [
    ({"job": "é"}, errors.BAD_FRAME),
    ({"job": ""}, errors.BAD_FRAME),
    ({"role": "thumbnail"}, errors.BAD_FRAME),
    ({"pixel_format": "cmyk8"}, errors.BAD_FRAME),
    ({"encoding": "gif"}, errors.BAD_FRAME),
    ({"encoding": "jpeg"}, errors.BAD_FRAME),
    ({"width": 0}, errors.BAD_FRAME),
    ({"x": 2**31}, errors.OUT_OF_RANGE),
    ({"y": -(2**31) - 1}, errors.OUT_OF_RANGE),
    ({"index": 65536}, errors.OUT_OF_RANGE),
])
def test_encoding_an_invalid_frame_raises(changes, code):
    fields = dict(job="j1", role="image", width=1, height=1, pixel_format="gray8", payload=b"\0")
    with pytest.raises(ProtocolError) as info:
        Frame(**{**fields, **changes}).encode()
    assert info.value.code == code


@pytest.mark.parametrize("args, code", [
    (("j1", "image", bytes(15), 2, 2, "rgba8"), errors.LENGTH_MISMATCH),
    (("j1", "image", bytes(16), 2, 2, "bgra8", "png"), errors.UNSUPPORTED),
    (("j1", "image", bytes(32), 2, 2, "rgbaf16", "png"), errors.UNSUPPORTED),
    (("j1", "preview", bytes(16), 2, 2, "rgba8", "jpeg"), errors.UNSUPPORTED),
])
def test_make_frame_rejects_what_it_cannot_build(args, code):
    with pytest.raises(ProtocolError) as info:
        make_frame(*args)
    assert info.value.code == code
