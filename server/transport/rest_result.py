"""What a REST job answers: one image as a PNG, a batch as a zip of PNGs.

A result frame lies over the source image (img2img, inpaint, outpaint: pasted into a copy of it) or is the new
image (upscale: the whole source at ``factor`` times its size, placed at 0, 0)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from fastapi.responses import Response
from PIL import Image
from underpaint.protocol.frames import Frame
from underpaint.protocol.pixels import decode_pixels

ZIP_NAME = "image-{index}.png"  # the members of a batch's zip, in batch order (seed of each: the header)


def _image(source: np.ndarray, frame: Frame) -> bytes:
    region = np.frombuffer(decode_pixels(frame), np.uint8).reshape(frame.height, frame.width, 4)
    height, width = source.shape[:2]
    if frame.x < 0 or frame.y < 0 or frame.x + frame.width > width or frame.y + frame.height > height:
        whole = region  # a new canvas (upscale): the frame covers all of it
    else:
        whole = source.copy()
        whole[frame.y:frame.y + frame.height, frame.x:frame.x + frame.width] = region
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(whole), "RGBA").save(buf, "PNG")
    return buf.getvalue()


def result_response(source: Image.Image, frames: list[Frame], seeds: tuple[int, ...]) -> Response:
    """One frame per image (REST jobs ask for untiled rgba8 results): a PNG, or a zip of ``ZIP_NAME``s."""
    pixels = np.array(source)
    headers = {"X-Underpaint-Seeds": ",".join(map(str, seeds))}
    ordered = sorted(frames, key=lambda f: f.index)
    if len(ordered) == 1:
        return Response(_image(pixels, ordered[0]), media_type="image/png", headers=headers)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for frame in ordered:
            archive.writestr(ZIP_NAME.format(index=frame.index), _image(pixels, frame))
    headers["Content-Disposition"] = 'attachment; filename="underpaint-batch.zip"'
    return Response(buf.getvalue(), media_type="application/zip", headers=headers)
