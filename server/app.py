"""FastAPI transport: the v1 websocket, health/info/models, and a REST job endpoint. Nothing about diffusers."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from underpaint.protocol import errors
from underpaint.protocol.connection import JobRequest, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import (
    PROTOCOL_VERSION,
    Cancel,
    Cancelled,
    Defaults,
    Error,
    Hello,
    Limits,
    ModelInfo,
    Resume,
    Welcome,
)

from . import __version__
from .config import ServerConfig
from .engine.base import Engine
from .jobs import JobManager
from .rest import add_rest_routes
from .runner import JobRunner
from .security import check_origin, check_token

log = logging.getLogger("underpaint.server")
_CLOSE = object()


class Service:
    """What the transports share: settings, engine, job manager, and the welcome they advertise."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.limits = Limits(max_pixels=config.max_pixels, max_frame_bytes=config.max_frame_bytes,
                             max_queued_jobs=config.max_queued_jobs, max_batch=config.max_batch,
                             max_steps=config.max_steps, keep_results_s=config.keep_results_s)
        self.jobs = JobManager(JobRunner(engine, config.max_model_pixels), keep_results_s=config.keep_results_s)

    def welcome(self) -> Welcome:
        default = self.engine.default_model()
        models = tuple(
            ModelInfo(id=m.id, name=m.name, family=m.family, capabilities=tuple(m.capabilities),
                      resolution=m.resolution, default=m.id == default, note=m.note)
            for m in self.engine.list_models()
        )
        return Welcome(protocol=PROTOCOL_VERSION, server_version=__version__, device=self.engine.device_name(),
                       models=models, defaults=Defaults(model=default), limits=self.limits)


def _preload(engine: Engine) -> None:
    try:
        engine.preload(engine.default_model())
    except Exception:  # noqa: BLE001 - the first job reports a failing load to its client
        log.warning("preloading the default model failed", exc_info=True)


def create_app(config: ServerConfig, engine: Engine) -> FastAPI:
    service = Service(config, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.preload:  # the first job should not pay for loading the default model
            threading.Thread(target=_preload, args=(engine,), name="underpaint-preload", daemon=True).start()
        yield
        service.jobs.close()

    app = FastAPI(title="Underpaint", version=__version__, lifespan=lifespan,
                  description="img2img and inpainting for Krita and GIMP. Websocket protocol v1 at /v1/ws "
                              "(see docs/protocol.md); REST for scripts.")
    app.state.service = service

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "protocol": PROTOCOL_VERSION,
                "device": engine.device_name()}

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        await Session(service, ws).run()

    add_rest_routes(app, service)
    return app


class Session:
    """One websocket connection: a ServerConnection driven by the socket, jobs handed to the manager."""

    def __init__(self, service: Service, ws: WebSocket) -> None:
        self.service = service
        self.ws = ws
        self.conn = ServerConnection(service.limits)
        self.client = f"ws-{uuid.uuid4().hex[:12]}"
        self.outbox: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def sink(self, item: object) -> None:
        """Thread-safe: called from the worker; big frames are encoded there, off the event loop."""
        if isinstance(item, Frame):
            item = item.encode()
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, item)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is _CLOSE:
                await self.ws.close(code=1008)
                return
            if isinstance(item, bytes):
                await self.ws.send_bytes(item)
            else:
                await self.ws.send_text(self.conn.send(item))  # type: ignore[arg-type]

    def fail(self, exc: ProtocolError) -> None:
        self.outbox.put_nowait(Error.from_exception(exc))
        if self.conn.state == "closed" or exc.code in errors.FATAL_CODES:
            self.outbox.put_nowait(_CLOSE)

    async def run(self) -> None:
        await self.ws.accept()
        sender = asyncio.create_task(self._send_loop())
        try:
            try:
                check_origin(self.service.config, self.ws.headers.get("origin"))
            except ProtocolError as exc:
                self.conn.state = "closed"
                self.fail(exc)
                await sender
                return
            await self._receive_loop()
        finally:
            self.service.jobs.disconnect(self.client)
            if not sender.done():
                self.outbox.put_nowait(_CLOSE)
                try:
                    await asyncio.wait_for(sender, timeout=5)
                except Exception:  # noqa: BLE001 - the peer is gone
                    sender.cancel()

    async def _receive_loop(self) -> None:
        while self.conn.state != "closed":
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    events = self.conn.receive_bytes(message["bytes"])
                else:
                    events = self.conn.receive_text(message.get("text") or "")
                for event in events:
                    self._handle(event)
            except ProtocolError as exc:
                self.fail(exc)

    def _handle(self, event: object) -> None:
        jobs = self.service.jobs
        if isinstance(event, Hello):
            try:
                check_token(self.service.config, event.token)
            except ProtocolError as exc:
                self.conn.state = "closed"
                raise exc
            self.outbox.put_nowait(self.service.welcome())
            self.conn.state = "ready"
        elif isinstance(event, JobRequest):
            jobs.submit(self.client, event, self.sink)
        elif isinstance(event, Cancel):
            if not jobs.cancel(self.client, event.job):
                raise ProtocolError(errors.UNKNOWN_JOB, f"no job {event.job!r} of yours to cancel", "job", event.job)
        elif isinstance(event, Resume):
            self.conn.active.add(event.job)
            if not jobs.resume(self.client, event.job, self.sink):
                self.conn.active.discard(event.job)
                raise ProtocolError(errors.UNKNOWN_JOB, f"no kept job {event.job!r} to resume (it was not submitted "
                                    "with keep_result, or it expired)", "job", event.job)
        elif isinstance(event, Cancelled):
            self.outbox.put_nowait(event)
