"""Tiled frames: cut one big frame into row-major tiles, check that tiles cover a rectangle, put them back.

A big layer travels as several ordinary frames (``submit.inputs[].tiles``, ``submit.result_tile``) because one huge
websocket message costs several full-size copies inside the websocket libraries. Whole rows are sliced and
slice-assigned: no per-pixel Python.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Sequence

from . import errors
from .errors import ProtocolError
from .frames import Frame
from .geometry import Rect
from .pixels import decode_pixels, encode_payload
from .vocabulary import BYTES_PER_PIXEL, MAX_TILE_SIDE, MAX_TILES, MIN_TILE_SIDE

__all__ = ["MAX_TILES", "MAX_TILE_SIDE", "MIN_TILE_SIDE", "assemble", "check_cover", "split", "tile_count",
           "tile_rects"]


def frame_rect(frame: Frame) -> Rect:
    return Rect(frame.x, frame.y, frame.width, frame.height)


def tile_rects(region: Rect, tile_side: int) -> list[Rect]:
    """Row-major tiles of at most ``tile_side`` x ``tile_side`` covering ``region``."""
    if tile_side < 1:
        raise ProtocolError(errors.OUT_OF_RANGE, f"tile side must be at least 1 (got {tile_side})", "tile_side")
    return [Rect(region.x + left, region.y + top, min(tile_side, region.width - left),
                 min(tile_side, region.height - top))
            for top in range(0, region.height, tile_side) for left in range(0, region.width, tile_side)]


def tile_count(width: int, height: int, tile_side: int) -> int:
    return -(-width // tile_side) * -(-height // tile_side)


def split(frame: Frame, tile_side: int, index: int | None = None, level: int = 1,
          encoding: str | None = None) -> list[Frame]:
    """Cut ``frame`` into row-major tiles of at most ``tile_side`` pixels a side, in its own encoding (or
    ``encoding``: a raw frame can be cut into zlib tiles without compressing the whole first).

    Tile ``i`` gets ``index`` = ``i`` (input tiles) unless ``index`` is given (result tiles: the image number).
    A frame that already fits is returned as the only tile (re-indexed if needed).
    """
    rects = tile_rects(frame_rect(frame), tile_side)
    encoding = encoding or frame.encoding
    if len(rects) == 1 and encoding == frame.encoding:
        idx = 0 if index is None else index
        return [frame if frame.index == idx else _replace_index(frame, idx)]
    pixels = decode_pixels(frame)
    bpp = BYTES_PER_PIXEL[frame.pixel_format]
    stride = frame.width * bpp
    view = memoryview(pixels)
    out: list[Frame] = []
    for i, rect in enumerate(rects):
        left, top = (rect.x - frame.x) * bpp, rect.y - frame.y
        row_bytes = rect.width * bpp
        if row_bytes == stride:  # full-width tiles are one contiguous slice
            data = bytes(view[top * stride:(top + rect.height) * stride])
        else:
            data = b"".join(view[(top + r) * stride + left:(top + r) * stride + left + row_bytes]
                            for r in range(rect.height))
        payload = encode_payload(data, rect.width, rect.height, frame.pixel_format, encoding, level)
        out.append(Frame(job=frame.job, role=frame.role, width=rect.width, height=rect.height,
                         pixel_format=frame.pixel_format, payload=payload, encoding=encoding, x=rect.x,
                         y=rect.y, index=i if index is None else index))
    return out


def _replace_index(frame: Frame, index: int) -> Frame:
    return Frame(job=frame.job, role=frame.role, width=frame.width, height=frame.height,
                 pixel_format=frame.pixel_format, payload=frame.payload, encoding=frame.encoding, x=frame.x,
                 y=frame.y, index=index)


def _describe(name: str, i: int, rect: Rect) -> str:
    return f"{name} tile {i} ({rect.width}x{rect.height}@{rect.x},{rect.y})"


def check_cover(tiles: Sequence[Frame], name: str = "image", job: str | None = None) -> Rect:
    """Check that ``tiles`` share one format and encoding and cover their bounding box exactly; return it.

    Errors: ``bad_frame`` for a mixed format or encoding, ``size_mismatch`` naming the tiles that overlap or
    the uncovered pixel count of a gap. Runs in O(n log n) for n tiles (a sweep over rows).
    """
    if not tiles:
        raise ProtocolError(errors.MISSING_FRAME, f"no {name} tiles", name, job)
    first = tiles[0]
    for i, tile in enumerate(tiles):
        if (tile.pixel_format, tile.encoding) != (first.pixel_format, first.encoding):
            raise ProtocolError(errors.BAD_FRAME, f"{name} tile {i} is {tile.pixel_format}/{tile.encoding} but tile 0 "
                                f"is {first.pixel_format}/{first.encoding}; all tiles must match", name, job)
    rects = [frame_rect(t) for t in tiles]
    box = rects[0]
    for rect in rects[1:]:
        box = box.union(rect)
    _check_no_overlap(rects, name, job)
    covered = sum(r.area for r in rects)
    if covered != box.area:
        raise ProtocolError(errors.SIZE_MISMATCH, f"{name} tiles leave {box.area - covered} pixels of their bounding "
                            f"box {box.width}x{box.height}@{box.x},{box.y} uncovered", name, job)
    return box


def _check_no_overlap(rects: list[Rect], name: str, job: str | None) -> None:
    """Sweep rows top-down; the tiles alive at a row are disjoint in x, so only neighbours can overlap."""
    order = sorted(range(len(rects)), key=lambda i: (rects[i].y, rects[i].x))
    active: list[tuple[int, int, int]] = []  # (x, right, tile) of tiles spanning the current row, by x
    expiry: list[tuple[int, int, int, int]] = []  # (bottom, x, right, tile)
    for i in order:
        rect = rects[i]
        while expiry and expiry[0][0] <= rect.y:
            _, x, right, j = heapq.heappop(expiry)
            del active[bisect_left(active, (x, right, j))]
        pos = bisect_left(active, (rect.x, rect.right, i))
        for k in (pos - 1, pos):
            if 0 <= k < len(active):
                x, right, j = active[k]
                if x < rect.right and rect.x < right:
                    a, b = sorted((i, j))
                    raise ProtocolError(errors.SIZE_MISMATCH, f"{_describe(name, b, rects[b])} overlaps "
                                        f"{_describe(name, a, rects[a])}", name, job)
        insort(active, (rect.x, rect.right, i))
        heapq.heappush(expiry, (rect.bottom, rect.x, rect.right, i))


def assemble(tiles: Sequence[Frame], index: int | None = None) -> Frame:
    """One raw frame for the bounding box of ``tiles`` (validated with ``check_cover``), pixels copied row-wise.

    A single raw tile is returned as it is. The result keeps the tiles' job, role, format and (unless given)
    the first tile's ``index``.
    """
    first = tiles[0] if tiles else None
    box = check_cover(tiles, first.role if first else "image", first.job if first else None)
    assert first is not None
    idx = first.index if index is None else index
    if len(tiles) == 1 and first.encoding == "raw":
        return first if first.index == idx else _replace_index(first, idx)
    bpp = BYTES_PER_PIXEL[first.pixel_format]
    stride = box.width * bpp
    out = bytearray(stride * box.height)
    for tile in tiles:
        data = decode_pixels(tile)
        row_bytes = tile.width * bpp
        left, top = (tile.x - box.x) * bpp, tile.y - box.y
        if row_bytes == stride:
            out[top * stride:(top + tile.height) * stride] = data
            continue
        view = memoryview(data)
        for r in range(tile.height):
            start = (top + r) * stride + left
            out[start:start + row_bytes] = view[r * row_bytes:(r + 1) * row_bytes]
    return Frame(job=first.job, role=first.role, width=box.width, height=box.height,
                 pixel_format=first.pixel_format, payload=bytes(out), encoding="raw", x=box.x, y=box.y, index=idx)
