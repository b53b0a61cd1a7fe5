"""Krita's record of a job: what it captured from which document, and what it placed.

Planning, naming, the jobs in flight and event handling are the shared plugin core's (``proto.core``: its
``session.JobSession`` keeps each ``Job`` as a session job's ``tag``); nothing here touches Krita or Qt.
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
    expand: core.canvas.ExpandPlan | None = None  # expand canvas: it grows by this when the result arrives

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
    track: Tracker | None = None  # the session's tracker of this job, once submitted
    preview_shown: bool = False
    layers: list[str] = field(default_factory=list)  # names of result layers, once placed

    @property
    def state(self) -> str:
        return self.track.state if self.track is not None else core.jobs.JobState.SENDING

    @property
    def preview_rect(self) -> Rect | None:
        """The region the server announced for previews (``started``), None before it."""
        return self.track.region if self.track is not None else None


# wire field names as the docker labels them (for the error sentences)
LABELS = {"steps": "Steps", "batch": "Images", "guidance": "CFG", "strength": "Strength", "seed": "Seed",
          "negative_prompt": "Negative", "prompt": "Prompt", "model": "Model",
          "sampler": "Sampler"}
