"""Full-resolution (tiled) refine on CPU with the demo model (issue 14).

    python -m bench.tiled [--quick] [--out bench/results]

- cost: a tiled refine of a 2048² layer vs the ideal, tiles x the time of one model-sized run (a 512² fit run
  of the same steps, strength and guidance); target <= 1.3x.
- memory: peak RSS of a 4096² and of a 1024² tiled refine, each in a fresh process; the difference is compared
  with the image buffers the run holds (per-pixel arrays), which would not explain per-tile growth.
- seams: a flat-colour 2048² layer refined at strength 0.01 (and 0.3), tiled, with an exact denoiser and a
  linear VAE (``seam_doubles``): the largest deviation from the colour, tile borders included. The demo
  model's random weights cannot show this: its VAE turns a 0.01 latent change into 200+ levels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from .common import REPO, machine_info, test_card  # noqa: E402

STEPS, STRENGTH, GUIDANCE, SEED = 20, 0.3, 5.0, 1234


class _Never:
    cancelled = False

    def raise_if_cancelled(self) -> None:
        return None


def _engine(resolution: int = 512):
    from dataclasses import replace

    from underpaint.server.engine.demo_model import DEMO_SPEC, demo_source, ensure_demo_model
    from underpaint.server.engine.diffusers_engine import DiffusersEngine
    from underpaint.server.engine.registry import ModelSource

    ensure_demo_model()
    source = demo_source()

    class Registry:
        spec = replace(DEMO_SPEC, resolution=resolution)

        def specs(self):
            return [self.spec]

        def source(self, model_id):
            return ModelSource(self.spec, source.path)

        def get(self, model_id):
            return self.spec

        def default_id(self):
            return "demo"

    return DiffusersEngine(Registry(), device="cpu")


def _request(image: np.ndarray, tiled: bool, steps: int = STEPS, strength: float = STRENGTH):
    from underpaint.server.engine.interface import GenerationRequest

    return GenerationRequest(kind="img2img", model="demo", prompt="an oil painting", negative_prompt="",
                             strength=strength, steps=steps, guidance=GUIDANCE, seed=SEED, batch=1,
                             sampler="default", image=image, tiled=tiled)


def _timed(engine, request) -> float:
    t0 = time.perf_counter()
    engine.generate(request, lambda info: None, _Never())
    return time.perf_counter() - t0


def cost(side: int, reps: int) -> dict:
    from underpaint.server.engine import tile_plan, tiled

    engine = _engine()
    engine.pipelines("demo")
    tile = tiled.tile_side(512)
    count = len(tile_plan.layout(side // 8, side // 8, tile, tile // tiled.OVERLAP))
    small = np.ascontiguousarray(test_card(512)[..., :3])
    big = np.ascontiguousarray(test_card(side)[..., :3])
    _timed(engine, _request(small, False))  # warm-up
    one = min(_timed(engine, _request(small, False)) for _ in range(reps))
    full = min(_timed(engine, _request(big, True)) for _ in range(reps))
    ideal = count * one
    return {"side": side, "tiles": count, "one_tile_s": round(one, 3), "tiled_s": round(full, 3),
            "ideal_s": round(ideal, 3), "ratio": round(full / ideal, 3), "target": 1.3, "ok": full / ideal <= 1.3,
            "steps": STEPS, "strength": STRENGTH}


def _peak_child(side: int) -> dict:
    """One tiled refine of a ``side``² layer in this (fresh) process; peak RSS after it."""
    engine = _engine()
    engine.pipelines("demo")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:  # Linux: reset the peak (VmHWM) so loading the model's transient peak does not hide the run's
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    image = np.ascontiguousarray(test_card(side)[..., :3])
    t0 = time.perf_counter()
    engine.generate(_request(image, True, steps=4, strength=0.5), lambda info: None, _Never())
    return {"side": side, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_while_loading": before,
            "peak_rss": _vm_hwm() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmHWM")


def image_buffer_bytes(side: int) -> int:
    """The per-pixel buffers of a tiled refine at strength < 0.6, at their peak (the decode): the RGB input
    (uint8) and its float32 tensor, the source's decoded image and its reconstruction error (float32), the
    decoded result (float32) with diffusers' tiled-decode rows before they are joined (~(1/(1-overlap))² of it),
    and the uint8 output. Latents (1/64 of the pixels) and one tile's activations are not counted."""
    from underpaint.server.engine.tiled import VAE_TILE_OVERLAP

    pixels = side * side
    return pixels * (3 + 12 + 12 + 12 + 12 + int(12 / (1 - VAE_TILE_OVERLAP) ** 2) + 3)


