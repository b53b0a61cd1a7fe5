"""One Underpaint job from request to result, independent of GIMP.

The protocol client works on its own threads and drops every event into a queue; the host's main
thread calls ``JobRunner.step()`` (from a GLib timeout in GIMP) which handles queued events and calls
the ``JobSink`` - so every host call happens on the main thread.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ._protocol import client as pclient
from ._protocol import core, errors, messages, pixels, vocabulary
from .params import INPAINT, JobParams
from .pixels import MASK_FORMAT, PixelSpec

Plan = core.regions.Plan

CLIENT_NAME = "underpaint-gimp"
CLIENT_VERSION = "0.1.0"
PREVIEW_MAX_SIZE = 256
PREVIEW_FORMATS = ("rgba8", "rgb8", "graya8", "gray8", "rgba16", "graya16", "gray16")
FEATURES = core.params.client_features(resume=True, lora=True)  # previews come raw/zlib: GIMP shows no jpeg/webp frames
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


def encodings(url: str, transfer: str = core.transfer.DEFAULT_MODE) -> Any:
    """How a job's pixels travel to ``url`` (``core.transfer``: raw on loopback, zlib to a remote server)."""
    return core.transfer.choose(transfer, url, native_png=False)


LEGACY = core.transfer.Encodings("zlib", "zlib", "zlib", ("raw",))  # without a server URL: zlib, raw previews


def build_submit(job: str, params: JobParams, spec: PixelSpec, previews: bool = True, enc: Any = None) -> Any:
    """The protocol ``Submit`` for a run: results come back in the host's own pixel format."""
    enc = enc or LEGACY
    preview = messages.PreviewOptions(enabled=previews, max_size=PREVIEW_MAX_SIZE, encoding=enc.preview[0],
                                      min_interval_ms=200)
    # The selection's grey levels are the feathering: the server must not grow or feather it again.
    # Expand canvas has no selection: the feather is the width of the soft seam into the old image.
    seam = int(vocabulary.FEATHER.default) if params.kind == "outpaint" else 0
    inpaint = messages.InpaintOptions(feather=seam, grow=0, context=params.context)
    extra = {"upscale": messages.UpscaleOptions(**params.upscale_fields())} if params.kind == "upscale" else {}
    loras = tuple(messages.LoraChoice(id=i, weight=w) for i, w in core.params.loras(params.loras))
    return messages.Submit(job=job, **params.submit_fields(), preview=preview, inpaint=inpaint,
                           result_format=spec.wire_format, result_encoding=enc.result, loras=loras, **extra)


def build_frames(job: str, plan: Plan, spec: PixelSpec, image: bytes, mask: bytes | None,
                 enc: Any = None) -> tuple[Any, Any]:
    """Image frame (and inpaint mask frame) of ``plan.region`` in ``enc``, at document offsets."""
    r = plan.region
    enc = enc or LEGACY
    image_enc, mask_enc = ("zlib" if enc.image == "png" else enc.image), enc.mask
    image_frame = pixels.make_frame(job, "image", image, r.width, r.height, spec.wire_format, image_enc, r.x,
                                    r.y)
    mask_frame = None
    if plan.kind == INPAINT:
        if mask is None:
            raise JobFailed("Inpaint needs the selection mask.")
        mask_frame = pixels.make_frame(job, "mask", mask, r.width, r.height, MASK_FORMAT, mask_enc, r.x, r.y)
    return image_frame, mask_frame


def describe_error(code: str, message: str) -> str:
    """A sentence for the user from a protocol error; the raw code is never shown."""
    return core.sentences.explain(code, message, LABELS)


