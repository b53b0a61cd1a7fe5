"""Where the tiles of a full-resolution (tiled) run go, and how their overlapping predictions are blended.

Pure numpy, in latent units (pixels / 8), so it can be tested without a model. A run diffuses every tile of
``layout`` each step; tile ``i``'s noise prediction is multiplied by ``weights(...)[i]`` and summed. The
weights of all tiles covering a latent pixel sum to 1, so the blend is an average (MultiDiffusion) in which
each tile's say fades out towards its inner edges: no visible seams, and a pixel covered by one tile keeps
exactly that tile's prediction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A rectangle of the latent: columns ``x .. x+width``, rows ``y .. y+height``."""

    x: int
    y: int
    width: int
    height: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns) for indexing a (..., H, W) array."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, size) of the tiles along one axis: as few tiles of side ``tile`` as cover ``length`` with at
    least ``overlap`` shared between neighbours, spread evenly, the first at 0 and the last ending at ``length``.
    A length up to ``tile`` is one tile of that length."""
    if length < 1 or tile < 1:
        raise ValueError(f"length and tile must be >= 1, got {length} and {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in 0..{tile - 1}, got {overlap}")
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [(round(i * (length - tile) / (count - 1)), tile) for i in range(count)]


def layout(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a ``width`` x ``height`` latent."""
    return [Tile(x, y, w, h) for y, h in spans(height, tile, overlap) for x, w in spans(width, tile, overlap)]


def _ramp(size: int, start_inner: bool, end_inner: bool, overlap: int) -> np.ndarray:
    """1 in the middle, falling linearly towards an edge that another tile overlaps (never to 0)."""
    ramp = np.ones(size, np.float64)
    width = min(overlap, size // 2)
    if width > 0:
        rising = np.arange(1, width + 1, dtype=np.float64) / (width + 1)
        if start_inner:
            ramp[:width] = rising
        if end_inner:
            ramp[size - width:] = np.minimum(ramp[size - width:], rising[::-1])
    return ramp


def raw_weight(tile: Tile, width: int, height: int, overlap: int) -> np.ndarray:
    """A tile's (height, width) weight before normalisation: ramps towards its edges inside the latent."""
    rows = _ramp(tile.height, tile.y > 0, tile.y + tile.height < height, overlap)
    cols = _ramp(tile.width, tile.x > 0, tile.x + tile.width < width, overlap)
    return np.outer(rows, cols)


def weight_sum(tiles: list[Tile], width: int, height: int, overlap: int) -> np.ndarray:
    """The (height, width) sum of every tile's raw weight (> 0 wherever the tiles cover)."""
    total = np.zeros((height, width), np.float64)
    for tile in tiles:
        total[tile.slices] += raw_weight(tile, width, height, overlap)
    return total


def weights(tiles: list[Tile], width: int, height: int, overlap: int) -> Iterator[np.ndarray]:
    """Each tile's normalised (height, width) float32 weight, one at a time (bounded memory); the weights of
    the tiles covering a latent pixel sum to 1. Raises ValueError when the tiles leave a pixel uncovered."""
    total = weight_sum(tiles, width, height, overlap)
    if not (total > 0).all():
        raise ValueError("the tiles do not cover the latent")
    for tile in tiles:
        yield (raw_weight(tile, width, height, overlap) / total[tile.slices]).astype(np.float32)