def memory(sides: tuple[int, int]) -> dict:
    runs = {}
    for side in sides:
        out = subprocess.run([sys.executable, "-m", "bench.tiled", "--peak-child", str(side)], cwd=REPO,
                             capture_output=True, text=True, check=True, env=dict(os.environ))
        runs[side] = json.loads(out.stdout.strip().splitlines()[-1])
    small, big = sides
    growth = runs[big]["peak_rss"] - runs[small]["peak_rss"]
    buffers = image_buffer_bytes(big) - image_buffer_bytes(small)
    return {"runs": list(runs.values()), "peak_difference_mb": round(growth / 2**20, 1),
            "image_buffers_difference_mb": round(buffers / 2**20, 1), "ratio": round(growth / buffers, 3)}


def seam_doubles(scheduler, colour: np.ndarray):
    """A denoiser that predicts exactly the noise between its input and the flat latent of ``colour``
    (position-independent: any seam comes from the tiling) and a VAE that is 8x8 pooling / nearest upsampling."""
    import torch

    clean = torch.tensor(list(colour / 127.5 - 1.0) + [0.0], dtype=torch.float32).view(1, 4, 1, 1)

    class Oracle(torch.nn.Module):
        config = SimpleNamespace(in_channels=4, time_cond_proj_dim=None)
        dtype = torch.float32

        def forward(self, sample, t, encoder_hidden_states=None, return_dict=True, **_):
            alpha = scheduler.alphas_cumprod[int(t)]
            return ((sample - alpha.sqrt() * clean) / (1 - alpha).sqrt(),)

    class Linear(torch.nn.Module):
        config = SimpleNamespace(scaling_factor=1.0, force_upcast=False)
        dtype = torch.float32
        use_tiling = False

        def encode(self, x):
            pooled = torch.nn.functional.avg_pool2d(x, 8)
            latent = torch.cat([pooled, torch.zeros_like(pooled[:, :1])], dim=1)
            return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: latent))

        def decode(self, z):
            return SimpleNamespace(sample=torch.nn.functional.interpolate(z[:, :3], scale_factor=8))

    return Oracle(), Linear()


def seams(side: int) -> dict:
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline
    from underpaint.server.engine import tiled
    from underpaint.server.engine.diffusers_engine import steps_to_run
    from underpaint.server.engine.previews import X0Capture
    from underpaint.server.engine.samplers import make_scheduler

    base = _engine().pipelines("demo").img2img
    colour = np.array([200, 120, 40])
    image = np.empty((side, side, 3), np.uint8)
    image[...] = colour
    out = {}
    for sampler, strength, steps in (("euler", 0.01, 100), ("dpmpp_2m", 0.01, 100), ("euler", 0.3, 20)):
        scheduler = make_scheduler(sampler, base.scheduler)
        unet, vae = seam_doubles(scheduler, colour)
        pipe = SimpleNamespace(_execution_device="cpu", unet=unet, vae=vae, scheduler=scheduler, config={},
                               encode_prompt=lambda *a, **k: (torch.zeros(1, 77, 32), torch.zeros(1, 77, 32)))
        pipe.get_timesteps = lambda *a, p=pipe: StableDiffusionImg2ImgPipeline.get_timesteps(p, *a)
        request = _request(image, True, steps=steps, strength=strength)
        total = steps_to_run(scheduler, steps, strength)
        [result] = tiled.run_tiled(pipe, request, None, "demo", total, X0Capture(scheduler), lambda i: None,
                                   _Never(), 512)
        out[f"{sampler}@{strength}"] = int(np.abs(result.astype(int) - image).max())
    return {"side": side, "max_deviation_levels": out, "target": 2,
            "ok": all(v <= 2 for v in out.values())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1024² cost, 512²/1024² memory (a smoke run)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--peak-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--only", default="cost,memory,seams")
    parser.add_argument("--cost-side", type=int, default=2048)
    parser.add_argument("--memory-sides", default="1024,4096", help="the small and the big side, e.g. 1024,2048")
    args = parser.parse_args(argv)
    import torch

    if args.peak_child:
        print(json.dumps(_peak_child(args.peak_child)))
        return
    only = set(args.only.split(","))
    report: dict = {"machine": machine_info(), "torch_threads": torch.get_num_threads()}
    if "seams" in only:
        report["seams"] = seams(1024 if args.quick else 2048)
        print(json.dumps(report["seams"]), file=sys.stderr)
    if "cost" in only:
        report["cost"] = cost(1024 if args.quick else args.cost_side, 1)
        print(json.dumps(report["cost"]), file=sys.stderr)
    if "memory" in only:
        small, big = (int(v) for v in args.memory_sides.split(","))
        report["memory"] = memory((512, 1024) if args.quick else (small, big))
        print(json.dumps(report["memory"]), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"tiled-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
