"""`underpaint serve | models | demo | run | install`."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from underpaint.protocol.vocabulary import WS_PATH

from .. import __version__
from ..config import build_config
from .batch import cmd_run
from .compose import extra_registries, make_server, stay_offline
from .logs import quiet_libraries, setup_logging
from .run_flags import RUN_KINDS_TEXT, add_run_arguments
from .serve_flags import SERVE_FLAGS, add_serve_arguments


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
    if config.log_level.lower() != "debug":
        quiet_libraries()  # after the checks: a refusal need not wait for the libraries to import
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
    from ..jobs.handlers import kinds_for
    from .settings_check import models_registry

    try:
        config = build_config(args.config)
        dirs = [Path(d) for d in args.models_dir] or list(config.models_dirs)
        registry = models_registry(dirs, allow_pickle=args.allow_pickle)
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"underpaint models: {exc}", file=sys.stderr)
        return 2
    default = registry.default_id()
    print(f"  {'model':40s} {'family':6s} {'kinds':32s} {'size':6s} {'source':11s} note")
    for spec in registry.specs():
        mark = "*" if spec.id == default else " "
        kinds = ",".join(kinds_for(spec.capabilities)) + ("  (inpaint)" if spec.inpaint else "")
        print(f"{mark} {spec.id:40s} {spec.family:6s} {kinds:32s} {spec.resolution:4d}px {spec.source:11s} "
              f"{spec.note}")
    print("* the default model: jobs that name no model run on it")
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

    quiet_libraries()
    return run_demo(Path(args.out), steps=args.steps, size=args.size)


def cmd_install(args: argparse.Namespace) -> int:
    if args.zip:  # only the zip: the user's profile and kritarc stay as they are
        if args.host != "krita" or args.dest:
            print("underpaint install: --zip is only for krita, and writes only the zip (leave out --dest)",
                  file=sys.stderr)
            return 2
        from ..install_krita import build_zip

        print(f"wrote {build_zip(Path(args.zip))}; import it in Krita with Tools > Scripts > Import Python Plugin "
              "from File, then restart Krita")
        return 0
    if args.host == "krita":
        from ..install_krita import install, next_steps
    else:
        from ..install_gimp import install, next_steps
    dest = install(Path(args.dest) if args.dest else None)
    print(f"installed the {args.host} plugin into {dest}")
    print(next_steps())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="underpaint", description="Underpaint: img2img and inpainting for Krita "
                                  "and GIMP, served by a local or remote diffusers server.")
    top.add_argument("--version", action="version", version=f"underpaint {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the inference server", usage="%(prog)s [options]",
                           description="Run the inference server. "
                           "Every setting can also come from UNDERPAINT_<NAME> environment variables or a TOML "
                           "file (--config); flags win over the environment, which wins over the file.")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the models the registry sees")
    models.add_argument("--models-dir", action="append", default=[], help="folder to scan (repeatable; default: "
                        "the models_dirs setting; none: the built-in demo model)")
    models.add_argument("--config", type=Path, help="TOML file with settings, as for serve")
    models.add_argument("--allow-pickle", action="store_true", help="also list pickle .ckpt files")
    models.set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", help="run img2img and inpaint with the built-in demo model, end to end")
    demo.add_argument("--out", default="underpaint-demo", help="folder for the results and the contact sheet")
    demo.add_argument("--steps", type=int, default=8)
    demo.add_argument("--size", type=int, default=256, help="side of the sample image in pixels")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help=f"{RUN_KINDS_TEXT} image files through a running server",
                         description=f"Run {RUN_KINDS_TEXT} over image files or folders through a running "
                         "server (the local one, or --server URL; a token comes from UNDERPAINT_TOKEN). Every "
                         "result is written to --out beside contact_sheet.png; the exit status is 1 when some image "
                         "failed, 2 when nothing could start.")
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)

    install = sub.add_parser("install", help="install a host plugin into the user's profile")
    install.add_argument("host", choices=("krita", "gimp"))
    install.add_argument("--dest", help="krita: the pykrita folder; gimp: the GIMP profile folder "
                         "(default: the user's own)")
    install.add_argument("--zip", help="krita: only write an importable plugin zip here (the profile is not "
                         "touched)")
    install.set_defaults(func=cmd_install)
    return top


def main(argv: list[str] | None = None) -> int:
    stay_offline()
    args = parser().parse_args(argv)
    return args.func(args)

