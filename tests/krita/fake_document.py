"""A host document without Krita: pixels in memory, records what the controller asks of it."""

from __future__ import annotations

from underpaint.plugin_krita.jobs import Capture, Job
from underpaint.plugin_krita.pixels import BYTES_PER_PIXEL, crop
from underpaint.protocol.geometry import Rect, bounding_box
from underpaint.protocol.plugin_core import regions


class FakeDocument:
    def __init__(self, key: int = 1, width: int = 64, height: int = 48, fmt: str = "bgra8",
                 layer: Rect | None = None, mask: bytes | None = None) -> None:
        self.key, self.name, self.fmt = key, f"doc{key}", fmt
        self.canvas = Rect(0, 0, width, height)
        self.layer = layer or self.canvas
        bpp = BYTES_PER_PIXEL[fmt]
        self.pixels = bytes((i * 31 + i // bpp * 7) % 256 for i in range(width * height * bpp))
        self.mask = mask  # gray8 over the canvas, or None for no selection
        self.open = True
        self.previews: dict[str, int] = {}
        self.cleared: list[str] = []
        self.results: list[tuple[Job, list]] = []

    def is_open(self) -> bool:
        return self.open

    def capture(self, params, settings) -> Capture:
        selection = None
        if self.mask is not None:
            selection = bounding_box(self.mask, self.canvas.width, self.canvas.height)
        padding = max(settings.context_padding, max(settings.grow, 0) + settings.feather)
        source = self.layer if params.source == "layer" else None
        kind = regions.choose_kind(params.mode, selection is not None)
        plan = regions.plan_region(kind, self.canvas, selection, padding, source=source, bounds_name="canvas")
        r, bpp = plan.region, BYTES_PER_PIXEL[self.fmt]
        pixels = crop(self.pixels, bpp, self.canvas.width, r.x, r.y, r.width, r.height)
        mask = crop(self.mask, 1, self.canvas.width, r.x, r.y, r.width, r.height) if plan.kind == "inpaint" else None
        return Capture(plan, self.fmt, pixels, mask, "layer-1", "layer")

    def show_preview(self, job: Job, frame) -> None:
        self.previews[job.id] = self.previews.get(job.id, 0) + 1

    def clear_preview(self, job: Job) -> None:
        self.cleared.append(job.id)

    def add_results(self, job: Job, images: list) -> list[str]:
        self.results.append((job, images))
        return [image.name for image in images]
