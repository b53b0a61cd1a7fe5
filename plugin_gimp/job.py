"""One Underpaint job from request to result, independent of GIMP.

The protocol client works on its own threads and drops every event into a queue; the host's main
thread calls ``JobRunner.step()`` (from a GLib timeout in GIMP) which handles queued events and calls
the ``JobSink`` - so every host call happens on the main thread.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._protocol import client as pclient
from ._protocol import connection, errors, messages, pixels, vocabulary
from .params import INPAINT, JobParams
from .pixels import MASK_FORMAT, PixelSpec
from .region import Plan, check_result_region

CLIENT_NAME = "underpaint-gimp"
CLIENT_VERSION = "0.1.0"
PREVIEW_MAX_SIZE = 256
PREVIEW_FORMATS = ("rgba8", "rgb8", "graya8", "gray8", "rgba16", "graya16", "gray16")


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


def build_submit(job: str, params: JobParams, spec: PixelSpec, previews: bool = True) -> Any:
    """The protocol ``Submit`` for a run: results come back in the host's own pixel format."""
    preview = messages.PreviewOptions(enabled=previews, max_size=PREVIEW_MAX_SIZE, encoding="raw",
                                      min_interval_ms=200)
    # The selection's grey levels are the feathering: the server must not grow or feather it again.
    inpaint = messages.InpaintOptions(feather=0, grow=0, context=params.context)
    return messages.Submit(job=job, **params.submit_fields(), preview=preview, inpaint=inpaint,
                           result_format=spec.wire_format, result_encoding="zlib")


def build_frames(job: str, plan: Plan, spec: PixelSpec, image: bytes, mask: bytes | None) -> tuple[Any, Any]:
    """Image frame (and inpaint mask frame) of ``plan.region``, zlib-compressed, at document offsets."""
    r = plan.region
    image_frame = pixels.make_frame(job, "image", image, r.width, r.height, spec.wire_format, "zlib", r.x,
                                    r.y)
    mask_frame = None
    if plan.kind == INPAINT:
        if mask is None:
            raise JobFailed("Inpaint needs the selection mask.")
        mask_frame = pixels.make_frame(job, "mask", mask, r.width, r.height, MASK_FORMAT, "zlib", r.x, r.y)
    return image_frame, mask_frame


_ERROR_SENTENCES = {
    errors.CONNECTION_FAILED: "Cannot reach the Underpaint server. Is it running, and is the server URL right?",
    errors.CONNECTION_LOST: "The connection to the Underpaint server was lost.",
    errors.BAD_TOKEN: "The server refused the access token: check the Token field.",
    errors.FORBIDDEN_ORIGIN: "The server refused this client.",
    errors.INCOMPATIBLE_VERSION: "The plug-in and the server speak different protocol versions: update both.",
    errors.UNKNOWN_MODEL: "The server does not know that model: pick one of the server's models.",
    errors.OUT_OF_RANGE: "A value is outside what the server accepts.",
    errors.TOO_LARGE: "The image is too large for the server: select a smaller area.",
    errors.QUEUE_FULL: "The server's queue is full: try again when its running jobs are done.",
    errors.EMPTY_MASK: "The selection is empty: select the area to repaint.",
    errors.OUT_OF_MEMORY: "The server ran out of memory: use a smaller area, fewer images or fewer steps.",
    errors.MODEL_LOAD_FAILED: "The server could not load the model.",
    errors.UNSUPPORTED: "The server does not support this request.",
    errors.INTERNAL: "The server failed with an internal error.",
    errors.CANCELLED: "The job was cancelled.",
}


def describe_error(code: str, message: str) -> str:
    """A sentence for the user from a protocol error; the raw code is never shown."""
    detail = " ".join(str(message).split())
    sentence = _ERROR_SENTENCES.get(code, "The Underpaint server refused the job.")
    return f"{sentence} ({detail})" if detail else sentence


def limit_problem(submit: Any, limits: Any, pixels: int) -> str | None:
    """Why ``submit`` breaks the server's ``welcome.limits`` (a sentence), or None when it fits."""
    if submit.steps > limits.max_steps:
        return (f"This server allows at most {limits.max_steps} steps, but Steps is {submit.steps}: "
                "lower Steps and run again.")
    if submit.batch > limits.max_batch:
        return (f"This server makes at most {limits.max_batch} images per run, but Images is {submit.batch}: "
                "lower Images and run again.")
    if pixels > limits.max_pixels:
        return (f"The area is {pixels:,} pixels but this server accepts at most {limits.max_pixels:,}: "
                "select a smaller area.")
    return None


