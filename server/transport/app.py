"""The FastAPI application: health, the v1 websocket, REST. Nothing about diffusers."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, Request, WebSocket
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.vocabulary import PROTOCOL_VERSION, WS_PATH

from .. import __version__
from ..config import ServerConfig
from ..engine.interface import Engine
from .rest import add_rest_routes
from .security import bearer_token
from .service import Service
from .session import Session
from .upload_guard import UploadGuard

log = logging.getLogger("underpaint.server")


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
                  description=f"img2img and inpainting for Krita and GIMP. Websocket protocol "
                              f"v{PROTOCOL_VERSION} at {WS_PATH} (see docs/protocol.md); REST for scripts.")
    app.state.service = service

    @app.get("/health")
    def health(request: Request, authorization: str | None = Header(None)) -> dict:
        """Liveness for anyone; the version and device only for a caller with the token (or with none set)."""
        status = {"status": "ok", "protocol": PROTOCOL_VERSION}
        if not config.token:
            return {**status, "version": __version__, "device": engine.device_name()}
        if authorization is None:
            return status
        address = request.client.host if request.client else "unknown"
        try:
            service.auth.check(config, address, bearer_token(authorization))
        except ProtocolError:
            return status
        return {**status, "version": __version__, "device": engine.device_name()}

    @app.websocket(WS_PATH)
    async def websocket(ws: WebSocket) -> None:
        await Session(service, ws).run()

    add_rest_routes(app, service)
    app.add_middleware(UploadGuard, service=service)
    return app
