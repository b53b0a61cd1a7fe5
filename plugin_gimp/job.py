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
from ._protocol import connection, errors, frames, messages, pixels
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
class Outcome:
    frame: Any  # protocol Frame of the result
    pixels: bytes  # raw little-endian pixels in the requested format
    seed: int | None
    model: str | None


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


def describe_error(code: str, message: str) -> str:
    """A sentence for the user from a protocol error."""
    if code == errors.CONNECTION_FAILED:
        return f"Cannot reach the Underpaint server. Is it running? ({message})"
    if code == errors.BAD_TOKEN:
        return f"The server refused the access token: {message}"
    if code == errors.UNKNOWN_MODEL:
        return f"The server does not know that model: {message}"
    return f"Underpaint server error ({code}): {message}"


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
            self.sink.status("Generating")
            self.sink.progress(0.0)
        elif isinstance(event, messages.Progress):
            if event.total > 0:
                self.sink.status(f"Step {event.step} of {event.total}")
                self.sink.progress(min(1.0, event.step / event.total))
        elif isinstance(event, messages.Cancelled):
            self._fail("The server cancelled the job.")
        elif isinstance(event, connection.PreviewReceived):
            self._preview(event.frame)
        elif isinstance(event, connection.ResultReceived):
            self._result(event)

    def _submit(self) -> None:
        self.sink.status("Sending the image")
        try:
            self.client.submit(self.submit_msg, self.image, self.mask)
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
        frame = event.frames[0]
        want = self.submit_msg.result_format
        if frame.pixel_format != want:
            self._fail(f"The server returned {frame.pixel_format} pixels but {want} was requested.")
            return
        try:
            check_result_region(self.plan, frame.x, frame.y, frame.width, frame.height)
            data = pixels.decode_pixels(frame)
        except (ValueError, errors.ProtocolError) as exc:
            self._fail(str(exc))
            return
        if len(data) != frame.width * frame.height * frames.BYTES_PER_PIXEL[want]:
            self._fail("The result image has the wrong number of bytes.")
            return
        seeds = event.result.seeds
        model = self.submit_msg.model
        if model is None and self.welcome is not None:
            model = self.welcome.defaults.model
        self.outcome = Outcome(frame, data, seeds[0] if seeds else self.submit_msg.seed, model)
