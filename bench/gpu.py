"""Section 6 (CUDA only): SD1.5- and SDXL-size models with random weights, through the server and raw.

The models are built in code from the shipped configs (``server/data/configs/sd1`` and ``sdxl``; no download),
saved as fp16 diffusers folders, then served by ``bench.serve`` exactly like a user's model. Measured: it/s
end to end through the websocket against a raw eager diffusers call on the same weights in this process; the
same through a server with ``channels_last`` + ``compile_unet``; and a live-mode loop (512x512, 2-step
img2img on a slowly changing image, per-frame latency including transfer).
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from .common import Profile, bench_server, ratio, summary, test_card
from .direct import DirectWorker
from .jobs import connect, make_submit, run_job

MODELS = (("sd15", "sd1", 512), ("sdxl", "sdxl", 1024))  # bench id, shipped config, native side


def build_random_model(config_name: str, dest: Path, dtype: Any, device: str = "cpu",
                       overrides: dict[str, dict] | None = None) -> Path:
    """Instantiate every component of a shipped config folder with random weights; save it at ``dest``.

    ``overrides`` maps a component folder (``unet``...) to config values to change (tests shrink models).
    """
    import diffusers
    import torch
    import transformers
    from underpaint.server.engine.gen_configs import CLIP_TOKENIZER_DIR, CONFIGS_DIR

    if (dest / "model_index.json").is_file():
        return dest
    source = dest.with_name(dest.name + ".config")
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(CONFIGS_DIR / config_name, source)
    index = json.loads((source / "model_index.json").read_text())
    components: dict[str, Any] = {}
    with torch.device(device):
        for name, spec in index.items():
            if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
                continue
            folder, cls_name = source / name, spec[1]
            changes = (overrides or {}).get(name, {})
            if cls_name == "CLIPTokenizer":
                for file in ("vocab.json", "merges.txt"):
                    shutil.copyfile(CLIP_TOKENIZER_DIR / file, folder / file)
                components[name] = transformers.CLIPTokenizer.from_pretrained(str(folder))
            elif cls_name.startswith("CLIPTextModel"):
                config = transformers.CLIPTextConfig.from_pretrained(str(folder), **changes)
                components[name] = getattr(transformers, cls_name)(config).eval()
            else:
                cls = getattr(diffusers, cls_name)
                config = {**cls.load_config(str(folder)), **changes}
                component = cls.from_config(config)
                components[name] = component.eval() if hasattr(component, "eval") else component
    pipe_cls = getattr(diffusers, index["_class_name"])
    extra = {"requires_safety_checker": False} if "requires_safety_checker" in index else {}
    optional = {k: None for k in ("safety_checker", "feature_extractor", "image_encoder") if k in index}
    pipe = pipe_cls(**components, **optional, **extra)
    pipe.to(dtype=dtype)
    pipe.save_pretrained(str(dest), safe_serialization=True)
    shutil.rmtree(source, ignore_errors=True)
    return dest


def _server_its(url: str, model: str, side: int, profile: Profile, rgba: bytes, reps: int,
                warmups: int = 1) -> list[float]:
    client = connect(url, "bench-gpu")
    try:
        for _ in range(warmups):
            run_job(client, make_submit(model, profile.gpu_steps, 1.0), rgba, side)
        return [profile.gpu_steps / run_job(client, make_submit(model, profile.gpu_steps, 1.0), rgba, side).total_s
                for _ in range(reps)]
    finally:
        client.close(wait=True)


def _live_loop(url: str, model: str, side: int, frames: int) -> dict:
    """512x512, steps 4 at strength 0.5 (2 denoising steps), the image shifting 2 px per frame."""
    client = connect(url, "bench-live")
    base = test_card(side + 2 * frames)
    latencies = []
    try:
        for i in range(frames + 1):
            frame = np.ascontiguousarray(base[i * 2 : i * 2 + side, i * 2 : i * 2 + side]).tobytes()
            run = run_job(client, make_submit(model, 4, 0.5), frame, side)
            if i:  # frame 0 is the warm-up
                latencies.append(run.total_s)
    finally:
        client.close(wait=True)
    ordered = sorted(latencies)
    return {"side": side, "denoising_steps": 2, "latency_s": summary(latencies),
            "p90_s": ordered[int(0.9 * (len(ordered) - 1))], "fps": 1 / statistics.median(latencies)}


def gpu_section(profile: Profile, work: Path, log) -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU on this machine: section 6 needs one (it builds SD1.5/SDXL-size random "
                           "models and times them in fp16)"}
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "steps": profile.gpu_steps, "models": {}}
    for model, config_name, side in MODELS:
        folder = work / "gpu-models" / model
        log(f"gpu {model}: building random-weight model from server/data/configs/{config_name}")
        build_random_model(config_name, folder, torch.float16, device="cuda")
        rgba = test_card(side).tobytes()
        args = ("--models-dir", str(folder), "--device", "cuda", "--precision", "fp16", "--preload", model)
        entry: dict[str, Any] = {"side": side}
        with bench_server(work, *args, timeout=900) as server:
            direct = DirectWorker(work, "--model", model, "--device", "cuda", "--models-dir", str(folder),
                                  "--precision", "fp16")
            direct(side, profile.gpu_steps, 1.0)
            server_its, raw_its = [], []
            for _ in range(profile.gpu_reps):
                server_its += _server_its(server.url, model, side, profile, rgba, 1, warmups=0 if raw_its else 1)
                raw_its.append(profile.gpu_steps / direct(side, profile.gpu_steps, 1.0)[0])
            entry.update(server_its=summary(server_its), raw_eager_its=summary(raw_its),
                         ratio=ratio(statistics.median(server_its), statistics.median(raw_its)))
            if model == "sd15":
                entry["live"] = _live_loop(server.url, model, 512, profile.live_frames)
            direct.close()
        log(f"gpu {model}: server {statistics.median(server_its):.2f} it/s, raw {statistics.median(raw_its):.2f} it/s")
        fast_args = (*args, "--channels-last", "--compile-unet")
        try:
            with bench_server(work, *fast_args, timeout=900) as server:
                fast = _server_its(server.url, model, side, profile, rgba, profile.gpu_reps, warmups=2)
            entry["compiled_channels_last_its"] = summary(fast)
            entry["compile_speedup"] = ratio(statistics.median(fast), statistics.median(server_its))
        except Exception as exc:  # noqa: BLE001 - an optional setting; report why it did not run
            entry["compiled_channels_last_error"] = f"{type(exc).__name__}: {exc}"
        out["models"][model] = entry
    return out

