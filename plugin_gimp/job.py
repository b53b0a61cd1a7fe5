"""One Underpaint job from request to result, independent of GIMP: a one-job adapter of the shared
``core.session.JobSession`` (submit, checks, events, results, resume and reconnect are the session's).

The protocol client works on its own threads and drops every event into a queue; the host's main
thread calls ``JobRunner.step()`` (from a GLib timeout in GIMP) which hands queued events to the session and
calls the ``JobSink`` - so every host call happens on the main thread.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._protocol import client as pclient
from ._protocol import core, errors, messages, pixels, vocabulary
from .params import OUTPAINT, JobParams
from .pixels import PixelSpec

Plan = core.regions.Plan
JobRequest = core.request.JobRequest

CLIENT_NAME = "underpaint-gimp"
CLIENT_VERSION = "0.1.0"
PREVIEW_MAX_SIZE = 256
# the preview pixels this host shows: RGB(A) and gray(+alpha), 8 or 16 bits, in their channel order
PREVIEW_FORMATS = tuple(name for name, f in vocabulary.PIXEL_FORMATS.items()
                        if f.layout in ("RGBA", "RGB", "YA", "Y") and f.dtype in ("|u1", "<u2"))
PREVIEW_ENCODINGS = vocabulary.IMAGE_ENCODINGS  # what ``pixels.decode_pixels`` reads (no jpeg/webp in GIMP)
FEATURES = core.params.client_features(resume=True, lora=True)  # previews come raw/zlib: GIMP shows no jpeg/webp frames
IDENTITY = core.session.Identity(CLIENT_NAME, CLIENT_VERSION, FEATURES)
# wire field names as the dialog labels them (for the error sentences)
LABELS = {"steps": "Steps", "batch": "Images", "guidance": "Guidance", "strength": "Strength", "seed": "Seed",
          "negative_prompt": "Negative prompt", "prompt": "Prompt", "model": "Model", "sampler": "Sampler"}


class JobFailed(Exception):
    """The job did not produce a result; the message is meant for the user."""


class JobSink(Protocol):
    def status(self, text: str) -> None: ...
    def progress(self, fraction: float) -> None: ...
    def preview(self, frame: Any, pixels: bytes) -> None: ...


@dataclass(frozen=True)
class Image:
    """One result image: its protocol frame, raw little-endian pixels and the seed that made it."""

    frame: Any
    pixels: bytes
    seed: int | None


@dataclass(frozen=True)
class Outcome:
    images: tuple[Image, ...]  # one per requested image (batch), in the server's order
    model: str | None

    @property
    def frame(self) -> Any:
        return self.images[0].frame

    @property
    def pixels(self) -> bytes:
        return self.images[0].pixels

    @property
    def seed(self) -> int | None:
        return self.images[0].seed


def plan_request(params: JobParams, plan: Plan, result_plan: Plan, spec: PixelSpec, image: bytes,
                 mask: bytes | None, previews: bool = True) -> JobRequest:
    """The host-neutral request of a run: results come back in the host's own pixel format."""
    # The selection's grey levels are the feathering: the server must not grow or feather it again.
    # Expand canvas has no selection: the feather is the width of the soft seam into the old image.
    seam = int(vocabulary.FEATHER.default) if params.kind == OUTPAINT else 0
    return JobRequest(
        plan=plan, pixel_format=spec.wire_format, image=image, mask=mask, prompt=params.prompt,
        negative_prompt=params.negative_prompt, model=params.model, strength=params.strength, steps=params.steps,
        guidance=params.guidance, seed=params.seed, sampler=params.sampler, batch=params.batch,
        loras=core.params.loras(params.loras), resolution=params.resolution,
        inpaint=messages.InpaintOptions(feather=seam, grow=0, context=params.context),
        previews=core.request.Previews(enabled=previews, max_size=PREVIEW_MAX_SIZE),
        result_plan=result_plan if result_plan != plan else None,
        **core.request.kind_options(params.kind, params.option_values()))


def describe_error(code: str, message: str) -> str:
    """A sentence for the user from a protocol error; the raw code is never shown."""
    return core.sentences.explain(code, message, LABELS)


