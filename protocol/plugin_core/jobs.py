"""One job's client events turned into host-neutral updates, and its result frames decoded and checked.

A host feeds every event of a job to ``Tracker.update`` (on its main thread) and acts on what comes back:
``Status`` (a line and maybe step/total for a bar), ``Preview`` (a frame to show), or ``Finished`` (the
job's one terminal update: ``done`` with its result, ``failed`` with a sentence, or ``cancelled``).

Reconnect and resume: a job submitted with ``keep_result`` (``kept``) that loses its connection is
``detached``, not failed; the host reconnects (``reconnect.Backoff``) and calls ``client.resume(job)``
then ``resuming()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import connection, errors, geometry, messages, pixels
from ..vocabulary import BYTES_PER_PIXEL
from .reconnect import LOST_TEXT
from .regions import Plan, RegionError, check_result
from .sentences import explain

Rect = geometry.Rect


@dataclass(frozen=True)
class Status:
    text: str
    step: int = 0
    total: int = 0  # 0: no step has run yet (a busy bar)


@dataclass(frozen=True)
class Preview:
    frame: Any
    region: Rect | None  # what the server said the previews cover (``started``), None before it


@dataclass(frozen=True)
class Finished:
    state: str  # done | failed | cancelled
    text: str
    result: Any = None  # messages.Result when done
    frames: tuple = ()


def progress_text(step: int, total: int) -> str:
    """``Step 3/20``; ``Generating …`` before the first step."""
    return f"Step {min(step, total)}/{total}" if total > 0 else "Generating …"


@dataclass
class Tracker:
    """The state of one job as its events arrive; ``update`` returns what the host should do, or None."""

    job: str
    labels: dict[str, str] = field(default_factory=dict)  # wire field -> host label, for error sentences
    state: str = "sending"  # sending, queued, running, done, failed, cancelled
    position: int = 0
    step: int = 0
    total: int = 0
    region: Rect | None = None
    cancel_requested: bool = False
    kept: bool = False  # submitted with keep_result: survives a dropped connection
    resumed: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def detached(self) -> bool:
        """Its connection dropped; the server keeps it until the host resumes it."""
        return self.state == "detached"

    def resuming(self) -> Status:
        self.state, self.resumed = "queued", True
        return Status("Resuming the job after the connection was lost …")

    def sent(self) -> Status:
        self.state = "queued"
        return Status("Sent; waiting for the server")

    def fail(self, text: str) -> Finished:
        self.state = "failed"
        return Finished("failed", text)

    def update(self, event: object) -> Status | Preview | Finished | None:
        if self.finished or getattr(event, "job", None) != self.job:
            return None
        if isinstance(event, messages.Queued):
            self.state, self.position = "queued", event.position
            return Status(f"Queued (position {event.position + 1})" if event.position else "Queued")
        if isinstance(event, messages.Started):
            self.state = "running"
            if event.width and event.height:
                self.region = Rect(event.x, event.y, event.width, event.height)
            return Status(progress_text(0, 0))
        if isinstance(event, messages.Progress):
            self.state, self.step, self.total = "running", min(event.step, event.total), event.total
            prefix = "Cancelling … " if self.cancel_requested else ""
            return Status(prefix + progress_text(self.step, self.total), self.step, self.total)
        if isinstance(event, connection.PreviewReceived):
            return None if self.cancel_requested else Preview(event.frame, self.region)
        if isinstance(event, connection.ResultReceived):
            self.state = "done"
            return Finished("done", "", event.result, tuple(event.frames))
        if isinstance(event, messages.Error):
            if event.code == errors.CONNECTION_LOST and self.kept and not self.cancel_requested:
                self.state = "detached"
                return Status("Connection lost: the server keeps the job; reconnecting …")
            if event.code == errors.UNKNOWN_JOB and self.resumed:
                return self.fail(LOST_TEXT)
            return self.fail(explain(event.code, event.message, self.labels))
        if isinstance(event, messages.Cancelled):
            self.state = "cancelled"
            return Finished("cancelled", "Cancelled")
        return None


@dataclass(frozen=True)
class ResultImage:
    rect: Rect
    pixels: bytes  # raw, little-endian, in the requested pixel format
    seed: int | None


def decode_results(plan: Plan, pixel_format: str, result: Any, frames: tuple, requested_seed: int | None = None
                   ) -> list[ResultImage]:
    """Each result frame checked (format, inside the region sent, size) and decoded; ValueError with a
    sentence otherwise. A seed the server did not report is the requested one (+ the image's number)."""
    if not frames:
        raise ValueError("The server finished without a result image.")
    images = []
    for i, frame in enumerate(frames):
        if frame.pixel_format != pixel_format:
            raise ValueError(f"The server returned {frame.pixel_format} pixels but {pixel_format} was requested.")
        rect = Rect(frame.x, frame.y, frame.width, frame.height)
        check_result(plan, rect)
        try:
            data = pixels.decode_pixels(frame)
        except errors.ProtocolError as exc:
            raise ValueError(f"The result image could not be decoded: {exc.message}") from None
        if len(data) != rect.width * rect.height * BYTES_PER_PIXEL[pixel_format]:
            raise ValueError("The result image has the wrong number of bytes.")
        seeds = getattr(result, "seeds", ())
        seed = seeds[i] if i < len(seeds) else (requested_seed + i if requested_seed is not None else None)
        images.append(ResultImage(rect, data, seed))
    return images


__all__ = ["Finished", "Preview", "RegionError", "ResultImage", "Status", "Tracker", "decode_results",
           "progress_text"]
