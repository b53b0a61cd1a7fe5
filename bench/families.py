"""Server ÷ raw diffusers pipeline on a tiny random Flux.1 model, side by side in one process.

    python -m bench.families [--side 256] [--steps 8] [--reps 7]

The model is built in code (tests/support/tiny_families.py) and saved as a diffusers folder. Alternating, one
REST img2img job through the real app (in-process uvicorn, the model-side area capped at side², so the job
runs the model at exactly side × side) and one raw ``FluxImg2ImgPipeline`` call on the same weights, at the
same size, steps and seed; prints the medians and their ratio as JSON. On a CPU the tiny model's compute is
small next to the HTTP and PNG work, so the ratio there overstates what a real model sees.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import common  # noqa: F401 - sets the offline Hugging Face environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.families")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)

    import httpx
    import torch
    from diffusers import FluxImg2ImgPipeline
    from PIL import Image
    from underpaint.server.cli.compose import build_engine, make_server
    from underpaint.server.config import ServerConfig

    sys.path.insert(0, str(common.REPO / "tests"))
    from support.tiny_families import build_tiny_flux

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-families-") as tmp:
        folder = build_tiny_flux(Path(tmp) / "models" / "flux-tiny")
        config = ServerConfig(port=0, log_level="warning", models_dirs=(folder.parent,),
                              max_model_pixels=args.side * args.side)
        server, sock = make_server(config, build_engine(config))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/jobs"
        rgb = common.test_card(args.side)[..., :3]
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG")
        params = {"model": "flux-tiny", "prompt": "a red boat", "strength": 1.0, "steps": args.steps, "seed": 7,
                  "guidance": 3.5, "resolution": "fit"}
        raw = FluxImg2ImgPipeline.from_pretrained(str(folder), local_files_only=True)
        raw.set_progress_bar_config(disable=True)

        def via_server() -> float:
            t0 = time.perf_counter()
            response = httpx.post(url, files={"image": ("in.png", buf.getvalue(), "image/png")},
                                  data={"params": json.dumps(params)}, timeout=600)
            assert response.status_code == 200, response.text
            return time.perf_counter() - t0

        def direct() -> float:
            t0 = time.perf_counter()
            raw(prompt=params["prompt"], image=Image.fromarray(rgb), height=args.side, width=args.side, strength=1.0,
                num_inference_steps=args.steps, guidance_scale=3.5, generator=torch.Generator().manual_seed(7),
                output_type="np")
            return time.perf_counter() - t0

        via_server(), direct()  # warm-up: loads, first-call allocations
        server_s, raw_s = [], []
        for _ in range(args.reps):
            server_s.append(via_server())
            raw_s.append(direct())
        server.should_exit = True
        thread.join(timeout=30)
    result = {"model": "tiny random Flux.1 (1+1 layers, 16 latent channels)", "side": args.side,
              "steps": args.steps, "reps": args.reps, "server_s": statistics.median(server_s),
              "raw_s": statistics.median(raw_s), "ratio": statistics.median(server_s) / statistics.median(raw_s),
              "torch_threads": torch.get_num_threads(), "device": "cpu"}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