class JobRunner:
    """Connect, submit, follow one job. Call ``start()`` once, then ``step()`` until it returns True."""

    def __init__(self, url: str, token: str | None, request: JobRequest, sink: JobSink, idle_timeout: float = 300.0,
                 client_factory: Callable[..., Any] = pclient.Client, clock: Callable[[], float] = time.monotonic,
                 transfer: str = core.transfer.DEFAULT_MODE, job_id: str | None = None) -> None:
        self.url, self.request, self.sink = url, request, sink
        self.idle_timeout, self.clock, self.job_id = idle_timeout, clock, job_id
        self.events: queue.Queue[object] = queue.Queue()
        self.session = core.session.JobSession(url, token, IDENTITY, self.events.put, client_factory, LABELS,
                                               transfer, clock=clock)
        self.job: core.session.SessionJob | None = None
        self.outcome: Outcome | None = None
        self.error: str | None = None
        self._last_event = 0.0
        self._cancelled = False

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.error is not None

    @property
    def client(self) -> Any:
        return self.session.client

    def start(self) -> None:
        self._last_event = self.clock()
        self.job, out = self.session.submit(self.request, job_id=self.job_id)  # connects; checked once connected
        self._apply(out)

    def step(self, wait: float = 0.0) -> bool:
        """Handle every queued event (waiting up to ``wait`` s for the first); True once finished."""
        try:
            event = self.events.get(timeout=wait) if wait > 0 else self.events.get_nowait()
        except queue.Empty:
            event = None
        if not self.done:
            retried = self.session.poll()
            if retried:
                self._last_event = self.clock()
            self._apply(retried)
        while event is not None and not self.done:
            self._last_event = self.clock()
            self._apply(self.session.handle(event))
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        if not self.done and self.session.retry_at is None and self.clock() - self._last_event > self.idle_timeout:
            self._fail(f"The server at {self.url} sent nothing for {self.idle_timeout:g} s; giving up.")
        if self.done:
            self.close()
        return self.done

    def result(self) -> Outcome:
        """The outcome of a finished job; raises JobFailed with the user-facing reason otherwise."""
        if self.outcome is not None:
            return self.outcome
        raise JobFailed(self.error or "The job has not finished.")

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Cancel on the server (when submitted) and finish as cancelled; safe from any main-loop callback."""
        if self.done:
            return
        if self.job is not None:
            self.session.cancel(self.job.id)
        self._cancelled = True
        self.error = "Cancelled."
        self.close()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ session outputs (main thread)
    def _fail(self, message: str) -> None:
        if not self.done:
            self.error = message

    def _apply(self, out: list) -> None:
        for item in out:
            if isinstance(item, core.session.Note):
                self.sink.status(item.text)
                if item.from_server:  # a connection-wide error ends the one job of this run
                    self._fail(item.text)
                continue
            update = item.update
            if isinstance(update, core.jobs.Status):
                self.sink.status(update.text)
                if item.job.state is core.jobs.JobState.RUNNING:
                    self.sink.progress(update.step / update.total if update.total else 0.0)
            elif isinstance(update, core.jobs.Preview):
                self._preview(update.frame)
            elif update.state == core.jobs.JobState.DONE:
                self._result(update)
            else:
                self._fail("The server cancelled the job." if update.state == core.jobs.JobState.CANCELLED
                           else update.text)

    def _preview(self, frame: Any) -> None:
        if frame.pixel_format not in PREVIEW_FORMATS or frame.encoding not in PREVIEW_ENCODINGS:
            return  # a format this host does not show: skip the preview, keep the job
        try:
            data = pixels.decode_pixels(frame)
        except errors.ProtocolError:
            return
        self.sink.preview(frame, data)

    def _result(self, update: core.jobs.Finished) -> None:
        images = [Image(frame, d.pixels, d.seed) for frame, d in zip(update.frames, update.images, strict=True)]
        model = self.request.model
        if model is None and self.session.welcome is not None:
            model = self.session.welcome.defaults.model
        self.outcome = Outcome(tuple(images), model)


def fetch_welcome(url: str, token: str | None, timeout: float = 3.0,
                  client_factory: Callable[..., Any] = pclient.Client) -> Any:
    """The server's welcome (models, defaults, limits) for the dialog, or None when it does not answer."""
    client = client_factory(url, token=token, client_name=CLIENT_NAME, client_version=CLIENT_VERSION,
                            open_timeout=timeout)
    try:
        client.connect()
        return client.wait_connected(timeout=timeout)
    except (errors.ProtocolError, OSError):
        return None
    finally:
        client.close()
