"""Result images of a Krita job (decoded and checked by the shared session) turned into layer contents: inpaint
results clipped to what changed, named, with the record of what made them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .jobs import Job
from .params import ResultRecord
from .pixels import BYTES_PER_PIXEL, clear_unchanged, crop
from .proto import core, geometry


@dataclass(frozen=True)
class ResultImage:
    rect: geometry.Rect
    pixels: bytes  # in the job's pixel format; inpaint: unchanged pixels made transparent
    seed: int
    name: str
    record: ResultRecord


def result_images(job: Job, decoded: tuple[core.jobs.ResultImage, ...] | list[core.jobs.ResultImage],
                  server_version: str = "") -> list[ResultImage]:
    """Each decoded result image (checked by the session) clipped (inpaint), named, with its parameters."""
    cap, params = job.capture, job.params
    bpp = BYTES_PER_PIXEL[cap.pixel_format]
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    region = (cap.region.x, cap.region.y, cap.region.width, cap.region.height)
    images = []
    for image in decoded:
        rect, data, seed = image.rect, image.pixels, image.seed if image.seed is not None else params.seed
        if cap.kind == core.regions.INPAINT:
            local = rect.translate(-cap.region.x, -cap.region.y)
            original = crop(cap.pixels, bpp, cap.region.width, local.x, local.y, local.width, local.height)
            data, _ = clear_unchanged(data, original, bpp, rect.width)
        record = ResultRecord(params, cap.kind, seed, region, server_version, created, cap.source_id)
        images.append(ResultImage(rect, data, seed, core.naming.result_layer_name(cap.kind, params.prompt, seed),
                                  record))
    return images
