"""Tiny LoRA files for the demo model, written in the two key layouts painters' files come in."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

ATTENTION = (".attn1.to_q", ".attn1.to_k", ".attn1.to_v", ".attn1.to_out.0", ".attn2.to_q", ".attn2.to_k",
             ".attn2.to_v", ".attn2.to_out.0")
TEXT = (".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj", ".self_attn.out_proj")


def _targets(module: torch.nn.Module, suffixes: tuple[str, ...]) -> list[tuple[str, torch.nn.Linear]]:
    return [(n, m) for n, m in module.named_modules() if n.endswith(suffixes) and isinstance(m, torch.nn.Linear)]


def lora_weights(unet: torch.nn.Module, text_encoder: torch.nn.Module | None, seed: int, rank: int = 4,
                 scale: float = 0.5) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"unet.<module>" | "text_encoder.<module>": (down (r, in), up (out, r))}`` with random values."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    parts = [("unet", unet, ATTENTION)] + ([("text_encoder", text_encoder, TEXT)] if text_encoder else [])
    for prefix, module, suffixes in parts:
        for name, linear in _targets(module, suffixes):
            down = torch.randn(rank, linear.in_features, generator=gen) * scale
            up = torch.randn(linear.out_features, rank, generator=gen) * scale
            out[f"{prefix}.{name}"] = (down, up)
    return out


def write_diffusers(path: Path, weights: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Path:
    """The diffusers/peft layout: ``unet.<module>.lora_A.weight`` / ``lora_B.weight`` (alpha = rank)."""
    tensors = {}
    for key, (down, up) in weights.items():
        tensors[f"{key}.lora_A.weight"] = down.contiguous()
        tensors[f"{key}.lora_B.weight"] = up.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def write_kohya(path: Path, weights: dict[str, tuple[torch.Tensor, torch.Tensor]], alpha: float | None = None) -> Path:
    """kohya's layout: ``lora_unet_<module_with_underscores>.lora_down.weight`` / ``lora_up.weight`` / ``alpha``."""
    tensors = {}
    for key, (down, up) in weights.items():
        prefix, _, module = key.partition(".")
        name = ("lora_unet_" if prefix == "unet" else "lora_te_") + module.replace(".", "_")
        tensors[f"{name}.lora_down.weight"] = down.contiguous()
        tensors[f"{name}.lora_up.weight"] = up.contiguous()
        tensors[f"{name}.alpha"] = torch.tensor(float(alpha if alpha is not None else down.shape[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def write_sd15_shaped(path: Path) -> Path:
    """A LoRA shaped for SD 1.x (cross-attention width 768): another family than the demo model's."""
    tensors = {
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": torch.zeros(4, 768),
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": torch.zeros(320, 4),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
