"""What a checkpoint's header says: its tensor names and shapes (safetensors header, or a weights-only torch load),
the SD family of an original-layout file, scheduler markers (v-prediction) and, for a file that holds no model,
what it is instead. Header data only (names and shapes), never weights."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

V_PRED_KEYS = ("v_pred",)
ZSNR_KEYS = ("ztsnr",)
MAX_HEADER_BYTES = 64 << 20
UNET_IN_KEY = "model.diffusion_model.input_blocks.0.0.weight"
SD1_CLIP_KEY = "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"


class NotACheckpoint(Exception):
    """A file that is not a loadable full SD checkpoint; the message says what it is instead."""


def what_else(keys: list[str]) -> str:
    """Why a file without a full SD UNet is skipped."""
    lower = [k.lower() for k in keys]
    if any("lora" in k or "lokr_" in k or "hada_" in k for k in lower):
        return "LoRA/LyCORIS weights, not a checkpoint"
    if any(k in ("emb_params", "string_to_param", "clip_l", "clip_g") for k in keys) or any(
        k.startswith("string_to_param.") for k in keys
    ):
        return "textual-inversion embedding, not a checkpoint"
    vae_prefixes = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.", "first_stage_model.", "vae.")
    if keys and all(k.startswith(vae_prefixes) for k in keys):
        return "VAE-only weights, not a checkpoint"
    if any(k.startswith("control_model.") or k.startswith("controlnet_") for k in keys):
        return "ControlNet weights, not a checkpoint"
    if any(k.startswith(("text_model.encoder.", "encoder.block.")) for k in keys):
        return "text-encoder weights (CLIP or T5), not a checkpoint: split-layout models pair them from text_encoders"
    return ("no Stable Diffusion UNet found (SD 1.x, 2.x, SDXL checkpoints) and no transformer of a known family "
            "(Flux.1 files in a diffusion_models or unet folder)")


def scheduler_hints(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Scheduler settings a checkpoint declares by marker keys (empty tensors, as NoobAI/Illustrious v-prediction
    SDXL fine-tunes carry them; ComfyUI reads the same): ``v_pred`` -> v-prediction, ``ztsnr`` -> zero terminal
    SNR (rescaled betas, trailing timesteps). A ``<stem>.config/scheduler`` folder beside the file wins."""
    hints: dict[str, Any] = {}
    if any(key in shapes for key in V_PRED_KEYS):
        hints["prediction_type"] = "v_prediction"
    if any(key in shapes for key in ZSNR_KEYS):
        hints.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    return hints


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor shapes by name and the ``__metadata__`` of a safetensors file, reading only its header."""
    with open(path, "rb") as f:
        raw_len = f.read(8)
        if len(raw_len) != 8:
            raise ValueError("file is shorter than a safetensors header")
        (n,) = struct.unpack("<Q", raw_len)
        size = os.fstat(f.fileno()).st_size
        if n < 2 or n > MAX_HEADER_BYTES or n > size - 8:
            raise ValueError(f"implausible safetensors header length {n} for a {size}-byte file")
        header = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, info in header.items():
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            raise ValueError(f"tensor entry {name!r} has no shape")
        shapes[name] = tuple(int(d) for d in info["shape"])
    return shapes, metadata if isinstance(metadata, dict) else {}


def read_pickle_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes from a zip-format torch checkpoint, memory-mapped and with ``weights_only`` (no code runs)."""
    import torch

    state: Any = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError("checkpoint does not hold a state dict")
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def detect_single_file(shapes: dict[str, tuple[int, ...]]) -> tuple[str, bool]:
    """(family, inpaint) of an original-layout checkpoint from its key names and shapes."""
    keys = list(shapes)
    if UNET_IN_KEY not in shapes:
        raise NotACheckpoint(what_else(keys))
    unet_in = shapes[UNET_IN_KEY]
    in_channels = unet_in[1] if len(unet_in) == 4 else -1
    if in_channels not in (4, 9):
        raise NotACheckpoint(f"UNet with {in_channels} input channels (e.g. pix2pix) is not supported")
    if not any(k.startswith("first_stage_model.") for k in keys):
        raise NotACheckpoint("checkpoint has no VAE weights (first_stage_model.*)")
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        family = "sdxl"
    elif any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        raise NotACheckpoint("SDXL refiner checkpoints are not supported")
    elif any(k.startswith("cond_stage_model.model.") for k in keys):
        family = "sd2"
    elif any(k.startswith("cond_stage_model.transformer.") for k in keys):
        if SD1_CLIP_KEY not in shapes:
            raise NotACheckpoint("SD 1.x checkpoint with an old text-encoder key layout (no text_model.*)")
        family = "sd1"
    else:
        raise NotACheckpoint("checkpoint has no text-encoder weights")
    return family, in_channels == 9
