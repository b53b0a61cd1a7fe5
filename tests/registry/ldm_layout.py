"""Test-only converter: diffusers state dicts -> original (LDM / A1111 / ComfyUI) single-file key layout.

The inverse of what diffusers.loaders.single_file_utils reads, for SD 1.x-style UNets (any number of
blocks and layers per block, SDXL's label_emb too), the AutoencoderKL, the OpenAI CLIP text model and
the OpenCLIP text model (SD 2.x, SDXL's second encoder).
"""

from __future__ import annotations

import re

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
OPEN_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _split(key: str, head: str) -> str | None:
    return key[len(head) + 1 :] if key.startswith(head + ".") else None


def _resnet(rest: str) -> str:
    name, _, param = rest.rpartition(".")
    return f"{_UNET_RESNET.get(name, name)}.{param}"


def unet_key(key: str, layers_per_block: int, up_has_attention: dict[int, bool]) -> str:
    """Original name of one diffusers UNet parameter."""
    step = layers_per_block + 1
    for new, old in _UNET_FIXED.items():
        if (rest := _split(key, new)) is not None:
            return f"{old}.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * step + layer
        return f"input_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{index}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * step + layers_per_block}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key):
        if m[1] == "attentions":
            return f"middle_block.1.{m[3]}"
        return f"middle_block.{2 * int(m[2])}.{_resnet(m[3])}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * step + layer
        return f"output_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{index}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        slot = 2 if up_has_attention[block] else 1
        return f"output_blocks.{block * step + layers_per_block}.{slot}.conv.{m[2]}"
    raise KeyError(f"no original name for UNet key {key}")


def unet_to_ldm(state: dict[str, torch.Tensor], layers_per_block: int) -> dict[str, torch.Tensor]:
    up_blocks = {int(k.split(".")[1]) for k in state if k.startswith("up_blocks.")}
    has_attn = {b: any(k.startswith(f"up_blocks.{b}.attentions.") for k in state) for b in up_blocks}
    return {UNET_PREFIX + unet_key(k, layers_per_block, has_attn): v for k, v in state.items()}


def vae_key(key: str, num_up_blocks: int) -> tuple[str, bool]:
    """(original name, is an attention projection stored as a 1x1 conv)."""
    side, _, rest = key.partition(".")
    if key in ("encoder.conv_norm_out.weight", "encoder.conv_norm_out.bias"):
        return key.replace("conv_norm_out", "norm_out"), False
    if key in ("decoder.conv_norm_out.weight", "decoder.conv_norm_out.bias"):
        return key.replace("conv_norm_out", "norm_out"), False
    if m := re.match(r"(down|up)_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest):
        block = int(m[2]) if m[1] == "down" else num_up_blocks - 1 - int(m[2])
        return f"{side}.{m[1]}.{block}.block.{m[3]}.{m[4].replace('conv_shortcut', 'nin_shortcut')}", False
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", rest):
        return f"{side}.down.{m[1]}.downsample.conv.{m[2]}", False
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", rest):
        return f"{side}.up.{num_up_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}", False
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", rest):
        return f"{side}.mid.block_{int(m[1]) + 1}.{m[2].replace('conv_shortcut', 'nin_shortcut')}", False
    if m := re.match(r"mid_block\.attentions\.0\.(.+)\.(weight|bias)", rest):
        return f"{side}.mid.attn_1.{_VAE_ATTN[m[1]]}.{m[2]}", m[1] != "group_norm"
    return key, False  # conv_in, conv_out, quant_conv, post_quant_conv keep their names


def vae_to_ldm(state: dict[str, torch.Tensor], num_up_blocks: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        name, as_conv = vae_key(key, num_up_blocks)
        if as_conv and value.ndim == 2:
            value = value[:, :, None, None]
        out[VAE_PREFIX + name] = value
    return out


def clip_to_ldm(
    state: dict[str, torch.Tensor], max_positions: int, prefix: str = CLIP_PREFIX
) -> dict[str, torch.Tensor]:
    """OpenAI CLIP text model (flattened in transformers >= 5.6 or not) plus the position_ids buffer."""
    out = {}
    for key, value in state.items():
        full = key if key.startswith("text_model.") else "text_model." + key
        out[prefix + full] = value
    out[prefix + "text_model.embeddings.position_ids"] = torch.arange(max_positions)[None]
    return out


_OPEN_CLIP_FIXED = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def open_clip_to_ldm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OpenCLIP layout: fused q/k/v ``in_proj``, ``resblocks``, a transposed ``text_projection``."""
    flat = {k.removeprefix("text_model."): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in flat.items():
        if key in _OPEN_CLIP_FIXED:
            out[prefix + _OPEN_CLIP_FIXED[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif m := re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
            layer, module, param = m[1], m[2], m[3]
            block = f"{prefix}transformer.resblocks.{layer}."
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                if module.endswith("q_proj"):
                    parts = [flat[f"encoder.layers.{layer}.self_attn.{x}_proj.{param}"] for x in "qkv"]
                    out[f"{block}attn.in_proj_{param}"] = torch.cat(parts)
            else:
                out[f"{block}{_OPEN_CLIP_LAYER[module]}.{param}"] = value
        else:
            raise KeyError(f"no OpenCLIP name for text-encoder key {key}")
    return out
