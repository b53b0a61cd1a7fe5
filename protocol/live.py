"""Live painting streams, sans-I/O: the tile grid and hashes both peers compute, the client's delta encoder,
and the client side of a stream's state (what ``ClientConnection`` delegates to).

A frame covers a region cut into a grid of ``tile`` x ``tile`` cells (row-major, the last row/column
smaller). A tile's digest is BLAKE2b-128 of its raw pixel rows, tightly packed; a frame's hash is BLAKE2b-128
of its cells' digests in grid order, so either side can update it by rehashing only the cells that changed.
Standard library only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from . import errors
from .errors import ProtocolError
from .frames import Frame
from .geometry import Rect
from .live_messages import (
    LiveError,
    LiveFrameMessage,
    LiveResult,
    LiveSkipped,
    LiveStart,
    LiveStarted,
    LiveStop,
    LiveStopped,
)
from .messages import Message
from .pixels import encode_payload
from .tiles import tile_rects
from .vocabulary import BYTES_PER_PIXEL, LIVE_HASH_BYTES, MAX_LIVE_STREAMS, MAX_TILES

__all__ = ["DeltaEncoder", "LiveResultReceived", "changed_cells", "frame_hash", "grid", "tile_digest"]


# ----------------------------------------------------------------------------- grid and hashes
def grid(region: Rect, tile: int) -> list[Rect]:
    """The cells of a live frame's region, row-major."""
    return tile_rects(region, tile)


