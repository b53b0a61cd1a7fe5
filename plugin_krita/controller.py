"""Orchestration of jobs between documents and the server, independent of Krita and Qt.

Runs on the host's GUI thread only. The threaded protocol client calls ``post`` on its own thread; the host
must deliver each posted event to ``Controller.handle`` on the GUI thread (Krita: a queued Qt signal).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import canvas_jobs
from .jobs import LABELS, Capture, Job, JobBook, UserError
from .params import GenerationParams, ParamsError
from .pixels import UnsupportedDocument
from .proto import client as pclient
from .proto import core, errors, frames, messages
from .results import ResultImage, result_images
from .settings import Settings
from .transfer import PREVIEW_ENCODINGS, wire_job

CLIENT_NAME = "underpaint-krita"
PLUGIN_VERSION = "0.1.0"
# live: plugin_krita/live.py
FEATURES = core.params.client_features(PREVIEW_ENCODINGS, resume=True, live=True, lora=True)
_explain = core.sentences.explain


class HostDocument(Protocol):
    """What the controller needs from one open document (Krita: ``document.KritaDocument``)."""

    key: int
    name: str

    def is_open(self) -> bool: ...

    def capture(self, params: GenerationParams, settings: Settings) -> Capture: ...

    def show_preview(self, job: Job, frame: frames.Frame) -> None: ...

    def clear_preview(self, job: Job) -> None: ...

    def add_results(self, job: Job, images: list[ResultImage]) -> list[str]: ...


@dataclass(frozen=True)
class Tagged:
    """A client event with the connection it came from (what ``post`` receives)."""

    generation: int
    event: object


@dataclass(frozen=True)
class Retry:
    """Time for the next reconnect attempt (posted by a timer thread, tagged with its connection)."""


@dataclass(frozen=True)
class Status:
    connection: str  # disconnected | connecting | connected
    server: str  # "device, version" once connected
    message: str
    error: bool
    progress: tuple[int, int] | None  # (step, total) of the running job, step <= total; None: unknown
    jobs: int
    limits: messages.Limits | None = None  # the server's, once connected


class Controller:
    def __init__(self, settings: Settings, post: Callable[[object], None],
                 make_client: Callable[..., Any] = pclient.Client, client_version: str = "") -> None:
        self.settings = settings
        self._post = post
        self._make_client = make_client
        self._client_version = client_version
        self._client: Any = None
        self._generation = 0
        self.connection = "disconnected"
        self.welcome: messages.Welcome | None = None
        self.jobs = JobBook()
        self.docs: dict[int, HostDocument] = {}
        self._waiting: list[str] = []  # ids of jobs captured before the connection was ready
        self._resuming: dict[str, str | None] = {}  # kept jobs to re-attach once reconnected -> resume key
        self._backoff = core.reconnect.Backoff()  # the reconnect episode after a dropped connection
        self.message, self.error = "Not connected", False
        self.last_seed: int | None = None
        self.listeners: list[Callable[[Status], None]] = []

    # ---------------------------------------------------------------- state for the UI
    def status(self) -> Status:
        running = self.jobs.running()
        progress = (running.track.step, running.track.total) if running and running.track.total else None
        server = ""
        if self.welcome is not None:
            w = self.welcome
            default = next((m.name for m in w.models if m.id == w.defaults.model), w.defaults.model)
            where = self._client.url if self._client is not None else self.settings.server_url
            server = f"{where} · {w.device} · server {w.server_version} · default model {default}"
        return Status(self.connection, server, self.message, self.error, progress, len(self.jobs), self.limits())

    @property
    def client(self) -> Any:
        """The protocol client of the current connection (None while disconnected); live painting shares it."""
        return self._client

    def models(self) -> list[messages.ModelInfo]:
        return list(self.welcome.models) if self.welcome else []

    def report(self, message: str, error: bool = True) -> None:
        """Show a message in every docker's status line."""
        self._notify(message, error)

    def _notify(self, message: str | None = None, error: bool = False) -> None:
        if message is not None:
            self.message, self.error = message, error
        status = self.status()
        for listener in list(self.listeners):
            try:
                listener(status)
            except RuntimeError:  # its widget is gone (window closed)
                self.listeners.remove(listener)

    # ---------------------------------------------------------------- connection
    def apply_settings(self, settings: Settings) -> None:
        """Use new settings; a changed server or token drops the connection (jobs in flight fail)."""
        old, self.settings = self.settings, settings
        if (old.server_url, old.token) != (settings.server_url, settings.token) and self._client is not None:
            self.disconnect()

    def connect(self) -> None:
        if self.connection != "disconnected":
            return
        self._generation += 1
        generation = self._generation
        self._client = self._make_client(self.settings.server_url, token=self.settings.token or None,
                                         client_name=CLIENT_NAME, client_version=self._client_version,
                                         features=FEATURES,
                                         on_event=lambda event: self._post(Tagged(generation, event)))
        self.connection = "connecting"
        if not self._backoff.active:  # reconnect attempts are announced once (``_on_disconnected``)
            self._notify(f"Connecting to {self._client.url} …")
        self._client.connect()

    def disconnect(self) -> None:
        """Close the connection; jobs in flight fail now, late events of the old connection are ignored."""
        client, self._client = self._client, None
        self._generation += 1
        if client is not None:
            client.close()
        self.connection, self.welcome, self._resuming = "disconnected", None, {}
        self._backoff.reset()
        self._fail_waiting("Disconnected before the job was sent.")
        for job in self.jobs.all():
            self._finish(job, "failed", "Disconnected: the job was dropped.", error=True)
        self._notify("Disconnected")

    # ---------------------------------------------------------------- jobs
    def generate(self, doc: HostDocument, params: GenerationParams) -> str:
        """Capture the document now and send (or queue until connected) one job; returns its id.

        Raises UserError with a message for the painter (also shown in the status line).
        """
        try:
            job = self._prepare(doc, params)
        except (UserError, ParamsError, UnsupportedDocument, ValueError) as exc:
            self._notify(str(exc), error=True)
            raise UserError(str(exc)) from exc
        self.docs[doc.key] = doc
        self.jobs.add(job)
        if self.connection == "connected":
            self._send(job)
        else:
            self._waiting.append(job.id)
            self.connect()
        self._notify()
        return job.id

    def _prepare(self, doc: HostDocument, params: GenerationParams) -> Job:
        params = params.validated()
        if self.welcome is not None:
            self._check_server(params)
        capture = doc.capture(params, self.settings)
        if self.welcome is not None:
            self._check_server(params, capture.kind)
            problem = canvas_jobs.limit_problem(capture, self.welcome.limits)
            if problem:
                raise UserError(problem)
        params = dataclasses.replace(params, seed=params.resolved_seed())
        return Job(pclient.new_job_id("krita"), doc.key, doc.name, capture, params)

    def limits(self) -> messages.Limits | None:
        """The connected server's limits (steps, images per job ...), None while not connected."""
        return self.welcome.limits if self.welcome is not None else None

    def offer(self) -> core.params.Offer:
        """What the docker may offer on this connection (every plugin kind while not connected)."""
        return core.params.offer(self.welcome.features if self.welcome else None, FEATURES)

    def _check_server(self, params: GenerationParams, kind: str | None = None) -> None:
        """Refuse, with a sentence, what this server would refuse: over its limits, a model or kind it lacks."""
        assert self.welcome is not None
        problem = (core.params.limit_problem(self.welcome.limits, params.steps, params.batch)
                   or core.params.model_problem(self.welcome, params.model)
                   or (kind and core.params.kind_problem(self.offer().kinds, kind)))
        chosen = core.params.loras(params.loras)
        if problem is None and chosen and not self.offer().lora:
            problem = "This server offers no LoRAs: clear the LoRAs field (or update the server)."
        problem = problem or core.params.lora_problem(self.welcome, chosen, params.model)
        if problem:
            raise UserError(problem)

    def _wire(self, job: Job) -> tuple[messages.Submit, dict[str, frames.Frame | tuple[frames.Frame, ...]]]:
        tile_side = getattr(self._client, "tile_side", 0) or pclient.DEFAULT_TILE_SIDE
        submit, inputs = wire_job(job, self.settings, self.offer(), self._client.url, tile_side)
        job.track.kept = submit.keep_result
        return submit, inputs

    def _send(self, job: Job) -> None:
        try:
            self._client.submit(*self._wire(job))
        except errors.ProtocolError as exc:
            self._finish(job, "failed", _explain(exc.code, exc.message, LABELS), error=True)
            return
        job.track.sent()
        self._notify(f"Sent {job.capture.kind} of {job.capture.region.width}x{job.capture.region.height} px")

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, []
        for job_id in waiting:
            job = self.jobs.get(job_id)
            if job is not None:
                self._finish(job, "failed", why, error=True)

    def cancel(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        if job_id in self._waiting or job.track.detached:  # nothing on a live connection to cancel
            self._waiting = [w for w in self._waiting if w != job_id]
            self._resuming.pop(job_id, None)
            self._finish(job, "cancelled", "Cancelled")
            return
        job.track.cancel_requested = True
        if self._client is not None:
            self._client.cancel(job_id)
        self._notify("Cancelling …")

    def cancel_all(self, doc_key: int | None = None) -> None:
        """Cancel the jobs of one document (``doc_key``), or of every document with None."""
        for job in self.jobs.all():
            if doc_key is None or job.doc_key == doc_key:
                self.cancel(job.id)

    def cancel_document(self, doc_key: int | None, name: str = "") -> None:
        """Cancel the jobs of one document only; say so when it has none (``doc_key`` None: no document)."""
        if doc_key is None or not self.jobs.for_document(doc_key):
            others = len(self.jobs)
            where = f"'{name}'" if name else "this document"
            self._notify(f"No jobs to cancel in {where}" + (f" ({others} job(s) of other documents keep running)"
                                                          if others else ""), error=False)
            return
        self.cancel_all(doc_key)

    def document_closed(self, doc_key: int) -> None:
        """Drop a closed document's jobs: cancel them on the server, ignore whatever still arrives."""
        dropped = self.jobs.for_document(doc_key)
        for job in dropped:
            self._waiting = [w for w in self._waiting if w != job.id]
            self._resuming.pop(job.id, None)
            if self._client is not None and job.state not in ("sending", "detached"):
                self._client.cancel(job.id)
            self.jobs.pop(job.id)
        doc = self.docs.pop(doc_key, None)
        if dropped:
            name = doc.name if doc is not None else dropped[0].doc_name
            self._notify(f"'{name}' was closed: cancelled {len(dropped)} job(s)")

    # ---------------------------------------------------------------- events (GUI thread)
    def handle(self, event: object) -> None:
        if isinstance(event, Tagged):
            if event.generation != self._generation:
                return  # from a connection that was closed since
            event = event.event
        if isinstance(event, Retry):
            if self.connection == "connecting" and self._client is None:
                self.connection = "disconnected"
                self.connect()
        elif isinstance(event, pclient.Connected):
            self._on_connected(event.welcome)
        elif isinstance(event, pclient.Disconnected):
            self._on_disconnected(event.error)
        elif isinstance(event, messages.Error) and not event.job:
            self._notify(_explain(event.code, event.message, LABELS), error=True)
        else:
            job = self.jobs.get(getattr(event, "job", None))
            if job is not None:  # events of dropped jobs (closed documents) are ignored
                self._on_job_event(job, event)

    def _on_connected(self, welcome: messages.Welcome) -> None:
        self.connection, self.welcome = "connected", welcome
        self._backoff.reset()
        self._notify(f"Connected: {welcome.device}")
        waiting, self._waiting = self._waiting, []
        for job_id in waiting:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            try:
                self._check_server(job.params, job.capture.kind)
            except UserError as exc:
                self._finish(job, "failed", str(exc), error=True)
                continue
            self._send(job)
        resuming, self._resuming = self._resuming, {}
        for job_id, key in resuming.items():
            job = self.jobs.get(job_id)
            if job is not None:
                self._client.resume(job_id, key)  # the key the old connection's client was given
                self._notify(job.track.resuming().text)

    def _on_disconnected(self, error: errors.ProtocolError | None) -> None:
        old, self._client, self.connection, self.welcome = self._client, None, "disconnected", None
        why = _explain(error.code, error.message, LABELS) if error else "Disconnected"
        # jobs the server keeps survive a dropped link: reconnect with backoff (shared policy) and resume them
        detached = [job for job in self.jobs.all() if job.track.detached] if error is not None else []
        if detached:
            keys = getattr(old, "resume_keys", {})  # a new client is made on reconnect: carry the keys over
            self._resuming = {job.id: keys.get(job.id) or self._resuming.get(job.id) for job in detached}
            first = not self._backoff.active
            delay = self._backoff.next_delay()
            url = getattr(old, "url", self.settings.server_url)
            if delay is not None:
                self.connection, generation = "connecting", self._generation
                timer = threading.Timer(delay, lambda: self._post(Tagged(generation, Retry())))
                timer.daemon = True
                timer.start()
                if first:
                    self._notify(core.reconnect.reconnecting_text(url, len(detached)), error=True)
                return
            why = core.reconnect.gave_up_text(url, self._backoff.budget)
        self._backoff.reset()
        self._fail_waiting(why)
        for job in self.jobs.all():  # the client reports orphans first; this is a safety net
            self._finish(job, "failed", why, error=True)
        self._resuming = {}
        self._notify(why, error=error is not None)

    def _on_job_event(self, job: Job, event: object) -> None:
        update = job.track.update(event)
        if isinstance(update, core.jobs.Status):
            self._notify(update.text)
        elif isinstance(update, core.jobs.Preview):
            self._on_preview(job, update.frame)
        elif isinstance(update, core.jobs.Finished) and update.state == "done":
            self._on_result(job, update.result, update.frames)
        elif isinstance(update, core.jobs.Finished):
            self._finish(job, update.state, update.text, error=update.state == "failed")

    def _on_preview(self, job: Job, frame: frames.Frame) -> None:
        doc = self.docs.get(job.doc_key)
        in_document = job.capture.kind not in canvas_jobs.CANVAS_KINDS
        if not self.settings.preview or doc is None or not doc.is_open() or not in_document:
            return
        try:
            doc.show_preview(job, frame)
            job.preview_shown = True
        except Exception as exc:  # noqa: BLE001 - a bad preview must not end the job
            self._notify(f"Preview failed: {exc}", error=True)

    def _on_result(self, job: Job, result: messages.Result, result_frames: tuple[frames.Frame, ...]) -> None:
        doc = self.docs.get(job.doc_key)
        if doc is None or not doc.is_open():
            self.jobs.pop(job.id)
            return
        try:
            images = result_images(job, result, result_frames, self.welcome.server_version if self.welcome else "")
            job.layers = doc.add_results(job, images)  # may take over the preview layer
            doc.clear_preview(job)
        except Exception as exc:  # noqa: BLE001 - report, never leave a preview behind
            self._finish(job, "failed", f"Could not place the result: {exc}", error=True)
            return
        if images:
            self.last_seed = images[0].seed
        names = ", ".join(job.layers)
        self._finish(job, "done", f"Added {len(job.layers)} layer(s): {names}")

    def _finish(self, job: Job, state: str, message: str, error: bool = False) -> None:
        job.track.state = state
        doc = self.docs.get(job.doc_key)
        if doc is not None and doc.is_open() and job.preview_shown:
            try:
                doc.clear_preview(job)
            except Exception:  # noqa: BLE001 - the document may be mid-close
                pass
        self.jobs.pop(job.id)
        self._notify(message, error)
