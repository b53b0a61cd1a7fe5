"""Result frames of a Krita job turned into layer contents: decoded and checked by the plugin core, inpaint
results clipped to what changed, named, with the record of what made them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .jobs import Job
from .params import ResultRecord
from .pixels import BYTES_PER_PIXEL, clear_unchanged, crop
from .proto import core, frames, geometry, messages


@dataclass(frozen=True)
class ResultImage:
    rect: geometry.Rect
    pixels: bytes  # in the job's pixel format; inpaint: unchanged pixels made transparent
    seed: int
    name: str
    record: ResultRecord


def result_images(job: Job, result: messages.Result, result_frames: tuple[frames.Frame, ...],
                  server_version: str = "") -> list[ResultImage]:
    """Decode, check and (inpaint) clip each result frame; name it and record its parameters."""
    cap, params = job.capture, job.params
    bpp = BYTES_PER_PIXEL[cap.pixel_format]
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    region = (cap.region.x, cap.region.y, cap.region.width, cap.region.height)
    images = []
    for decoded in core.jobs.decode_results(cap.result_plan, cap.pixel_format, result, result_frames, params.seed):
        rect, data, seed = decoded.rect, decoded.pixels, decoded.seed
        if cap.kind == "inpaint":
            local = rect.translate(-cap.region.x, -cap.region.y)
            original = crop(cap.pixels, bpp, cap.region.width, local.x, local.y, local.width, local.height)
            data, _ = clear_unchanged(data, original, bpp, rect.width)
        record = ResultRecord(params, cap.kind, seed, region, server_version, created, cap.source_id)
        images.append(ResultImage(rect, data, seed, core.naming.result_layer_name(cap.kind, params.prompt, seed),
                                  record))
    return images