def cell_of(region: Rect, tile: int, rect: Rect) -> int | None:
    """The grid index of ``rect`` when it is exactly one cell of ``region``'s grid, else None."""
    dx, dy = rect.x - region.x, rect.y - region.y
    if dx < 0 or dy < 0 or dx % tile or dy % tile or dx >= region.width or dy >= region.height:
        return None
    if (rect.width, rect.height) != (min(tile, region.width - dx), min(tile, region.height - dy)):
        return None
    return (dy // tile) * -(-region.width // tile) + dx // tile


def tile_digest(rows: bytes | bytearray | memoryview) -> bytes:
    return hashlib.blake2b(rows, digest_size=LIVE_HASH_BYTES).digest()


def frame_hash(digests: list[bytes]) -> str:
    return hashlib.blake2b(b"".join(digests), digest_size=LIVE_HASH_BYTES).hexdigest()


def cell_bytes(pixels: bytes | memoryview, stride: int, bpp: int, cell: Rect, region: Rect) -> bytes:
    """The raw rows of one cell cut out of a frame's pixels."""
    view = memoryview(pixels)
    left, top, row = (cell.x - region.x) * bpp, cell.y - region.y, cell.width * bpp
    if row == stride:
        return bytes(view[top * stride:(top + cell.height) * stride])
    return b"".join(view[(top + r) * stride + left:(top + r) * stride + left + row] for r in range(cell.height))


def changed_cells(old: bytes, new: bytes, width: int, height: int, bpp: int, tile: int) -> list[int]:
    """Grid indices of the cells whose pixels differ: a band of rows is compared whole first, then row by row
    and cell by cell only where it differs (C-speed comparisons, no per-pixel Python)."""
    stride, cols = width * bpp, -(-width // tile)
    out: list[int] = []
    for band, top in enumerate(range(0, height, tile)):
        start, end = top * stride, min(top + tile, height) * stride
        if old[start:end] == new[start:end]:
            continue
        dirty: set[int] = set()
        for row in range(start, end, stride):
            if len(dirty) == cols:
                break
            if old[row:row + stride] == new[row:row + stride]:
                continue
            for col in range(cols):
                if col not in dirty:
                    a, b = row + col * tile * bpp, min(row + (col + 1) * tile * bpp, row + stride)
                    if old[a:b] != new[a:b]:
                        dirty.add(col)
        out += [band * cols + c for c in sorted(dirty)]
    return out


@dataclass
class DeltaEncoder:
    """The client's copy of the last frame it sent on a stream: which cells changed since, and their frames.

    ``encode`` returns the ``live_frame`` message and its tiles: every cell for the first frame (or after
    ``reset``, e.g. when the server answered ``stale_base``), else only the changed cells."""

    stream: str
    tile: int
    encoding: str = "raw"  # raw or zlib tiles
    frame: int = -1  # the last frame number sent
    _pixels: bytes | None = None
    _key: tuple | None = None  # (x, y, width, height, pixel_format) of the last frame
    _digests: list[bytes] = field(default_factory=list)

    def reset(self) -> None:
        """Forget the base: the next frame is sent whole."""
        self._pixels, self._key, self._digests = None, None, []

    def encode(self, pixels: bytes, width: int, height: int, pixel_format: str, x: int = 0, y: int = 0
               ) -> tuple[LiveFrameMessage, list[Frame]]:
        bpp = BYTES_PER_PIXEL[pixel_format]
        if len(pixels) != width * height * bpp:
            raise ProtocolError(errors.LENGTH_MISMATCH, f"{pixel_format} pixels of {width}x{height} must be "
                                f"{width * height * bpp} bytes (got {len(pixels)})", "payload", self.stream)
        region, key = Rect(x, y, width, height), (x, y, width, height, pixel_format)
        cells = grid(region, self.tile)
        if len(cells) > MAX_TILES:
            raise ProtocolError(errors.TOO_LARGE, f"a {width}x{height} live frame has {len(cells)} tiles of "
                                f"{self.tile} px (at most {MAX_TILES}); use a larger tile", "tile", self.stream)
        full = self._pixels is None or self._key != key
        if full:
            indices = list(range(len(cells)))
            digests = [b""] * len(cells)
        else:
            assert self._pixels is not None
            indices = changed_cells(self._pixels, pixels, width, height, bpp, self.tile)
            digests = list(self._digests)
        stride, number = width * bpp, self.frame + 1
        tiles = []
        for i in indices:
            cell = cells[i]
            data = cell_bytes(pixels, stride, bpp, cell, region)
            digests[i] = tile_digest(data)
            tiles.append(Frame(job=self.stream, role="live", width=cell.width, height=cell.height,
                               pixel_format=pixel_format, encoding=self.encoding, x=cell.x, y=cell.y,
                               index=number & 0xFFFF,
                               payload=encode_payload(data, cell.width, cell.height, pixel_format, self.encoding)))
        base = None if full else self.frame
        msg = LiveFrameMessage(stream=self.stream, frame=number, x=x, y=y, width=width, height=height,
                               pixel_format=pixel_format, tiles=len(tiles), base=base,
                               base_hash=None if full else frame_hash(self._digests), hash=frame_hash(digests))
        self.frame, self._pixels, self._key, self._digests = number, pixels, key, digests
        return msg, tiles


# ----------------------------------------------------------------------------- client side of a session
@dataclass(frozen=True)
class LiveResultReceived:
    """A generated live frame: the ``live_result`` message and its one result frame."""

    stream: str
    result: LiveResult
    frame: Frame


@dataclass
class _ClientStream:
    start: LiveStart
    stopping: bool = False
    results: dict[int, Frame] = field(default_factory=dict)  # frame number mod 2^16 -> its result frame


class ClientStreams:
    """The live streams of one client connection: checks what is sent, pairs result frames with messages."""

    def __init__(self) -> None:
        self._streams: dict[str, _ClientStream] = {}

    def __contains__(self, stream: object) -> bool:
        return stream in self._streams

    def start(self, msg: LiveStart, features: frozenset[str], jobs: frozenset[str], advertised: tuple[str, ...] = ()
              ) -> str:
        """``features``: what both peers advertised; ``advertised``: what this client's hello said."""
        if "live" not in features:
            who = ("the server does not offer" if "live" in advertised else
                   "this client did not advertise (hello.features lacks)")
            raise ProtocolError(errors.UNSUPPORTED, f"{who} the 'live' feature", "type", msg.stream)
        if msg.stream in self._streams or msg.stream in jobs:
            raise ProtocolError(errors.DUPLICATE_JOB, f"stream {msg.stream!r} is already in use", "stream",
                                msg.stream)
        if len(self._streams) >= MAX_LIVE_STREAMS:
            raise ProtocolError(errors.QUEUE_FULL, f"at most {MAX_LIVE_STREAMS} live streams per connection",
                                "stream", msg.stream)
        self._streams[msg.stream] = _ClientStream(msg)
        return msg.encode()

    def frame(self, msg: LiveFrameMessage, tiles: list[Frame]) -> list[str | bytes]:
        stream = self._streams.get(msg.stream)
        if stream is None or stream.stopping:
            return []  # stopped meanwhile: nothing more of it goes out
        if len(tiles) != msg.tiles:
            raise ProtocolError(errors.MISSING_FRAME, f"live_frame announced {msg.tiles} tiles, {len(tiles)} given",
                                "tiles", msg.stream)
        return [msg.encode(), *(t.encode() for t in tiles)]

    def stop(self, stream: str) -> str | None:
        state = self._streams.get(stream)
        if state is None or state.stopping:
            return None
        state.stopping = True
        return LiveStop(stream=stream).encode()

    def receive(self, msg: Message) -> list[object]:
        """A live message from the server -> events (none for a stream this client stopped)."""
        name = getattr(msg, "stream", "")
        state = self._streams.get(name)
        if state is None:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{msg.TYPE} for unknown stream {name!r}", "stream", name)
        if isinstance(msg, LiveStopped) or (isinstance(msg, LiveError) and msg.ended):
            del self._streams[name]
            return [msg]
        if state.stopping:
            return []
        if isinstance(msg, LiveResult):
            frame = state.results.pop(msg.frame & 0xFFFF, None)
            state.results.clear()  # older result frames without their message cannot come any more
            if frame is None:
                return [LiveError(stream=name, frame=msg.frame, code=errors.MISSING_FRAME,
                                  message=f"live_result of frame {msg.frame} arrived without its result frame")]
            return [LiveResultReceived(name, msg, frame)]
        if isinstance(msg, (LiveStarted, LiveSkipped, LiveError)):
            return [msg]
        return []

    def receive_frame(self, frame: Frame) -> list[object]:
        state = self._streams[frame.job]
        if frame.role != "result":
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"a live stream gets result frames, not {frame.role}",
                                "role", frame.job)
        if not state.stopping:
            state.results[frame.index] = frame
        return []

    def close(self) -> list[LiveError]:
        """The connection ended: every open stream ends with ``connection_lost``."""
        ended = [LiveError(stream=s, code=errors.CONNECTION_LOST, message="the connection to the server ended",
                           ended=True) for s in self._streams]
        self._streams.clear()
        return ended
