"""Connect to Ray, deploy the engine replicas as a Serve application, and hand back a RayEngine.

The websocket front and the fair per-client queue stay in the ``underpaint serve`` process (the Ray driver);
only the engine runs on replicas. Settings: docs/ray.md.
"""

from __future__ import annotations

import atexit
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from ..config import ConfigError, ServerConfig
from .ray_engine import RayEngine
from .replica import ReplicaSettings, deployment

log = logging.getLogger("underpaint.ray")
APP_NAME = "underpaint"
NAMESPACE = "underpaint"
PROBE_TIMEOUT_S = 5.0  # ray.init retries an address nobody answers at for minutes: look first
DEFAULT_PORTS = {"": 6379, "ray": 10001}  # GCS, Ray Client
ATTACH_WAIT_S = 120.0  # how long ray_attach waits for a deploying (or healing) application to run


def require_ray() -> Any:
    try:
        import ray
        from ray import serve  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError("setting 'engine' is 'ray' but Ray Serve is not installed; pip install "
                          "'underpaint[ray]'") from None
    return ray


def replica_bounds(config: ServerConfig) -> tuple[int | None, int | None, int]:
    """(min, max, most replicas at once): autoscaling when either bound is set, else a fixed count."""
    low, high = config.ray_min_replicas, config.ray_max_replicas
    if low is None and high is None:
        if config.ray_replicas < 1:
            raise ConfigError(f"setting 'ray_replicas' must be >= 1, got {config.ray_replicas}")
        return None, None, config.ray_replicas
    low = 1 if low is None else low
    high = low if high is None else high
    if low < 0 or high < max(low, 1):
        raise ConfigError(f"settings 'ray_min_replicas' ({low}) and 'ray_max_replicas' ({high}) need "
                          "0 <= min <= max and max >= 1")
    return low, high, high


def check_reachable(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Refuse at once an address whose port nobody listens on ('auto' is Ray's own, fast lookup)."""
    if address == "auto":
        return
    scheme, _, rest = address.rpartition("://")
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    try:
        target = (host.strip("[]") or rest, int(port or DEFAULT_PORTS[scheme]))
        if scheme not in DEFAULT_PORTS or not target[0]:
            raise ValueError(scheme)
    except (KeyError, ValueError):
        raise ConfigError(f"setting 'ray_address' is {address!r}: expected 'auto', HOST:PORT or "
                          "ray://HOST:PORT") from None
    try:
        socket.create_connection(target, timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"setting 'ray_address' is {address!r}, but nothing answers at {target[0]}:{target[1]} "
                          f"({exc.strerror or exc}); start the cluster with `ray start --head` there, or "
                          "leave the setting out for a private local Ray") from None


def connect(config: ServerConfig) -> None:
    """Join the cluster at ``ray_address`` ('auto': the one `ray start --head` runs here), or start a local
    Ray bounded to ``ray_cpus`` CPUs when no address is set."""
    ray = require_ray()
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False, "include_dashboard": False}
    if config.ray_address:
        check_reachable(config.ray_address)
        try:
            ray.init(address=config.ray_address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"setting 'ray_address' is {config.ray_address!r}, but no Ray cluster answers there "
                              f"(start one with `ray start --head`): {exc}") from None
    else:
        ray.init(num_cpus=config.ray_cpus, **kwargs)


def application(config: ServerConfig, registry: Callable[[ReplicaSettings], Any] | None = None) -> Any:
    """The engine's Serve application for these settings (Ray must be connected: GPUs are looked up)."""
    ray = require_ray()
    low, high, most = replica_bounds(config)
    gpus = config.ray_gpus_per_replica
    if gpus is None:  # a replica per GPU where the cluster has GPUs
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    settings = ReplicaSettings(models_dirs=config.models_dirs, allow_pickle=config.allow_pickle,
                               device=config.device, threads=config.threads, cache_gb=config.cache_gb,
                               preload=None, namespace=NAMESPACE, registry=registry)
    log.info("engine application: %s replica(s) (%s GPU, %s CPU each)",
             f"{low}..{high}" if low is not None else most, gpus, config.ray_cpus_per_replica)
    return deployment(settings, replicas=config.ray_replicas, min_replicas=low, max_replicas=high, gpus=gpus,
                      cpus=config.ray_cpus_per_replica, models_per_replica=config.ray_models_per_replica)


def start_engine(config: ServerConfig, registry: Callable[[ReplicaSettings], Any] | None = None) -> RayEngine:
    """Deploy (or update) the UnderpaintEngine application, or attach to the one a RayService deployed
    (``ray_attach``), and return the front's engine for it.
    ``registry``: builds each replica's model registry (default: the models folders of the settings)."""
    most = replica_bounds(config)[2]
    require_ray()  # a clear ConfigError when the extra is not installed
    from ray import serve

    connect(config)
    if config.ray_attach:
        return RayEngine(attached_handle(), most)
    if config.ray_proxy_port:
        serve.start(http_options={"host": config.host, "port": config.ray_proxy_port})
    else:
        serve.start(proxy_location="Disabled")
    handle = serve.run(application(config, registry), name=APP_NAME, route_prefix=None)
    atexit.register(shutdown)  # a joined cluster keeps running: give its GPUs back when the front stops
    return RayEngine(handle, most)


def attached_handle(wait_s: float = ATTACH_WAIT_S) -> Any:
    """The handle of the engine application someone else deployed (a RayService's ``serveConfigV2``). One that
    is still deploying, or replacing a replica that died, is waited for up to ``wait_s``."""
    from ray import serve

    deadline = time.monotonic() + wait_s
    while True:
        try:
            status = serve.status().applications.get(APP_NAME)
        except Exception as exc:  # noqa: BLE001 - Serve is not running on this cluster
            status, state, reason = None, "", str(exc)
        else:
            state = str(status.status).split(".")[-1] if status is not None else ""
            reason = "it is not deployed" if status is None else f"it is {state}"
        if state == "RUNNING":
            return serve.get_app_handle(APP_NAME)
        if state not in ("DEPLOYING", "UNHEALTHY") or time.monotonic() >= deadline:
            raise ConfigError(f"setting 'ray_attach' is on, but the Serve application {APP_NAME!r} is not running "
                              f"on this cluster ({reason}): deploy it with import path "
                              "'underpaint.server.scale.app:build' (docs/ray.md), or leave ray_attach off")
        time.sleep(0.5)


def shutdown() -> None:
    """Delete the application and disconnect (the cluster itself keeps running when it was joined)."""
    import ray
    from ray import serve

    atexit.unregister(shutdown)
    if ray.is_initialized():
        try:
            serve.delete(APP_NAME)
        except Exception:  # noqa: BLE001 - Serve already gone: nothing left to delete
            log.warning("could not delete the Ray Serve application", exc_info=True)
        finally:
            ray.shutdown()
