"""Krita's job bookkeeping: what a job captured from which document, and the jobs in flight.

Planning, naming and event handling are the shared plugin core's (``proto.core``); nothing here touches
Krita or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .params import GenerationParams
from .proto import core, geometry

Rect = geometry.Rect
Plan = core.regions.Plan
Tracker = core.jobs.Tracker


class UserError(Exception):
    """Something the painter can fix (no layer, empty selection ...); the message says what to do."""


@dataclass(frozen=True)
class Capture:
    """Pixels read from the document for one job, in the document's own pixel format."""

    plan: Plan
    pixel_format: str
    pixels: bytes
    mask: bytes | None  # gray8 selection of the region, inpaint only
    source_id: str  # the source layer's unique id, "" for the visible image
    source_name: str
    result_region: Rect | None = None  # where results lie when not in the region sent (upscale)
    expand: core.canvas.ExpandPlan | None = None  # outpaint: the canvas grows by this when the result arrives

    @property
    def kind(self) -> str:
        return self.plan.kind

    @property
    def region(self) -> Rect:
        return self.plan.region

    @property
    def result_plan(self) -> Plan:
        """What results are checked against: the plan, or the upscaled region for upscale jobs."""
        if self.result_region is None:
            return self.plan
        return Plan(self.kind, self.result_region, self.result_region, self.plan.masked)


@dataclass
class Job:
    id: str
    doc_key: int
    doc_name: str
    capture: Capture
    params: GenerationParams  # seed resolved: never None here
    track: Tracker = field(init=False)
    preview_shown: bool = False
    layers: list[str] = field(default_factory=list)  # names of result layers, once placed

    def __post_init__(self) -> None:
        self.track = Tracker(self.id, labels=dict(LABELS))

    @property
    def state(self) -> str:
        return self.track.state

    @property
    def preview_rect(self) -> Rect | None:
        """The region the server announced for previews (``started``), None before it."""
        return self.track.region


# wire field names as the docker labels them (for the error sentences)
LABELS = {"steps": "Steps", "batch": "Images", "guidance": "CFG", "strength": "Strength", "seed": "Seed",
          "negative_prompt": "Negative", "prompt": "Prompt", "model": "Model"}


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
        return next((j for j in self._jobs.values() if j.state == "running"), None)

    def __len__(self) -> int:
        return len(self._jobs)
