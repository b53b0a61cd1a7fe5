"""One local Ray (2 CPUs) for the test module, two CPU engine replicas (1 torch thread each) behind a real
websocket server, and the in-process server for comparison. Ray starts once and is shut down after the module
(not left idle for the rest of the run).

Without Ray installed these tests skip, except under CI=true, where a missing Ray is a failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if os.environ.get("CI") != "true":
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'underpaint[ray]')")

from server_helpers import MODEL_PIXELS, ControlledEngine, Live, start_live, stop_live  # noqa: E402

REPLICAS = 2


@pytest.fixture(scope="module")
def ray_live() -> Iterator[Live]:
    """The websocket server with ``--engine ray``: 2 replicas on a local 2-CPU Ray, models demo and demo-b."""
    import ray_helpers
    from ray import cloudpickle
    from underpaint.server.config import ServerConfig
    from underpaint.server.scale import cluster

    cloudpickle.register_pickle_by_value(ray_helpers)  # the replicas cannot import the tests folder
    config = ServerConfig(engine="ray", ray_cpus=REPLICAS, ray_replicas=REPLICAS, threads=1, preload=False)
    engine = cluster.start_engine(config, registry=ray_helpers.twin_registry)
    live = start_live(engine, preload=False)  # type: ignore[arg-type]
    try:
        yield live
    finally:
        stop_live(live)
        cluster.shutdown()


@pytest.fixture(scope="module")
def local_live(ray_live) -> Iterator[Live]:
    """The single-process server (demo model, CPU, 1 torch thread) the Ray results must equal."""
    import torch
    from underpaint.server.cli.compose import build_engine
    from underpaint.server.config import ServerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    live = start_live(ControlledEngine(build_engine(ServerConfig())), preload=False)
    try:
        yield live
    finally:
        stop_live(live)
        torch.set_num_threads(threads)


@pytest.fixture
def ledger(ray_live):
    """A function returning the replicas' load/cancel events so far."""
    import ray
    from underpaint.server.scale.cluster import NAMESPACE
    from underpaint.server.scale.replica import ledger_handle

    handle = ledger_handle(NAMESPACE)
    return lambda: ray.get(handle.events.remote(), timeout=60)


__all__ = ["MODEL_PIXELS"]
