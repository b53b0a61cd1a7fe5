"""Host-independent job bookkeeping: which region to send, what a job carries, how results are named.

Nothing here touches Krita or Qt, so all of it is unit-tested with plain pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .params import GenerationParams
from .proto import geometry

Rect = geometry.Rect
PREVIEW_LAYER_NAME = "Underpaint preview"
NAME_PROMPT_CHARS = 48


class UserError(Exception):
    """Something the painter can fix (no layer, empty selection ...); the message says what to do."""


@dataclass(frozen=True)
class Plan:
    kind: str  # img2img | inpaint
    region: Rect  # document pixels to send; previews and results cover it


def plan_region(mode: str, canvas: Rect, source: Rect | None, selection: Rect | None, padding: int) -> Plan:
    """Decide the job kind and the document region to send.

    ``source``: bounds of the source layer's pixels (None when the source is the visible image, i.e. the
    canvas). ``selection``: bounds of the selection, None when nothing is selected.
      * inpaint (mode inpaint, or auto with a selection): the selection bounds plus ``padding`` context,
        clamped to the canvas and aligned to multiples of 8 (``geometry.context_region``).
      * img2img: the selection bounds if there is one, else the source bounds, clipped to the canvas.
    """
    if canvas.is_empty:
        raise UserError("The document has no pixels (its canvas is empty).")
    if selection is not None and selection.is_empty:
        selection = None
    if mode == "inpaint" and selection is None:
        raise UserError("Inpaint needs a selection: select the area to repaint, or set the mode to Auto or Img2img.")
    if mode not in ("auto", "img2img", "inpaint"):
        raise UserError(f"Unknown mode {mode!r}.")
    if selection is not None and selection.intersect(canvas).is_empty:
        raise UserError("The selection lies outside the canvas.")
    if selection is not None and mode != "img2img":
        return Plan("inpaint", geometry.context_region(selection, canvas, padding))
    base = selection if selection is not None else (source if source is not None else canvas)
    region = base.intersect(canvas)
    if region.is_empty:
        raise UserError("The active layer has no pixels on the canvas: paint something first, or use the "
                        "visible image as source.")
    return Plan("img2img", region)


@dataclass(frozen=True)
class Capture:
    """Pixels read from the document for one job, in the document's own pixel format."""

    plan: Plan
    pixel_format: str
    pixels: bytes
    mask: bytes | None  # gray8 selection of the region, inpaint only
    source_id: str  # the source layer's unique id, "" for the visible image
    source_name: str

    @property
    def kind(self) -> str:
        return self.plan.kind

    @property
    def region(self) -> Rect:
        return self.plan.region


@dataclass
class Job:
    id: str
    doc_key: int
    doc_name: str
    capture: Capture
    params: GenerationParams  # seed resolved: never None here
    state: str = "sending"  # sending, queued, running, finishing, done, failed, cancelled
    position: int = 0
    step: int = 0
    total: int = 0
    cancel_requested: bool = False
    preview_shown: bool = False
    preview_rect: Rect | None = None  # the region the server announced for previews (``started``)
    layers: list[str] = field(default_factory=list)  # names of result layers, once placed

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


class JobBook:
    """The jobs in flight, in submission order, each bound to the document it came from."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        if job.id in self._jobs:
            raise ValueError(f"job {job.id} is already tracked")
        self._jobs[job.id] = job

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def pop(self, job_id: str) -> Job | None:
        return self._jobs.pop(job_id, None)

    def for_document(self, doc_key: int) -> list[Job]:
        return [j for j in self._jobs.values() if j.doc_key == doc_key]

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def running(self) -> Job | None:
        return next((j for j in self._jobs.values() if j.state in ("running", "finishing")), None)

    def __len__(self) -> int:
        return len(self._jobs)


def short_prompt(prompt: str, limit: int = NAME_PROMPT_CHARS) -> str:
    """The prompt on one line, cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(prompt.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def result_layer_name(prompt: str, seed: int, kind: str) -> str:
    """E.g. ``a red fox in snow [inpaint, seed 1234]``."""
    return f"{short_prompt(prompt) or 'Underpaint'} [{kind}, seed {seed}]"
