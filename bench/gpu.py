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
DRY_RUN_SIDE = 64
_TINY_VAE = {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}
_TINY_TEXT = {"num_hidden_layers": 1, "intermediate_size": 64}
DRY_RUN = {  # config overrides: same families and cross-attention widths, tiny everything else, native 64 px
    "sd1": {"unet": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "attention_head_dim": 8,
                     "sample_size": 8}, "vae": _TINY_VAE, "text_encoder": _TINY_TEXT},
    "sdxl": {"unet": {"block_out_channels": [32, 64, 64], "layers_per_block": 1, "attention_head_dim": [2, 4, 8],
                      "transformer_layers_per_block": [1, 1, 1], "sample_size": 8},
             "vae": _TINY_VAE, "text_encoder": _TINY_TEXT, "text_encoder_2": _TINY_TEXT},
}


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


def gpu_section(profile: Profile, work: Path, log, dry_run: bool = False) -> dict:
    """Section 6 on CUDA in fp16; ``dry_run`` runs the same code on the CPU with tiny fp32 models at 64x64
    (checks the section works where no GPU is; its numbers mean nothing)."""
    import torch

    if not dry_run and not torch.cuda.is_available():
        return {"skipped": "no CUDA GPU on this machine: section 6 needs one (it builds SD1.5/SDXL-size random "
                           "models and times them in fp16)"}
    device, precision, dtype = ("cpu", "fp32", torch.float32) if dry_run else ("cuda", "fp16", torch.float16)
    out: dict[str, Any] = {"device": "CPU dry run, tiny models" if dry_run else torch.cuda.get_device_name(0),
                           "precision": precision, "steps": profile.gpu_steps, "dry_run": dry_run, "models": {}}
    for model, config_name, native in MODELS:
        side = DRY_RUN_SIDE if dry_run else native
        folder = work / "gpu-models" / model
        log(f"gpu {model}: building random-weight model from server/data/configs/{config_name}")
        overrides = DRY_RUN[config_name] if dry_run else None
        build_random_model(config_name, folder, dtype, device=device, overrides=overrides)
        rgba = test_card(side).tobytes()
        args = ("--models-dir", str(folder), "--device", device, "--precision", precision, "--preload", model)
        entry: dict[str, Any] = {"side": side}
        with bench_server(work, *args, timeout=900) as server, \
                DirectWorker(work, "--model", model, "--device", device, "--models-dir", str(folder),
                             "--precision", precision) as direct:
            direct(side, profile.gpu_steps, 1.0)  # warm-up
            server_its, raw_its = [], []
            for _ in range(profile.gpu_reps):
                server_its += _server_its(server.url, model, side, profile, rgba, 1, warmups=0 if raw_its else 1)
                raw_its.append(profile.gpu_steps / direct(side, profile.gpu_steps, 1.0)[0])
            entry.update(server_its=summary(server_its), raw_eager_its=summary(raw_its),
                         ratio=ratio(statistics.median(server_its), statistics.median(raw_its)))
            if config_name == "sd1":
                entry["live"] = _live_loop(server.url, model, DRY_RUN_SIDE if dry_run else 512, profile.live_frames)
        log(f"gpu {model}: server {statistics.median(server_its):.2f} it/s, raw {statistics.median(raw_its):.2f} it/s")
        fast_args = (*args, "--channels-last") if dry_run else (*args, "--channels-last", "--compile-unet")
        entry["fast_settings"] = " ".join(fast_args[len(args):])
        try:
            with bench_server(work, *fast_args, timeout=900) as server:
                fast = _server_its(server.url, model, side, profile, rgba, profile.gpu_reps, warmups=2)
            entry["compiled_channels_last_its"] = summary(fast)
            entry["compile_speedup"] = ratio(statistics.median(fast), statistics.median(server_its))
        except Exception as exc:  # noqa: BLE001 - an optional setting; report why it did not run
            entry["compiled_channels_last_error"] = f"{type(exc).__name__}: {exc}"
        out["models"][model] = entry
    return out
