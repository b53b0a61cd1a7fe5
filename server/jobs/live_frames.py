"""A live frame cut for the model and its result pasted back: copy-light for 8-bit RGBA/BGRA frames that the model
runs at their own size (the usual live case: a 512² region on an SD1.5 model), the job pipeline otherwise
(``imaging.prepare``/``finish``: scaling, other depths and formats)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from underpaint.protocol.geometry import Rect
from underpaint.protocol.vocabulary import PIXEL_FORMATS

from .. import imaging
from .handlers import Model


@dataclass
class Cut:
    region: Rect
    model_image: np.ndarray  # (h, w, 3) uint8 for the engine
    pixels: np.ndarray | None = None  # fast path: the frame's own (H, W, 4) uint8 pixels, written in place
    colour: list[int] | None = None  # fast path: the R, G, B channel positions of the format
    prepared: imaging.Prepared | None = None  # the job pipeline


def cut(snapshot: bytearray, key: tuple, result_format: str, model: Model) -> Cut:
    """``snapshot``: a private copy of the stream's kept input (the fast path writes the result into it)."""
    x, y, width, height, fmt = key
    region, row = Rect(x, y, width, height), PIXEL_FORMATS[fmt]
    same_size = imaging.fit_to_model(region.size, model.resolution, model.max_pixels) == region.size
    if same_size and fmt == result_format and row.dtype == "|u1" and row.layout in ("RGBA", "BGRA"):
        pixels = np.frombuffer(snapshot, np.uint8).reshape(height, width, 4)
        colour = [row.layout.index(c) for c in "RGB"]
        return Cut(region, pixels[..., colour], pixels, colour)
    image = imaging.decode_pixels(snapshot, width, height, fmt)
    # live frames always run at the model's size (never tiled): the job pipeline's img2img fit
    prepared = imaging.prepare(image, region, None, cut=imaging.Cut.WHOLE, resolution=model.resolution,
                               max_pixels=model.max_pixels)
    return Cut(prepared.region, prepared.model_image, prepared=prepared)


def paste(piece: Cut, generated: np.ndarray, result_format: str) -> bytes | memoryview:
    """The result's wire pixels: the generated colour over the frame, its alpha kept."""
    if piece.pixels is not None:
        piece.pixels[..., piece.colour] = generated
        return memoryview(piece.pixels).cast("B")
    assert piece.prepared is not None
    return imaging.encode_pixels(imaging.finish(piece.prepared, generated), result_format)
