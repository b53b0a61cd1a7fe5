"""Krita's adapter of the shared job session (``core.session.JobSession``): documents in, layers and status out,
independent of Krita and Qt.

Runs on the host's GUI thread only. The threaded protocol client calls ``post`` on its own thread; the host
must deliver each posted event to ``Controller.handle`` on the GUI thread (Krita: a queued Qt signal).
Submitting, the checks against the server, events, results, resume and reconnect are the session's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import canvas_jobs
from .jobs import LABELS, Capture, Job, UserError
from .params import GenerationParams, ParamsError
from .pixels import UnsupportedDocument
from .proto import client as pclient
from .proto import core, frames, messages
from .results import ResultImage, result_images
from .settings import Settings
from .transfer import PREVIEW_ENCODINGS, job_request

CLIENT_NAME = "underpaint-krita"
PLUGIN_VERSION = "0.1.0"
# live: plugin_krita/live.py
FEATURES = core.params.client_features(PREVIEW_ENCODINGS, resume=True, live=True, lora=True)
Session = core.session
Tagged, Retry, ConnectionState = Session.Tagged, Session.Retry, Session.ConnectionState


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
class Status:
    connection: ConnectionState
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
        identity = Session.Identity(CLIENT_NAME, client_version, FEATURES)
        self.session = Session.JobSession(settings.server_url, settings.token or None, identity, post, make_client,
                                          LABELS, settings.transfer, wake=self._wake)
        self.docs: dict[int, HostDocument] = {}
        self.message, self.error = "Not connected", False
        self.last_seed: int | None = None
        self.listeners: list[Callable[[Status], None]] = []

    # ---------------------------------------------------------------- state for the UI
    @property
    def connection(self) -> ConnectionState:
        return self.session.state

    @property
    def welcome(self) -> messages.Welcome | None:
        return self.session.welcome

    @property
    def jobs(self) -> dict[str, Session.SessionJob]:
        """The jobs in flight by id, in submission order (each ``tag`` is its ``jobs.Job``)."""
        return self.session.jobs

    @property
    def client(self) -> Any:
        """The protocol client of the current connection (None while disconnected); live painting shares it."""
        return self.session.client

    def status(self) -> Status:
        running = self.session.running()
        progress = (running.track.step, running.track.total) if running and running.track.total else None
        server = ""
        if self.welcome is not None:
            w = self.welcome
            default = next((m.name for m in w.models if m.id == w.defaults.model), w.defaults.model)
            where = self.client.url if self.client is not None else self.settings.server_url
            server = f"{where} · {w.device} · server {w.server_version} · default model {default}"
        return Status(self.connection, server, self.message, self.error, progress, len(self.jobs), self.limits())

    def models(self) -> list[messages.ModelInfo]:
        return list(self.welcome.models) if self.welcome else []

    def limits(self) -> messages.Limits | None:
        """The connected server's limits (steps, images per job ...), None while not connected."""
        return self.welcome.limits if self.welcome is not None else None

    def offer(self) -> core.params.Offer:
        """What the docker may offer on this connection (the core kinds while not connected)."""
        return self.session.offer()

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
        self.settings = settings
        self.session.transfer = settings.transfer
        self._apply(self.session.use_server(settings.server_url, settings.token or None))

    def connect(self) -> None:
        self._apply(self.session.connect())

    def disconnect(self) -> None:
        """Close the connection; jobs in flight fail now, late events of the old connection are ignored."""
        self._apply(self.session.close())

    def _wake(self, delay: float, event: object) -> None:
        """Post ``event`` (the session's reconnect) after ``delay`` seconds, from a timer thread."""
        timer = threading.Timer(delay, lambda: self._post(event))
        timer.daemon = True
        timer.start()

    # ---------------------------------------------------------------- jobs
    def generate(self, doc: HostDocument, params: GenerationParams) -> str:
        """Capture the document now and send (or queue until connected) one job; returns its id.

        Raises UserError with a message for the painter (also shown in the status line).
        """
        try:
            params = dataclasses.replace(params.validated(), seed=params.resolved_seed())
            capture = doc.capture(params, self.settings)
            job = Job(pclient.new_job_id("krita"), doc.key, doc.name, capture, params)
            self.docs[doc.key] = doc
            session_job, out = self.session.submit(job_request(job, self.settings), tag=job, job_id=job.id)
        except (UserError, ParamsError, UnsupportedDocument, Session.JobRefused, ValueError) as exc:
            self._notify(str(exc), error=True)
            raise UserError(str(exc)) from exc
        job.track = session_job.track
        self._apply(out)
        self._notify()
        return job.id

    def cancel(self, job_id: str) -> None:
        self._apply(self.session.cancel(job_id))

    def document_jobs(self, doc_key: int | None) -> list[Job]:
        """The jobs in flight of one document (None: of every document)."""
        return [j.tag for j in self.jobs.values() if doc_key is None or j.tag.doc_key == doc_key]

    def cancel_all(self, doc_key: int | None = None) -> None:
        """Cancel the jobs of one document (``doc_key``), or of every document with None."""
        for job in self.document_jobs(doc_key):
            self.cancel(job.id)

    def cancel_document(self, doc_key: int | None, name: str = "") -> None:
        """Cancel the jobs of one document only; say so when it has none (``doc_key`` None: no document)."""
        if doc_key is None or not self.document_jobs(doc_key):
            others = len(self.jobs)
            where = f"'{name}'" if name else "this document"
            self._notify(f"No jobs to cancel in {where}" + (f" ({others} job(s) of other documents keep running)"
                                                          if others else ""), error=False)
            return
        self.cancel_all(doc_key)

    def document_closed(self, doc_key: int) -> None:
        """Drop a closed document's jobs: cancel them on the server, ignore whatever still arrives."""
        dropped = self.document_jobs(doc_key)
        for job in dropped:
            self.session.drop(job.id)
        doc = self.docs.pop(doc_key, None)
        if dropped:
            name = doc.name if doc is not None else dropped[0].doc_name
            self._notify(f"'{name}' was closed: cancelled {len(dropped)} job(s)")

    # ---------------------------------------------------------------- events (GUI thread)
    def handle(self, event: object) -> None:
        self._apply(self.session.handle(event))

    def _apply(self, out: list[Session.Output]) -> None:
        """Render what the session says: status lines, previews, result layers."""
        for item in out:
            if isinstance(item, Session.Note):
                self._notify(item.text, item.error)
                continue
            job, update = item.job.tag, item.update
            if isinstance(update, core.jobs.Status):
                self._notify(update.text)
            elif isinstance(update, core.jobs.Preview):
                self._on_preview(job, update.frame)
            elif update.state == core.jobs.JobState.DONE:
                self._on_result(job, update.images)
            else:
                self._finish(job, update.text, error=update.state == core.jobs.JobState.FAILED)

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

    def _on_result(self, job: Job, decoded: tuple[core.jobs.ResultImage, ...]) -> None:
        doc = self.docs.get(job.doc_key)
        if doc is None or not doc.is_open():
            return
        try:
            images = result_images(job, decoded, self.welcome.server_version if self.welcome else "")
            job.layers = doc.add_results(job, images)  # may take over the preview layer
            doc.clear_preview(job)
        except Exception as exc:  # noqa: BLE001 - report, never leave a preview behind
            self._finish(job, f"Could not place the result: {exc}", error=True)
            return
        if images:
            self.last_seed = images[0].seed
        names = ", ".join(job.layers)
        self._finish(job, f"Added {len(job.layers)} layer(s): {names}")

    def _finish(self, job: Job, message: str, error: bool = False) -> None:
        doc = self.docs.get(job.doc_key)
        if doc is not None and doc.is_open() and job.preview_shown:
            try:
                doc.clear_preview(job)
            except Exception:  # noqa: BLE001 - the document may be mid-close
                pass
        self._notify(message, error)