def server_problem(welcome: Any, submit: Any, pixels: int) -> str | None:
    """Why this server would refuse ``submit`` (its limits, models, kinds, samplers), or None."""
    offer = core.params.offer(welcome.features, FEATURES)
    problem = (core.params.limit_problem(welcome.limits, submit.steps, submit.batch, pixels)
               or core.params.model_problem(welcome, submit.model)
               or core.params.kind_problem(offer.kinds, submit.kind))
    if problem is None and submit.resolution != "auto" and not offer.tiled:
        problem = ("This server cannot refine at full resolution or choose the fit (it has no tiled refine): "
                   "set the resolution to auto, or update the server.")
    if problem is None and submit.sampler not in offer.samplers:
        problem = (f"This server does not offer the sampler {submit.sampler!r} (it offers "
                   f"{', '.join(offer.samplers)}): pick another sampler.")
    chosen = [(lora.id, lora.weight) for lora in submit.loras]
    if problem is None and chosen and not offer.lora:
        problem = "This server offers no LoRAs: clear the LoRAs field (or update the server)."
    return problem or core.params.lora_problem(welcome, chosen, submit.model)


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
        self.track = core.jobs.Tracker(submit.job, labels=dict(LABELS))
        self.backoff = core.reconnect.Backoff(clock=clock)  # reconnects after a dropped link (kept job)
        self._retry_at: float | None = None
        self._resume_key: str | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.error is not None

    def start(self) -> None:
        self.sink.status(f"Connecting to {self.url}")
        self._connect()

    def _connect(self) -> None:
        self._last_event = self.clock()
        self.client = self.client_factory(self.url, token=self.token, client_name=CLIENT_NAME,
                                          client_version=CLIENT_VERSION, on_event=self.events.put,
                                          features=FEATURES)
        self.client.connect()

    def step(self, wait: float = 0.0) -> bool:
        """Handle every queued event (waiting up to ``wait`` s for the first); True once finished."""
        try:
            event = self.events.get(timeout=wait) if wait > 0 else self.events.get_nowait()
        except queue.Empty:
            event = None
        if self._retry_at is not None and self.clock() >= self._retry_at and not self.done:
            self._retry_at = None
            self._connect()
        while event is not None and not self.done:
            self._last_event = self.clock()
            self._handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        if not self.done and self._retry_at is None and self.clock() - self._last_event > self.idle_timeout:
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
        if self.client is not None and self._submitted and not self.track.detached:
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

    @property
    def total(self) -> int:
        """The denoising steps that really run (from ``progress``); 0 before the first step."""
        return self.track.total

    def _handle(self, event: object) -> None:
        if isinstance(event, pclient.Connected) and self.track.detached:
            self.backoff.reset()
            self.client.resume(self.submit_msg.job, self._resume_key)
            self.sink.status(self.track.resuming().text)
            return
        if isinstance(event, pclient.Connected):
            self.welcome = event.welcome
            r = self.plan.region
            problem = server_problem(event.welcome, self.submit_msg, r.width * r.height)
            if problem:
                self._fail(problem)
            else:
                self._submit()
            return
        if isinstance(event, pclient.Disconnected):
            err = event.error
            if err is not None and self.track.detached:
                self._reconnect_later()
                return
            self._fail(describe_error(err.code, err.message) if err else "The connection was closed.")
            return
        if isinstance(event, messages.Error) and event.job is None:
            self._fail(describe_error(event.code, event.message))
            return
        update = self.track.update(event)
        if isinstance(update, core.jobs.Status):
            self.sink.status(update.text)
            if self.track.state == "running":
                self.sink.progress(update.step / update.total if update.total else 0.0)
        elif isinstance(update, core.jobs.Preview):
            self._preview(update.frame)
        elif isinstance(update, core.jobs.Finished) and update.state == "done":
            self._result(update.result, update.frames)
        elif isinstance(update, core.jobs.Finished):
            self._fail("The server cancelled the job." if update.state == "cancelled" else update.text)

    def _reconnect_later(self) -> None:
        """The link dropped while the server keeps the job: try again after the shared backoff, or give up."""
        self._resume_key = getattr(self.client, "resume_keys", {}).get(self.submit_msg.job) or self._resume_key
        first = not self.backoff.active
        delay = self.backoff.next_delay()
        if delay is None:
            self._fail(core.reconnect.gave_up_text(self.url, self.backoff.budget))
            return
        self._retry_at = self.clock() + delay
        if first:
            self.sink.status(core.reconnect.reconnecting_text(self.url, 1))

    def _submit(self) -> None:
        self.sink.status("Sending the image")
        if core.params.offer(self.welcome.features, FEATURES).resume:
            self.submit_msg = dataclasses.replace(self.submit_msg, keep_result=True)
            self.track.kept = True
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

    def _result(self, result: Any, frames: tuple) -> None:
        try:
            decoded = core.jobs.decode_results(self.plan, self.submit_msg.result_format, result, frames,
                                               self.submit_msg.seed)
        except ValueError as exc:
            self._fail(str(exc))
            return
        images = [Image(frame, d.pixels, d.seed) for frame, d in zip(frames, decoded, strict=True)]
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
