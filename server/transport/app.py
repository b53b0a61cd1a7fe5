"""The FastAPI application: health, the v1 websocket, REST. Nothing about diffusers: it gets a ready ``Service``
(``cli.compose``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, Request, WebSocket
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.vocabulary import PROTOCOL_VERSION, WS_PATH

from .. import __version__
from .rest import add_rest_routes
from .security import bearer_token
from .service import Service
from .session import Session
from .upload_guard import UploadGuard


def create_app(service: Service, warm_up: Callable[[], None] | None = None) -> FastAPI:
    """The application over ``service``; ``warm_up`` runs on a thread once it starts (loading the default model:
    the first job should not pay for it)."""
    config = service.config

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up is not None:
            threading.Thread(target=warm_up, name="underpaint-preload", daemon=True).start()
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
            return {**status, "version": __version__, "device": service.offer.device}
        if authorization is None:
            return status
        address = request.client.host if request.client else "unknown"
        try:
            service.auth.check(config, address, bearer_token(authorization))
        except ProtocolError:
            return status
        return {**status, "version": __version__, "device": service.offer.device}

    @app.websocket(WS_PATH)
    async def websocket(ws: WebSocket) -> None:
        await Session(service, ws).run()

    add_rest_routes(app, service)
    app.add_middleware(UploadGuard, service=service)
    return app