class JobRunner:
    """Connect, submit, follow one job. Call ``start()`` once, then ``step()`` until it returns True."""

    def __init__(self, url: str, token: str | None, submit: Any, image: Any, mask: Any, plan: Plan,
                 sink: JobSink, idle_timeout: float = 300.0,
                 client_factory: Callable[..., Any] = pclient.Client,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.token = url, token
        self.submit_msg, self.image, self.mask, self.plan = submit, image, mask, plan
        self.sink = sink
        self.idle_timeout = idle_timeout
        self.client_factory = client_factory
        self.clock = clock
        self.events: queue.Queue[object] = queue.Queue()
        self.client: Any = None
        self.outcome: Outcome | None = None
        self.error: str | None = None
        self.welcome: Any = None
        self._last_event = 0.0
        self._submitted = False
        self._cancelled = False
        self.total = 0  # denoising steps that will run, from started/progress; 0 = unknown

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.error is not None

    def start(self) -> None:
        self.sink.status(f"Connecting to {self.url}")
        self._last_event = self.clock()
        self.client = self.client_factory(self.url, token=self.token, client_name=CLIENT_NAME,
                                          client_version=CLIENT_VERSION, on_event=self.events.put)
        self.client.connect()

    def step(self, wait: float = 0.0) -> bool:
        """Handle every queued event (waiting up to ``wait`` s for the first); True once finished."""
        try:
            event = self.events.get(timeout=wait) if wait > 0 else self.events.get_nowait()
        except queue.Empty:
            event = None
        while event is not None and not self.done:
            self._last_event = self.clock()
            self._handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        if not self.done and self.clock() - self._last_event > self.idle_timeout:
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
        if self.client is not None and self._submitted:
            self.client.cancel(self.submit_msg.job)
        self._cancelled = True
        self.error = "Cancelled."
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    # ------------------------------------------------------------------ events (main thread)
    def _fail(self, message: str) -> None:
        if not self.done:
            self.error = message

    def _handle(self, event: object) -> None:
        job = self.submit_msg.job
        if isinstance(event, pclient.Connected):
            self.welcome = event.welcome
            r = self.plan.region
            problem = limit_problem(self.submit_msg, event.welcome.limits, r.width * r.height)
            if problem:
                self._fail(problem)
            else:
                self._submit()
        elif isinstance(event, pclient.Disconnected):
            err = event.error
            self._fail(describe_error(err.code, err.message) if err else "The connection was closed.")
        elif isinstance(event, messages.Error):
            if event.job in (None, job):
                self._fail(describe_error(event.code, event.message))
        elif getattr(event, "job", None) != job:
            return
        elif isinstance(event, messages.Queued):
            self.sink.status(f"Waiting in the server queue (position {event.position + 1})")
        elif isinstance(event, messages.Started):
            self._step(0, 0)
        elif isinstance(event, messages.Progress):
            self._step(event.step, event.total)
        elif isinstance(event, messages.Cancelled):
            self._fail("The server cancelled the job.")
        elif isinstance(event, connection.PreviewReceived):
            self._preview(event.frame)
        elif isinstance(event, connection.ResultReceived):
            self._result(event)

    def _step(self, step: int, total: int) -> None:
        """Report step/total; the total is the steps that will really run (0 = not known yet)."""
        self.total = total if total > 0 else self.total
        if self.total > 0:
            step = min(step, self.total)
            self.sink.status(f"Step {step} of {self.total}")
            self.sink.progress(step / self.total)
        else:
            self.sink.status(f"Generating (step {step})" if step else "Generating")
            self.sink.progress(0.0)

    def _submit(self) -> None:
        self.sink.status("Sending the image")
        try:
            self.client.submit(self.submit_msg, {"image": self.image, "mask": self.mask})
        except errors.ProtocolError as exc:
            self._fail(describe_error(exc.code, exc.message))
            return
        self._submitted = True

    def _preview(self, frame: Any) -> None:
        if frame.pixel_format not in PREVIEW_FORMATS or frame.encoding not in ("raw", "zlib", "png"):
            return  # a format this host does not show: skip the preview, keep the job
        try:
            data = pixels.decode_pixels(frame)
        except errors.ProtocolError:
            return
        self.sink.preview(frame, data)

    def _result(self, event: Any) -> None:
        if not event.frames:
            self._fail("The server finished without a result image.")
            return
        want = self.submit_msg.result_format
        seeds = event.result.seeds
        images = []
        for index, frame in enumerate(event.frames):
            if frame.pixel_format != want:
                self._fail(f"The server returned {frame.pixel_format} pixels but {want} was requested.")
                return
            try:
                check_result_region(self.plan, frame.x, frame.y, frame.width, frame.height)
                data = pixels.decode_pixels(frame)
            except (ValueError, errors.ProtocolError) as exc:
                self._fail(str(exc))
                return
            if len(data) != frame.width * frame.height * vocabulary.BYTES_PER_PIXEL[want]:
                self._fail("The result image has the wrong number of bytes.")
                return
            seed = seeds[index] if index < len(seeds) else (self.submit_msg.seed if index == 0 else None)
            images.append(Image(frame, data, seed))
        model = self.submit_msg.model
        if model is None and self.welcome is not None:
            model = self.welcome.defaults.model
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
