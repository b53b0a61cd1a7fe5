"""The composition root: settings -> engine -> jobs -> transport -> a listening server.

``serve`` and ``demo`` both build their server here, and only here are the parts built and wired: the engine,
the upscalers, the job runner and manager, the live streams, what the welcome offers; the transport receives them
ready. Nothing in this module runs at import time.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from underpaint.protocol import vocabulary
from underpaint.protocol.messages import LoraInfo, ModelInfo, UpscalerInfo
from underpaint.protocol.vocabulary import MAX_HELLO_BYTES

from ..config import ConfigError, ServerConfig, protocol_limits
from ..engine.interface import Engine
from ..engine.offline import stay_offline
from ..engine.upscalers import Upscalers, upscaler_dirs
from ..jobs.handlers import HANDLERS, kinds_for
from ..jobs.live import LiveStreams
from ..jobs.queue import JobManager
from ..jobs.runner import JobRunner, preview_encodings
from ..transport.service import Offer, Service

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("underpaint.server")


def _diffusers_engine(config: ServerConfig) -> Engine:
    from ..engine.diffusers_engine import DiffusersEngine
    from .settings_check import models_registry

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    registry = models_registry(config.models_dirs, allow_pickle=config.allow_pickle)  # ConfigError: no model
    loras, tiny_vaes = extra_registries(config)
    return DiffusersEngine(registry, device=config.device, cache_bytes=int(config.cache_gb * 2**30), loras=loras,
                           tiny_vaes=tiny_vaes)


def extra_registries(config: ServerConfig):
    """The LoRA registry and the tiny VAEs of the configured folders and those beside the models folders."""
    from ..engine.lora import LoraRegistry, default_lora_dirs
    from ..engine.tiny_vae import TinyVaes, default_tiny_vae_dirs

    models = list(config.models_dirs)
    loras = LoraRegistry(list(config.lora_dirs) + default_lora_dirs(models))
    return loras, TinyVaes(list(config.tiny_vae_dirs) + default_tiny_vae_dirs(models))


def _ray_engine(config: ServerConfig) -> Engine:
    from ..scale.cluster import start_engine

    return start_engine(config)


ENGINES: dict[str, Callable[[ServerConfig], Engine]] = {"diffusers": _diffusers_engine, "ray": _ray_engine}


def build_engine(config: ServerConfig) -> Engine:
    """The engine named by the ``engine`` setting."""
    factory = ENGINES.get(config.engine)
    if factory is None:
        raise ConfigError(f"setting 'engine' is {config.engine!r}; expected one of: {', '.join(ENGINES)}")
    stay_offline()
    return factory(config)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def offer(engine: Engine, upscalers: Upscalers) -> Offer:
    """What the welcome advertises. ``features`` is what this server really implements: the kinds with a handler,
    the samplers the engine maps, the preview encodings PIL can write, every flag of the vocabulary (``lora``
    only when there are LoRA files to offer); no extra input role (control, reference).
    ``upscalers``: the upscaler models found in or beside the models directories."""
    loras = tuple(LoraInfo(id=lo.id, name=lo.name, family=lo.family) for lo in engine.list_loras())
    flags = [f for f in vocabulary.FLAGS if f not in vocabulary.RESERVED_FLAGS and (loras or f != "lora")]
    features = vocabulary.features(kinds=HANDLERS, roles=(), samplers=engine.samplers(),
                                   encodings=preview_encodings(), flags=flags)
    default = engine.default_model()
    models = tuple(
        ModelInfo(id=m.id, name=m.name, family=m.family, capabilities=kinds_for(m.capabilities),
                  resolution=m.resolution, default=m.id == default, note=m.note)
        for m in engine.list_models()
    )
    return Offer(device=engine.device_name(), default_model=default, models=models, features=features,
                 upscalers=tuple(UpscalerInfo(id=u.id, name=u.name, scale=u.scale) for u in upscalers.list()),
                 loras=loras)


def build_service(config: ServerConfig, engine: Engine) -> Service:
    """The job layer over ``engine`` (upscalers, runner, fair queue, live streams) and what the transport shares."""
    limits = protocol_limits(config)
    upscalers = Upscalers(upscaler_dirs(config.models_dirs), config.allow_pickle,
                          device=str(getattr(engine, "device", "cpu")))
    jobs = JobManager(JobRunner(engine, config.max_model_pixels, upscalers), keep_results_s=config.keep_results_s,
                      workers=engine.parallel_jobs())
    live = LiveStreams(engine, jobs, limits, config.max_model_pixels)
    return Service(config, limits=limits, offer=offer(engine, upscalers), jobs=jobs, live=live)


def preload(engine: Engine) -> None:
    """Load the default model now (on a thread at startup): the first job should not pay for it."""
    try:
        engine.preload(engine.default_model())
    except Exception:  # noqa: BLE001 - the first job reports a failing load to its client
        log.warning("preloading the default model failed", exc_info=True)


def build_app(config: ServerConfig, engine: Engine) -> FastAPI:
    from ..transport.app import create_app

    warm_up = (lambda: preload(engine)) if config.preload else None
    return create_app(build_service(config, engine), warm_up)


def make_server(config: ServerConfig, engine: Engine | None = None):
    """A uvicorn server on an already bound socket; returns (server, socket).

    Raises UnsafeConfig or ConfigError for settings the server refuses, OSError if it cannot listen.
    """
    import uvicorn

    from ..transport.guard import guarded_http
    from ..transport.security import check_startup
    from ..transport.wire import guarded_websocket

    check_startup(config)
    engine = engine or build_engine(config)
    app = build_app(config, engine)
    sock = bind_socket(config.host, config.port)
    uv_config = uvicorn.Config(
        app, log_level=config.log_level.lower(), ws_max_size=MAX_HELLO_BYTES,  # until authenticated (wire.py)
        ws=guarded_websocket(), ws_per_message_deflate=False, ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile, log_config=None, lifespan="on", http=guarded_http(config.header_timeout_s),
    )
    return uvicorn.Server(uv_config), sock
