"""Pure image functions between wire pixels and the model: decode/encode, resize, masks, paste-back.

No I/O and no torch. Colour images are numpy arrays of shape (H, W, 4) in RGBA order with dtype
uint8, uint16, float16 or float32 (not premultiplied). Masks are (H, W) uint8 (0 = untouched, 255 = selected);
blend alphas are (H, W) float32 in 0..1.
"""

from .masks import EmptyMask, crop_for_inpaint, feather_mask, grow_mask, mask_bbox
from .pipeline import Cut, Prepared, cut_region, finish, prepare
from .pixels import (
    alpha_of,
    bytes_per_pixel,
    composite,
    convert_depth,
    decode_pixels,
    encode_pixels,
    to_rgb8,
)
from .sizing import fit_to_model, resize_colour, resize_float, resize_mask, resize_rgb

__all__ = [
    "Cut", "EmptyMask", "Prepared", "bytes_per_pixel", "decode_pixels", "encode_pixels",
    "convert_depth", "to_rgb8", "alpha_of", "fit_to_model", "resize_rgb", "resize_float", "resize_colour",
    "resize_mask", "mask_bbox",
    "crop_for_inpaint", "grow_mask", "feather_mask", "composite", "prepare", "finish", "cut_region",
]  # fmt: skip
