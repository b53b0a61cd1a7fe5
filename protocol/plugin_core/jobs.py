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
from enum import Enum
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
    state: str  # a final JobState: done | failed | cancelled
    text: str
    result: Any = None  # messages.Result when done
    frames: tuple = ()
    images: tuple = ()  # decoded ``ResultImage``s when done (``session.JobSession`` decodes them)


def progress_text(step: int, total: int) -> str:
    """``Step 3/20``; ``Generating …`` before the first step."""
    return f"Step {min(step, total)}/{total}" if total > 0 else "Generating …"


class JobState(str, Enum):
    """Where one job is; only ``Tracker`` (its reducer) moves it."""

    SENDING = "sending"  # planned, not yet on a connection
    QUEUED = "queued"
    RUNNING = "running"
    DETACHED = "detached"  # its connection dropped; the server keeps it until the host resumes it
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # the plain value in text and records, as before it was an enum
        return self.value


FINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


@dataclass
class Tracker:
    """The state of one job as its events arrive; ``update`` returns what the host should do, or None.

    ``state``, ``kept`` and ``cancel_requested`` change only through the methods below."""

    job: str
    labels: dict[str, str] = field(default_factory=dict)  # wire field -> host label, for error sentences
    kept: bool = False  # submitted with keep_result: survives a dropped connection
    cancel_requested: bool = False
    position: int = 0
    step: int = 0
    total: int = 0
    region: Rect | None = None
    resumed: bool = False
    _state: JobState = field(default=JobState.SENDING, init=False, repr=False)

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in FINAL

    @property
    def detached(self) -> bool:
        """Its connection dropped; the server keeps it until the host resumes it."""
        return self._state is JobState.DETACHED

    def resuming(self) -> Status:
        self._state, self.resumed = JobState.QUEUED, True
        return Status("Resuming the job after the connection was lost …")

    def sent(self, kept: bool = False) -> Status:
        self._state, self.kept = JobState.QUEUED, kept
        return Status("Sent; waiting for the server")

    def request_cancel(self) -> None:
        """The host asked the server to cancel: previews stop, a dropped link no longer keeps the job."""
        self.cancel_requested = True

    def fail(self, text: str) -> Finished:
        self._state = JobState.FAILED
        return Finished(JobState.FAILED, text)

    def cancel(self) -> Finished:
        """Cancelled without the server (not sent yet, or detached)."""
        self._state = JobState.CANCELLED
        return Finished(JobState.CANCELLED, "Cancelled")

    def update(self, event: object) -> Status | Preview | Finished | None:
        if self.finished or getattr(event, "job", None) != self.job:
            return None
        if isinstance(event, messages.Queued):
            self._state, self.position = JobState.QUEUED, event.position
            return Status(f"Queued (position {event.position + 1})" if event.position else "Queued")
        if isinstance(event, messages.Started):
            self._state = JobState.RUNNING
            if event.width and event.height:
                self.region = Rect(event.x, event.y, event.width, event.height)
            return Status(progress_text(0, 0))
        if isinstance(event, messages.Progress):
            self._state, self.step, self.total = JobState.RUNNING, min(event.step, event.total), event.total
            prefix = "Cancelling … " if self.cancel_requested else ""
            return Status(prefix + progress_text(self.step, self.total), self.step, self.total)
        if isinstance(event, connection.PreviewReceived):
            return None if self.cancel_requested else Preview(event.frame, self.region)
        if isinstance(event, connection.ResultReceived):
            self._state = JobState.DONE
            return Finished(JobState.DONE, "", event.result, tuple(event.frames))
        if isinstance(event, messages.Error):
            if event.code == errors.CONNECTION_LOST and self.kept and not self.cancel_requested:
                self._state = JobState.DETACHED
                return Status("Connection lost: the server keeps the job; reconnecting …")
            if event.code == errors.UNKNOWN_JOB and self.resumed:
                return self.fail(LOST_TEXT)
            return self.fail(explain(event.code, event.message, self.labels))
        if isinstance(event, messages.Cancelled):
            return self.cancel()
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


__all__ = ["FINAL", "Finished", "JobState", "Preview", "RegionError", "ResultImage", "Status", "Tracker",
           "decode_results", "progress_text"]
