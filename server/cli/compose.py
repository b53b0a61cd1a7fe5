"""The composition root: settings -> engine -> jobs -> transport -> a listening server.

``serve`` and ``demo`` both build their server here; nothing in this module runs at import time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from underpaint.protocol.vocabulary import MAX_HELLO_BYTES

from ..config import ConfigError, ServerConfig
from ..engine.interface import Engine


def stay_offline() -> None:
    """Never reach for a model hub: weights come from the models folders or the built-in demo model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _diffusers_engine(config: ServerConfig) -> Engine:
    from ..engine.diffusers_engine import DiffusersEngine
    from ..engine.registry import ModelRegistry

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    registry = ModelRegistry(list(config.models_dirs), allow_pickle=config.allow_pickle)
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


def make_server(config: ServerConfig, engine: Engine | None = None):
    """A uvicorn server on an already bound socket; returns (server, socket).

    Raises UnsafeConfig or ConfigError for settings the server refuses, OSError if it cannot listen.
    """
    import uvicorn

    from ..transport.app import create_app
    from ..transport.guard import guarded_http
    from ..transport.security import check_startup
    from ..transport.wire import guarded_websocket

    check_startup(config)
    engine = engine or build_engine(config)
    app = create_app(config, engine)
    sock = bind_socket(config.host, config.port)
    uv_config = uvicorn.Config(
        app, log_level=config.log_level.lower(), ws_max_size=MAX_HELLO_BYTES,  # until authenticated (wire.py)
        ws=guarded_websocket(), ws_per_message_deflate=False, ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile, log_config=None, lifespan="on", http=guarded_http(config.header_timeout_s),
    )
    return uvicorn.Server(uv_config), sock
