"""`underpaint serve | models | demo | install`."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from underpaint.protocol.vocabulary import WS_PATH

from .. import __version__
from ..config import build_config
from .compose import extra_registries, make_server, stay_offline
from .logs import setup_logging

SERVE_FLAGS = {  # flag -> (config field, help)
    "--host": ("host", "address to bind (default 127.0.0.1; anything else needs --token)"),
    "--port": ("port", "port to bind (default 7860; 0 picks a free one)"),
    "--token": ("token", "shared secret clients must send (required off loopback, 16+ characters there); prefer "
                "UNDERPAINT_TOKEN, a flag shows in ps. 'generate': make a random one and print it once"),
    "--engine": ("engine", "inference backend: diffusers (default, this process) or ray (Ray Serve replicas, "
                 "docs/ray.md)"),
    "--ray-address": ("ray_address", "engine ray: the Ray cluster to join ('auto': the one `ray start` runs here; "
                      "default: start a local Ray)"),
    "--ray-cpus": ("ray_cpus", "engine ray: CPUs of the local Ray (default: all)"),
    "--ray-replicas": ("ray_replicas", "engine ray: engine replicas (default 1)"),
    "--ray-min-replicas": ("ray_min_replicas", "engine ray: autoscaling lower bound (turns autoscaling on)"),
    "--ray-max-replicas": ("ray_max_replicas", "engine ray: autoscaling upper bound (turns autoscaling on)"),
    "--ray-gpus-per-replica": ("ray_gpus_per_replica", "engine ray: GPUs per replica (0.5 shares a GPU; default 1 "
                               "where the cluster has GPUs, else 0)"),
    "--ray-cpus-per-replica": ("ray_cpus_per_replica", "engine ray: CPUs reserved per replica (default 1)"),
    "--ray-models-per-replica": ("ray_models_per_replica", "engine ray: models a replica keeps loaded (default 1)"),
    "--ray-proxy-port": ("ray_proxy_port", "engine ray: also start Ray Serve's HTTP proxy on this port (default: off)"),
    "--device": ("device", "cuda, cuda:N, mps or cpu (default: picked automatically)"),
    "--threads": ("threads", "CPU threads torch may use (default: torch's choice; fewer helps on a busy machine)"),
    "--ssl-certfile": ("ssl_certfile", "TLS certificate (PEM) for wss://"),
    "--ssl-keyfile": ("ssl_keyfile", "TLS private key (PEM)"),
    "--max-pixels": ("max_pixels", "largest image a job may send, in pixels"),
    "--max-frame-bytes": ("max_frame_bytes", "largest binary frame, in bytes"),
    "--max-queued-jobs": ("max_queued_jobs", "jobs one client may have in flight"),
    "--max-batch": ("max_batch", "largest batch count"),
    "--max-steps": ("max_steps", "most sampling steps per job"),
    "--keep-results-s": ("keep_results_s", "how long results kept for `resume` stay, in seconds"),
    "--max-connections": ("max_connections", "websockets open at once, in total"),
    "--max-connections-per-address": ("max_connections_per_address", "websockets open at once per client address"),
    "--hello-timeout-s": ("hello_timeout_s", "seconds a new websocket has to send its hello"),
    "--idle-timeout-s": ("idle_timeout_s", "close a session with no job in flight after this many idle seconds"),
    "--frames-timeout-s": ("frames_timeout_s", "seconds a submit's frames may take to arrive"),
    "--header-timeout-s": ("header_timeout_s", "seconds an HTTP request may take to send its headers"),
    "--max-connection-bytes": ("max_connection_bytes", "input frame bytes one connection may hold"),
    "--max-buffered-bytes": ("max_buffered_bytes", "input frame bytes all connections together may hold"),
    "--max-kept-jobs": ("max_kept_jobs", "keep_result jobs one client address may have kept at once"),
    "--auth-failures": ("auth_failures", "wrong tokens per address per minute before it is refused (0: no limit)"),
    "--max-model-pixels": ("max_model_pixels", "cap the model-side image area in pixels (saves memory and time)"),
    "--cache-gb": ("cache_gb", "memory for loaded pipelines, in GiB"),
    "--log-level": ("log_level", "debug, info, warning or error"),
    "--port-file": ("port_file", "write the bound port to this file once the server is ready"),
}


def cmd_serve(args: argparse.Namespace) -> int:
    from ..transport.security import UnsafeConfig, generate_token

    flags = {field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _) in SERVE_FLAGS.items()}
    flags.update(preload=False if args.no_preload else None, models_dirs=args.models_dir or None,
                 allow_pickle=args.allow_pickle or None, allow_origins=args.allow_origin or None,
                 log_json=args.log_json or None, ray_attach=args.ray_attach or None)
    try:
        config = build_config(args.config, flags)
    except (OSError, ValueError) as exc:
        print(f"underpaint serve: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_json)
    if config.token == "generate":
        config = replace(config, token=generate_token())
        print(f"underpaint serve: token for this run (shown once; give it to the plugin): {config.token}",
              flush=True)
    try:
        server, sock = make_server(config)
    except (UnsafeConfig, ValueError) as exc:  # ConfigError is a ValueError
        print(f"underpaint serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"underpaint serve: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    scheme = "wss" if config.ssl_certfile else "ws"
    logging.getLogger("underpaint").info("serving on %s://%s:%d%s", scheme, config.host, port, WS_PATH)
    if config.port_file:
        tmp = config.port_file.with_suffix(".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(config.port_file)
    server.run(sockets=[sock])
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..engine.registry import ModelRegistry

    config = build_config(args.config)
    dirs = [Path(d) for d in args.models_dir] or list(config.models_dirs)
    registry = ModelRegistry(dirs, allow_pickle=args.allow_pickle)
    default = registry.default_id()
    for spec in registry.specs():
        mark = "*" if spec.id == default else " "
        kind = "inpaint" if spec.inpaint else "base"
        print(f"{mark} {spec.id:40s} {spec.family:5s} {kind:7s} {spec.resolution:5d}px {spec.source:11s} {spec.note}")
    loras, tiny_vaes = extra_registries(replace(config, models_dirs=tuple(dirs)))
    for lora in loras.specs():
        print(f"  lora {lora.id:35s} {lora.family:5s}")
    for skipped in loras.skipped():
        print(f"  lora {skipped.path:35s} skipped: {skipped.reason}")
    for source in tiny_vaes.sources:
        print(f"  tiny VAE {source.name:31s} {'/'.join(source.families)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), steps=args.steps, size=args.size)


def cmd_install(args: argparse.Namespace) -> int:
    if args.host == "krita":
        from ..install_krita import build_zip, install
    else:
        from ..install_gimp import install

        build_zip = None
    dest = install(Path(args.dest) if args.dest else None)
    print(f"installed the {args.host} plugin into {dest}")
    if args.host == "krita":
        from ..install_krita import next_steps

        print(next_steps())
    if args.zip:
        if build_zip is None:
            print("--zip is only for krita", file=sys.stderr)
            return 2
        print(f"wrote {build_zip(Path(args.zip))}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="underpaint", description="Underpaint: img2img and inpainting for Krita "
                                  "and GIMP, served by a local or remote diffusers server.")
    top.add_argument("--version", action="version", version=f"underpaint {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the inference server", description="Run the inference server. "
                           "Every setting can also come from UNDERPAINT_<NAME> environment variables or a TOML "
                           "file (--config); flags win over the environment, which wins over the file.")
    serve.add_argument("--config", type=Path, help="TOML file with settings (a [server] table or top-level keys)")
    for flag, (_field, text) in SERVE_FLAGS.items():
        serve.add_argument(flag, default=None, help=text)
    serve.add_argument("--models-dir", action="append", default=[],
                       help="folder to scan for models (repeatable; ComfyUI models/checkpoints and A1111 "
                            "models/Stable-diffusion work as they are). None: the built-in demo model")
    serve.add_argument("--allow-pickle", action="store_true", help="also load pickle .ckpt files (unsafe)")
    serve.add_argument("--allow-origin", action="append", default=[], help="browser Origin allowed to connect")
    serve.add_argument("--log-json", action="store_true", help="structured JSON log lines")
    serve.add_argument("--ray-attach", action="store_true", help="engine ray: use the engine application a KubeRay "
                       "RayService deployed (import path underpaint.server.scale.app:build) instead of deploying it")
    serve.add_argument("--no-preload", action="store_true", help="load the default model at the first job, "
                       "not in the background at start-up")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the models the registry sees")
    models.add_argument("--models-dir", action="append", default=[])
    models.add_argument("--config", type=Path)
    models.add_argument("--allow-pickle", action="store_true")
    models.set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", help="run img2img and inpaint with the built-in demo model, end to end")
    demo.add_argument("--out", default="underpaint-demo", help="folder for the results and the contact sheet")
    demo.add_argument("--steps", type=int, default=8)
    demo.add_argument("--size", type=int, default=256, help="side of the sample image in pixels")
    demo.set_defaults(func=cmd_demo)

    install = sub.add_parser("install", help="install a host plugin into the user's profile")
    install.add_argument("host", choices=("krita", "gimp"))
    install.add_argument("--dest", help="krita: the pykrita folder; gimp: the GIMP profile folder "
                         "(default: the user's own)")
    install.add_argument("--zip", help="krita: also write an importable plugin zip here")
    install.set_defaults(func=cmd_install)
    return top


def main(argv: list[str] | None = None) -> int:
    stay_offline()
    args = parser().parse_args(argv)
    return args.func(args)

