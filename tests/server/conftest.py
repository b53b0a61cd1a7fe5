"""Fixtures: one real engine (demo model) per session, an in-process server sharing it, and a factory for
servers with other settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from server_helpers import ControlledEngine, Live, start_live, stop_live  # noqa: E402


@pytest.fixture(scope="session")
def real_engine():
    """The demo model on CPU, torch on one thread for these tiny tensors (on a busy 2-core machine
    several threads spin against each other and run jobs 5x slower); restored afterwards."""
    import torch
    from underpaint.server.cli.compose import build_engine
    from underpaint.server.config import ServerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = build_engine(ServerConfig())
    engine.pipelines(engine.default_model())  # load once, up front
    yield engine
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def _shared_live(real_engine) -> Iterator[Live]:
    live = start_live(ControlledEngine(real_engine))
    yield live
    stop_live(live)


@pytest.fixture
def live(_shared_live: Live) -> Iterator[Live]:
    """The shared in-process server, with the engine's test hooks cleared before and after."""
    _shared_live.engine.reset()
    yield _shared_live
    _shared_live.engine.reset()


@pytest.fixture
def make_live(real_engine) -> Iterator[Callable[..., Live]]:
    """Start an extra in-process server with other settings (stopped after the test)."""
    started: list[Live] = []

    def make(**settings) -> Live:
        live = start_live(ControlledEngine(real_engine), **settings)
        started.append(live)
        return live

    yield make
    for live in started:
        live.engine.reset()
        stop_live(live)
