"""Tiny real SD 1.x / SDXL pipelines, written as original-layout single-file checkpoints (test helper)."""

from __future__ import annotations

import json
from pathlib import Path

from underpaint.server.engine.gen_configs import bytes_to_unicode

START, END = "<|startoftext|>", "<|endoftext|>"
VAE_LEVELS = 4


def write_byte_tokenizer(folder: Path) -> None:
    """Offline CLIP tokenizer: the 256 byte symbols, each also with </w>, plus the specials; no merges."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [START, END]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * VAE_LEVELS,
        up_block_types=("UpDecoderBlock2D",) * VAE_LEVELS,
        latent_channels=4,
        layers_per_block=1,
        sample_size=128,
    )


def _text_config(hidden: int, projection: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=514,
        hidden_size=hidden,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=projection,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_byte_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def tiny_pipeline(tmp: Path, in_channels: int = 4):
    """A tiny SD 1.x-layout img2img pipeline with random (seeded) weights."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    return StableDiffusionImg2ImgPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(32, 32)),
        tokenizer=_tokenizer(tmp / "tok"),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_xl_pipeline(tmp: Path):
    """A tiny SDXL-layout img2img pipeline: OpenAI CLIP (32 wide) + OpenCLIP with projection (48 wide)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    time_dim, pooled = 8, 48
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=pooled + 6 * time_dim,
        cross_attention_dim=32 + 48,
    )
    return StableDiffusionXLImg2ImgPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(32, 32)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(48, pooled)),
        tokenizer=_tokenizer(tmp / "tok"),
        tokenizer_2=_tokenizer(tmp / "tok2"),
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        requires_aesthetics_score=False,
        add_watermarker=False,
    )


def original_state_dict(pipe) -> dict:
    """The pipeline's weights in the original single-file key layout, plus typical extra keys."""
    import torch
    from ldm_layout import (
        SDXL_CLIP_PREFIX,
        SDXL_OPEN_CLIP_PREFIX,
        clip_to_ldm,
        open_clip_to_ldm,
        unet_to_ldm,
        vae_to_ldm,
    )

    state = {}
    state.update(unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config.layers_per_block))
    state.update(vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.up_block_types)))
    if getattr(pipe, "text_encoder_2", None) is not None:
        state.update(clip_to_ldm(pipe.text_encoder.state_dict(), 77, SDXL_CLIP_PREFIX))
        state.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), SDXL_OPEN_CLIP_PREFIX))
    else:
        state.update(clip_to_ldm(pipe.text_encoder.state_dict(), 77))
    state["alphas_cumprod"] = torch.linspace(1.0, 0.01, 1000)  # present in real LDM checkpoints
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def write_single_file(pipe, checkpoint: Path) -> Path:
    """Save ``pipe`` as ``checkpoint`` (original layout) and its configs as ``<stem>.config/``."""
    from safetensors.torch import save_file

    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_state_dict(pipe), str(checkpoint))
    config_dir = checkpoint.with_name(checkpoint.stem + ".config")
    pipe.save_pretrained(str(config_dir), safe_serialization=True)
    for weights in [*config_dir.rglob("*.safetensors"), *config_dir.rglob("*.bin")]:
        weights.unlink()
    return checkpoint
