"""The pure prepare/finish pair the job layer calls around the model."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from underpaint.protocol.geometry import Rect, Size

from .masks import EmptyMask, check_mask_shape, crop_for_inpaint, feather_mask, grow_mask, mask_u8
from .pixels import check_colour, composite, describe_array, to_rgb8
from .sizing import fit_to_model, pad_edges, padded_size, resize_mask, resize_rgb


class Cut(Enum):
    """How ``prepare`` cuts the region: the whole image (a mask only limits the paste-back), or around the mask
    (the model repaints it: ``model_mask``). A job kind's handler (server.jobs.handlers) picks one."""

    WHOLE = "whole"
    AROUND_MASK = "around_mask"


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` hands to the model, and what ``finish`` needs to paste the result back."""

    region: Rect  # document coordinates of the pixels that ``finish`` returns
    model_image: np.ndarray  # (h, w, 3) uint8 at model size
    model_mask: np.ndarray | None  # (h, w) uint8 0/255 at model size; inpaint only
    blend_alpha: np.ndarray | None  # (H, W) float32 over ``region``; None = replace every pixel's colour
    source: np.ndarray  # (H, W, 4) the region's original pixels, original dtype
    cut: Cut = Cut.WHOLE
    tiled: bool = False  # the model image is the region itself, edge-padded to multiples of 8 (a tiled run)

    @property
    def model_size(self) -> Size:
        return Size(self.model_image.shape[1], self.model_image.shape[0])


def cut_region(image_rect: Rect, mask: np.ndarray | None, *, cut: Cut, context: int = 0, grow: int = 0,
               feather: int = 0) -> Rect:
    """The document region ``prepare`` cuts: the whole image, or around the mask (see ``prepare``). ``mask``:
    uint8 over ``image_rect``."""
    if cut is Cut.WHOLE:
        return image_rect
    if mask is None:
        raise ValueError("a cut around the mask needs a mask")
    reach = max(grow, 0) + feather  # alpha is 0 beyond reach: keep one such ring inside the region
    return crop_for_inpaint(image_rect, mask, max(context, reach + 1 if reach else 0))


def prepare(
    image_rgba: np.ndarray,
    image_rect: Rect,
    mask: np.ndarray | None,
    *,
    cut: Cut,
    resolution: int,
    max_pixels: int | None,
    context: int = 0,
    grow: int = 0,
    feather: int = 0,
    tiled: bool = False,
) -> Prepared:
    """Cut, scale and mask an image for the model. Everything after the pixels is a keyword (several ints).

    ``Cut.WHOLE``: the region is the whole image; a mask, if given, only limits the paste-back (``blend_alpha``).
    ``Cut.AROUND_MASK``: the region is the mask's bounds plus ``max(context, reach + 1)`` pixels, where
    ``reach = max(grow, 0) + feather`` (no ring when both are 0), so the feathered edge fades out inside it;
    clamped to the image and aligned to 8 (``context_region``). The mask is grown by ``grow`` (negative
    shrinks); ``model_mask`` is every pixel the grown mask touches (> 0), scaled to the model and binarized
    to 0/255; ``blend_alpha`` is the grown mask feathered by ``feather``.

    ``tiled``: the model works at the region's own resolution (in tiles): the model image is the region
    edge-padded to multiples of 8, never resampled, and ``max_pixels`` does not apply.
    """
    if not isinstance(cut, Cut):
        raise ValueError(f"unknown cut {cut!r}; expected one of {', '.join(str(c) for c in Cut)}")
    check_colour("image", image_rgba)
    if image_rgba.shape[:2] != (image_rect.height, image_rect.width):
        raise ValueError(
            f"image is {image_rgba.shape[1]}x{image_rgba.shape[0]} but image_rect is "
            f"{image_rect.width}x{image_rect.height}"
        )
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    if mask is not None:
        check_mask_shape(mask, image_rect.size)
        mask = mask_u8("mask", mask)
    region = cut_region(image_rect, mask, cut=cut, context=context, grow=grow, feather=feather)
    local = region.translate(-image_rect.x, -image_rect.y)
    local_mask = None if mask is None else mask[local.y : local.bottom, local.x : local.right]
    source = image_rgba[local.y : local.bottom, local.x : local.right].copy()
    if tiled:
        size = padded_size(region.size)
        model_image = pad_edges(to_rgb8(source), size)
    else:
        size = fit_to_model(region.size, resolution, max_pixels)
        model_image = resize_rgb(to_rgb8(source), size)
    if local_mask is None:
        return Prepared(region, model_image, None, None, source, cut, tiled)
    grown = grow_mask(local_mask, grow)
    if not grown.any():
        raise EmptyMask(f"the mask is empty after shrinking it by {-grow} px")
    blend_alpha = feather_mask(grown, feather)
    model_mask = None
    if cut is Cut.AROUND_MASK:
        touched = np.where(grown > 0, np.uint8(255), np.uint8(0))
        scaled = pad_edges(touched, size) if tiled else resize_mask(touched, size)
        model_mask = np.where(scaled > 0, np.uint8(255), np.uint8(0))
    return Prepared(region, model_image, model_mask, blend_alpha, source, cut, tiled)


def finish(prepared: Prepared, generated_rgb8: np.ndarray) -> np.ndarray:
    """Scale the model's output back to the region and paste it over ``prepared.source``.

    Returns (H, W, 4) in the source dtype covering ``prepared.region``: colour from the generated image
    (blended by ``blend_alpha`` when there is one), alpha channel unchanged.
    """
    expected = prepared.model_image.shape
    if generated_rgb8.shape != expected or generated_rgb8.dtype != np.uint8:
        raise ValueError(f"generated image must be {expected} uint8, got {describe_array(generated_rgb8)}")
    if prepared.tiled:
        scaled = generated_rgb8[: prepared.region.height, : prepared.region.width]
    else:
        scaled = resize_rgb(generated_rgb8, prepared.region.size)
    alpha = prepared.blend_alpha
    if alpha is None:
        alpha = np.ones(scaled.shape[:2], dtype=np.float32)
    return composite(prepared.source, scaled, alpha)
