"""The bench server: the real app (``make_server``) with a bench model registry, in its own process.

    python -m bench.serve --port-file F [--demo-sides 64,512,1024] [--models-dir D --device cuda ...]

``--demo-sides`` adds ids ``demo-<side>``: the built-in demo weights with native resolution ``side``, so a
``side``-square image runs through the model at exactly that size (no server-side rescale) and the bench can
compare with a direct diffusers call at the same size. All of them share one loaded copy of the demo.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from underpaint.server.config import ServerConfig
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import ModelSpec
from underpaint.server.engine.loader import Pipelines
from underpaint.server.engine.registry import ModelRegistry, ModelSource

from . import common  # noqa: F401 - sets the offline Hugging Face environment (HF imports are lazy)


def demo_side_id(side: int) -> str:
    return f"demo-{side}"


class BenchRegistry:
    """A ModelRegistry plus ``demo-<side>`` aliases of the demo model at other native resolutions."""

    def __init__(self, base: ModelRegistry, sides: list[int]) -> None:
        self.base = base
        demo = base.source("demo")
        self.aliases = {demo_side_id(s): ModelSource(replace(demo.spec, id=demo_side_id(s), resolution=s), demo.path)
                        for s in sides}

    def specs(self) -> list[ModelSpec]:
        return [*self.base.specs(), *(a.spec for a in self.aliases.values())]

    def get(self, model_id: str) -> ModelSpec:
        return self.source(model_id).spec

    def source(self, model_id: str) -> ModelSource:
        return self.aliases.get(model_id) or self.base.source(model_id)

    def default_id(self) -> str:
        return self.base.default_id()


class BenchEngine(DiffusersEngine):
    """DiffusersEngine whose demo aliases share the demo's loaded pipelines (one load, one cache entry)."""

    def _load(self, source: ModelSource) -> Pipelines:
        registry = self._registry
        if isinstance(registry, BenchRegistry) and source.spec.id in registry.aliases:
            source = registry.base.source("demo")
        return super()._load(source)


def build_engine(args: argparse.Namespace) -> BenchEngine:
    dirs = [Path(d) for d in args.models_dir]
    sides = [int(s) for s in args.demo_sides.split(",") if s] if args.demo_sides else []
    registry = BenchRegistry(ModelRegistry(dirs), sides)
    return BenchEngine(registry, device=args.device, precision=args.precision, channels_last=args.channels_last,
                       compile_unet=args.compile_unet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--demo-sides", default="", help="comma-separated sides for demo-<side> aliases")
    parser.add_argument("--models-dir", action="append", default=[])
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, choices=("fp16", "bf16", "fp32"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile-unet", action="store_true")
    parser.add_argument("--preload", default="", help="model id to load before serving")
    parser.add_argument("--max-pixels", type=int, default=8192 * 8192)
    parser.add_argument("--live-abandon", type=float, default=None, help="share of a live frame's steps before "
                        "which a newer frame abandons it (server.jobs.live.ABANDON_BEFORE; 0: never)")
    parser.add_argument("--max-model-pixels", type=int, default=None, help="cap on the model-side image area")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from underpaint.server.cli.compose import make_server

    if args.live_abandon is not None:
        from underpaint.server.jobs import live

        live.ABANDON_BEFORE = args.live_abandon
    engine = build_engine(args)
    if args.preload:
        engine.pipelines(args.preload)
    config = ServerConfig(port=0, log_level="warning", max_pixels=args.max_pixels,
                          max_frame_bytes=args.max_pixels * 16 + 4096, max_model_pixels=args.max_model_pixels)
    server, sock = make_server(config, engine)
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(f"{sock.getsockname()[1]}\n")
    tmp.replace(args.port_file)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
