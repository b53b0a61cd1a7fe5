"""Binary image frames: a fixed 32-byte header, the job id, then the payload. The codes of roles, pixel formats
and encodings come from ``vocabulary``.

Header (big-endian): magic ``UPF1`` | role u8 | pixel format u8 | encoding u8 | job id length u8 |
index u16 | reserved u16 (0) | width u32 | height u32 | x i32 | y i32 | payload length u32.
Pixel data itself is little-endian, row-major, tightly packed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import errors
from .errors import ProtocolError
from .vocabulary import BYTES_PER_PIXEL, ENCODINGS, JOB_ID_CHARS, MAX_JOB_ID, PIXEL_FORMATS
from .vocabulary import ROLES as ROLE_TABLE

MAGIC = b"UPF1"
HEADER = struct.Struct(">4sBBBBHHIIiiI")
HEADER_SIZE = HEADER.size  # 32

__all__ = ["BYTES_PER_PIXEL", "HEADER_SIZE", "Frame", "FrameLimits", "check_fields", "decode_frame"]

_ROLE_NAMES = {r.code: name for name, r in ROLE_TABLE.items()}
_FORMAT_NAMES = {f.code: name for name, f in PIXEL_FORMATS.items()}
_ENCODING_NAMES = {e.code: name for name, e in ENCODINGS.items()}
_I32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class FrameLimits:
    max_pixels: int = 8192 * 8192
    max_frame_bytes: int = 8192 * 8192 * 8 + 4096


@dataclass(frozen=True)
class Frame:
    job: str
    role: str
    width: int
    height: int
    pixel_format: str
    payload: bytes
    encoding: str = "raw"
    x: int = 0
    y: int = 0
    index: int = 0

    @property
    def raw_size(self) -> int:
        """Bytes of the decoded pixel data."""
        return self.width * self.height * BYTES_PER_PIXEL[self.pixel_format]

    def encode(self) -> bytes:
        check_fields(self.job, self.role, self.pixel_format, self.encoding, self.width, self.height, self.x, self.y,
                     self.index)
        if len(self.payload) > 0xFFFFFFFF:
            raise ProtocolError(errors.TOO_LARGE, "frame payload does not fit in 32 bits", "payload", self.job)
        job = self.job.encode("ascii")
        head = HEADER.pack(MAGIC, ROLE_TABLE[self.role].code, PIXEL_FORMATS[self.pixel_format].code,
                           ENCODINGS[self.encoding].code, len(job),
                           self.index, 0, self.width, self.height, self.x, self.y, len(self.payload))
        return b"".join((head, job, self.payload))


def check_fields(job: str, role: str, pixel_format: str, encoding: str, width: int, height: int, x: int, y: int,
                 index: int) -> None:
    """Validate a frame's header values (used before encoding and after decoding)."""
    if not job or len(job) > MAX_JOB_ID or any(c not in JOB_ID_CHARS for c in job):
        raise ProtocolError(errors.BAD_FRAME, "frame job id must be 1-64 characters of [A-Za-z0-9._:-]", "job")
    for name, value, table in (("role", role, ROLE_TABLE), ("pixel_format", pixel_format, PIXEL_FORMATS),
                               ("encoding", encoding, ENCODINGS)):
        if value not in table:
            raise ProtocolError(errors.BAD_FRAME, f"unknown frame {name} {value!r}", name, job)
    if not (1 <= width <= 2**31 - 1 and 1 <= height <= 2**31 - 1):
        raise ProtocolError(errors.BAD_FRAME, f"frame size must be at least 1x1 (got {width}x{height})", "width", job)
    if not (_I32[0] <= x <= _I32[1] and _I32[0] <= y <= _I32[1]):
        raise ProtocolError(errors.OUT_OF_RANGE, "frame offset does not fit in 32 bits", "x", job)
    if x + width - 1 > _I32[1] or y + height - 1 > _I32[1]:
        raise ProtocolError(errors.OUT_OF_RANGE, f"frame {width}x{height}@{x},{y} ends past 2^31-1", "x", job)
    if not 0 <= index <= 0xFFFF:
        raise ProtocolError(errors.OUT_OF_RANGE, "frame index must be 0..65535", "index", job)
    if ENCODINGS[encoding].previews_only and role != "preview":
        raise ProtocolError(errors.BAD_FRAME, f"{encoding} is only allowed for preview frames", "encoding", job)
    formats = ROLE_TABLE[role].formats
    if formats is not None and pixel_format not in formats:
        raise ProtocolError(errors.BAD_FRAME, f"a {role} frame must be {' or '.join(formats)}", "pixel_format", job)


def decode_frame(data: bytes | bytearray | memoryview, limits: FrameLimits = FrameLimits()) -> Frame:
    """Parse and validate one binary frame; checks sizes against ``limits`` before copying the payload."""
    view = memoryview(data)
    if len(view) > limits.max_frame_bytes:
        raise ProtocolError(errors.TOO_LARGE, f"frame of {len(view)} bytes exceeds the limit of "
                            f"{limits.max_frame_bytes} bytes")
    if len(view) < HEADER_SIZE:
        raise ProtocolError(errors.TRUNCATED_FRAME, f"frame is {len(view)} bytes, shorter than its "
                            f"{HEADER_SIZE}-byte header")
    magic, role, fmt, enc, job_len, index, reserved, width, height, x, y, length = HEADER.unpack_from(view)
    if magic != MAGIC:
        raise ProtocolError(errors.BAD_FRAME, f"frame magic must be {MAGIC!r} (got {bytes(magic)!r})", "magic")
    if reserved != 0:
        raise ProtocolError(errors.BAD_FRAME, "reserved header bits must be zero", "reserved")
    for name, code, names in (("role", role, _ROLE_NAMES), ("pixel_format", fmt, _FORMAT_NAMES),
                              ("encoding", enc, _ENCODING_NAMES)):
        if code not in names:
            raise ProtocolError(errors.BAD_FRAME, f"unknown frame {name} code {code}", name)
    end_job = HEADER_SIZE + job_len
    if len(view) < end_job:
        raise ProtocolError(errors.TRUNCATED_FRAME, "frame ends inside its job id", "job")
    try:
        job = bytes(view[HEADER_SIZE:end_job]).decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(errors.BAD_FRAME, "frame job id must be ASCII", "job") from None
    role_name, fmt_name, enc_name = _ROLE_NAMES[role], _FORMAT_NAMES[fmt], _ENCODING_NAMES[enc]
    check_fields(job, role_name, fmt_name, enc_name, width, height, x, y, index)
    if width * height > limits.max_pixels:
        raise ProtocolError(errors.TOO_LARGE, f"frame of {width}x{height} pixels exceeds the limit of "
                            f"{limits.max_pixels} pixels", "width", job)
    actual = len(view) - end_job
    if actual < length:
        raise ProtocolError(errors.TRUNCATED_FRAME, f"frame payload is {actual} bytes, header says {length}",
                            "payload", job)
    if actual > length:
        raise ProtocolError(errors.LENGTH_MISMATCH, f"frame has {actual - length} bytes after its payload",
                            "payload", job)
    raw = width * height * BYTES_PER_PIXEL[fmt_name]
    if enc_name == "raw" and length != raw:
        raise ProtocolError(errors.LENGTH_MISMATCH, f"raw {fmt_name} payload of {width}x{height} must be {raw} "
                            f"bytes (got {length})", "payload", job)
    return Frame(job=job, role=role_name, width=width, height=height, pixel_format=fmt_name,
                 payload=bytes(view[end_job:]), encoding=enc_name, x=x, y=y, index=index)
