"""Outpaint (expand canvas) pixels: which pixels are new, a sensible fill of them before diffusion, and the
alpha of the result layer (the new area opaque, a soft seam into the old image, nothing over the rest)."""

from __future__ import annotations

import numpy as np

from .masks import feather_mask, grow_mask, mask_u8
from .pixels import alpha_of, check_colour

NOISE_LEVELS = 24.0  # standard deviation of the noise added to the stretched colours, in 8-bit levels


def new_area(image_rgba: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: the pixels to fill, those with alpha 0, or mask >= 128 when a mask is given."""
    check_colour("image", image_rgba)
    if mask is not None:
        return mask_u8("mask", mask) >= 128
    return alpha_of(image_rgba) <= 0


def stretch_fill(rgb8: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the pixels where ``known`` is False with the colours of the nearest known ones, smoothly (a
    push-pull pyramid: average the known colours down to where every cell has some, then carry them back up).
    ``rgb8``: (H, W, 3) uint8; returns float32 (H, W, 3) with the known pixels unchanged."""
    if not known.any():
        return np.full(rgb8.shape, 127.5, np.float32)
    levels = [(rgb8.astype(np.float32) * known[..., None], known.astype(np.float32))]
    while not (levels[-1][1] > 0).all():
        colour, weight = levels[-1]
        h, w = weight.shape
        ph, pw = h + h % 2, w + w % 2  # pad odd sides with empty cells
        colour = np.pad(colour, ((0, ph - h), (0, pw - w), (0, 0)))
        weight = np.pad(weight, ((0, ph - h), (0, pw - w)))
        levels.append((colour.reshape(ph // 2, 2, pw // 2, 2, 3).sum(axis=(1, 3)),
                       weight.reshape(ph // 2, 2, pw // 2, 2).sum(axis=(1, 3))))
    colour, weight = levels[-1]
    filled = colour / weight[..., None]
    for colour, weight in reversed(levels[:-1]):
        h, w = weight.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:h, :w]
        have = weight > 0
        filled = np.where(have[..., None], colour / np.maximum(weight, 1e-12)[..., None], coarse)
    return np.where(known[..., None], rgb8.astype(np.float32), filled)


def _nearest(known: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Index along ``axis`` of the nearest known pixel in the same row (axis 1) or column (axis 0), and its
    distance (inf where the line has none)."""
    n = known.shape[axis]
    pos = np.arange(n).reshape((1, n) if axis == 1 else (n, 1))
    before = np.maximum.accumulate(np.where(known, pos, -1), axis=axis)
    after = np.flip(np.minimum.accumulate(np.flip(np.where(known, pos, n), axis=axis), axis=axis), axis=axis)
    d_before = np.where(before >= 0, pos - before, np.inf)
    d_after = np.where(after < n, after - pos, np.inf)
    use_after = d_after < d_before
    return np.where(use_after, after, before).clip(0, n - 1), np.minimum(d_before, d_after)


def edge_stretch(rgb8: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each unknown pixel takes the colour of the nearest known pixel in its row or its column (the edges of
    the old image stretched outwards); pixels whose row and column are both unknown (corners) take the
    push-pull fill. (H, W, 3) float32."""
    h, w = known.shape
    cols, d_row = _nearest(known, 1)
    rows, d_col = _nearest(known, 0)
    ys, xs = np.mgrid[0:h, 0:w]
    by_row = rgb8[ys, cols].astype(np.float32)
    by_col = rgb8[rows, xs].astype(np.float32)
    out = np.where((d_row <= d_col)[..., None], by_row, by_col)
    nowhere = np.isinf(d_row) & np.isinf(d_col)
    if nowhere.any():
        out = np.where(nowhere[..., None], stretch_fill(rgb8, known), out)
    return np.where(known[..., None], rgb8.astype(np.float32), out)


def prefill(rgb8: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    """The image with its new area pre-filled for diffusion: the old edge colours stretched outwards, softened,
    plus noise (so the model has colour to continue from and texture to refine). (H, W, 3) uint8."""
    if not (~new).any():
        filled = np.full(rgb8.shape, 127.5, np.float32)
    else:
        filled = edge_stretch(rgb8, ~new)
    if new.any():
        blurred = np.stack([_box_blur(filled[..., c], 4) for c in range(3)], axis=-1)
        filled = np.where(new[..., None], blurred, filled)
    noise = np.random.default_rng(seed).normal(0.0, NOISE_LEVELS, filled.shape).astype(np.float32)
    out = np.where(new[..., None], filled + noise, filled)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _box_blur(channel: np.ndarray, radius: int) -> np.ndarray:
    """Mean over (2r+1)^2 windows, edges replicated."""
    out = channel
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = out.shape[axis]
        out = (c.take(range(2 * radius + 1, 2 * radius + 1 + n), axis=axis) - c.take(range(n), axis=axis))
        out = out / (2 * radius + 1)
    return out.astype(np.float32)


def seam_alpha(new: np.ndarray, feather: int) -> np.ndarray:
    """(H, W) float32 alpha of an outpaint result: 1 over the new area, ramping smoothly down to 0 within
    ``feather`` pixels into the old image, and exactly 0 beyond."""
    inside = new.astype(np.float32)
    if feather <= 0:
        return inside
    radius = feather // 2  # the ramp: a feather of ``radius`` around the new area grown by the rest
    ramp = feather_mask(grow_mask(new, feather - radius) > 0, radius)
    return np.maximum(ramp, inside)
