"""The options of ``underpaint serve``, in groups, each with its default (from ``ServerConfig``)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from ..config import ServerConfig

# group -> flag -> (config field, help). A flag's default is ServerConfig's; the help of a setting whose default
# is None says what "not set" means.
SERVE_GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "network and security": {
        "--host": ("host", "address to bind (anything but loopback needs --token)"),
        "--port": ("port", "port to bind (0 picks a free one)"),
        "--token": ("token", "shared secret clients must send (required off loopback, 16+ characters there); "
                    "prefer UNDERPAINT_TOKEN, a flag shows in ps. 'generate': make a random one and print it once"),
        "--ssl-certfile": ("ssl_certfile", "TLS certificate (PEM) for wss:// (not set: plain ws://)"),
        "--ssl-keyfile": ("ssl_keyfile", "TLS private key (PEM)"),
        "--auth-failures": ("auth_failures", "wrong tokens per address per minute before it is refused (0: no "
                            "limit)"),
    },
    "models": {
        "--max-model-pixels": ("max_model_pixels", "cap the model-side image area in pixels, saving memory and "
                               "time (not set: the model's native size)"),
    },
    "engine": {
        "--engine": ("engine", "inference backend: diffusers (this process) or ray (Ray Serve replicas, "
                     "docs/ray.md)"),
        "--device": ("device", "cuda, cuda:N, mps or cpu (not set: picked automatically)"),
        "--threads": ("threads", "CPU threads torch may use; fewer helps on a busy machine (not set: torch's "
                      "choice)"),
        "--cache-gb": ("cache_gb", "memory for loaded pipelines, in GiB"),
    },
    "limits": {
        "--max-pixels": ("max_pixels", "largest image a job may send, in pixels"),
        "--max-frame-bytes": ("max_frame_bytes", "largest binary frame, in bytes"),
        "--max-queued-jobs": ("max_queued_jobs", "jobs one client may have in flight"),
        "--max-batch": ("max_batch", "largest batch count"),
        "--max-steps": ("max_steps", "most sampling steps per job"),
        "--keep-results-s": ("keep_results_s", "how long results kept for `resume` stay, in seconds"),
        "--max-connections": ("max_connections", "websockets open at once, in total"),
        "--max-connections-per-address": ("max_connections_per_address", "websockets open at once per client "
                                          "address"),
        "--hello-timeout-s": ("hello_timeout_s", "seconds a new websocket has to send its hello"),
        "--idle-timeout-s": ("idle_timeout_s", "close a session with no job in flight after this many idle "
                             "seconds"),
        "--frames-timeout-s": ("frames_timeout_s", "seconds a submit's frames may take to arrive"),
        "--header-timeout-s": ("header_timeout_s", "seconds an HTTP request may take to send its headers"),
        "--max-connection-bytes": ("max_connection_bytes", "input frame bytes one connection may hold"),
        "--max-buffered-bytes": ("max_buffered_bytes", "input frame bytes all connections together may hold"),
        "--max-kept-jobs": ("max_kept_jobs", "keep_result jobs one client address may have kept at once"),
    },
    "Ray (--engine ray)": {
        "--ray-address": ("ray_address", "the Ray cluster to join ('auto': the one `ray start` runs here; not "
                          "set: start a local Ray)"),
        "--ray-cpus": ("ray_cpus", "CPUs of the local Ray (not set: all)"),
        "--ray-replicas": ("ray_replicas", "engine replicas"),
        "--ray-min-replicas": ("ray_min_replicas", "autoscaling lower bound (turns autoscaling on; not set: off)"),
        "--ray-max-replicas": ("ray_max_replicas", "autoscaling upper bound (turns autoscaling on; not set: off)"),
        "--ray-gpus-per-replica": ("ray_gpus_per_replica", "GPUs per replica, 0.5 shares a GPU (not set: 1 where "
                                   "the cluster has GPUs, else 0)"),
        "--ray-cpus-per-replica": ("ray_cpus_per_replica", "CPUs reserved per replica"),
        "--ray-models-per-replica": ("ray_models_per_replica", "models a replica keeps loaded"),
        "--ray-proxy-port": ("ray_proxy_port", "also start Ray Serve's HTTP proxy on this port (not set: off)"),
    },
    "logging": {
        "--log-level": ("log_level", "debug, info, warning or error (debug also shows the libraries' own "
                        "warnings and progress bars)"),
        "--port-file": ("port_file", "write the bound port to this file once the server is ready"),
    },
}
SERVE_FLAGS = {flag: row for group in SERVE_GROUPS.values() for flag, row in group.items()}
_DEFAULTS = {f.name: f.default for f in fields(ServerConfig) if f.default is not MISSING}


def _with_default(field: str, text: str) -> str:
    default = _DEFAULTS.get(field)
    if default is None:
        return text
    return f"{text} (default: {str(default).replace('%', '%%')})"


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """Every serve option in its group; flags default to None so that an unset flag leaves the environment's
    or the file's value alone."""
    groups = {name: serve.add_argument_group(name) for name in ("general", *SERVE_GROUPS)}
    general = groups["general"]
    general.add_argument("--config", type=Path, help="TOML file with settings (a [server] table or top-level keys)")
    for name, flags in SERVE_GROUPS.items():
        for flag, (field, text) in flags.items():
            groups[name].add_argument(flag, default=None, help=_with_default(field, text))
    security, models = groups["network and security"], groups["models"]
    security.add_argument("--allow-origin", action="append", default=[], help="browser Origin allowed to connect "
                          "(repeatable; not set: browsers are refused)")
    models.add_argument("--models-dir", action="append", default=[],
                        help="folder to scan for models (repeatable; ComfyUI models/checkpoints and A1111 "
                             "models/Stable-diffusion work as they are); it must exist and hold a model. Not set: "
                             "the built-in demo model (random weights: its output is noise)")
    models.add_argument("--allow-pickle", action="store_true", help="also load pickle .ckpt files (unsafe)")
    groups["engine"].add_argument("--no-preload", action="store_true", help="load the default model at the first "
                                  "job, not in the background at start-up")
    groups["Ray (--engine ray)"].add_argument(
        "--ray-attach", action="store_true", help="use the engine application a KubeRay RayService deployed "
        "(import path underpaint.server.scale.app:build) instead of deploying it")
    groups["logging"].add_argument("--log-json", action="store_true", help="structured JSON log lines")
