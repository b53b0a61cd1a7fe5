"""The shipped offline config folders of Flux.1 (dev, schnell, Fill): what a transformer file of a ComfyUI
split layout needs beside it to load (``server/data/configs/flux1*``, written by gen_configs)."""

from __future__ import annotations

from typing import Any

_CLIP_L = {
    "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "attention_dropout": 0.0, "dropout": 0.0,
    "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "initializer_factor": 1.0,
    "initializer_range": 0.02, "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "num_attention_heads": 12,
    "num_hidden_layers": 12, "projection_dim": 768, "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2,
    "pad_token_id": 1,
}
_T5_XXL = {  # T5 v1.1 XXL, the encoder half
    "architectures": ["T5EncoderModel"], "model_type": "t5", "d_ff": 10240, "d_kv": 64, "d_model": 4096,
    "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
    "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06, "num_decoder_layers": 24,
    "num_heads": 64, "num_layers": 24, "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32, "tie_word_embeddings": False, "vocab_size": 32128, "eos_token_id": 1,
    "pad_token_id": 0, "decoder_start_token_id": 0,
}
_VAE = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3,
    "out_channels": 3, "latent_channels": 16, "layers_per_block": 2, "mid_block_add_attention": True,
    "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.3611, "shift_factor": 0.1159,
    "use_quant_conv": False, "use_post_quant_conv": False, "force_upcast": True,
}
_CLIP_TOKENIZER = {
    "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, "errors": "replace",
    "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>", "add_prefix_space": False,
}


def _scheduler(schnell: bool) -> dict[str, Any]:
    return {
        "_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 1.0 if schnell else 3.0,
        "use_dynamic_shifting": not schnell, "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    }


def _transformer(guidance: bool, fill: bool) -> dict[str, Any]:
    return {
        "_class_name": "FluxTransformer2DModel", "attention_head_dim": 128, "axes_dims_rope": [16, 56, 56],
        "guidance_embeds": guidance, "in_channels": 384 if fill else 64, "out_channels": 64 if fill else None,
        "joint_attention_dim": 4096, "num_attention_heads": 24, "num_layers": 19, "num_single_layers": 38,
        "patch_size": 1, "pooled_projection_dim": 768,
    }


def _folder(pipeline: str, guidance: bool, fill: bool, schnell: bool) -> dict[str, dict[str, Any]]:
    index = {
        "_class_name": pipeline, "_diffusers_version": "0.32.0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    return {
        "model_index.json": index,
        "scheduler/scheduler_config.json": _scheduler(schnell),
        "transformer/config.json": _transformer(guidance, fill),
        "vae/config.json": _VAE,
        "text_encoder/config.json": _CLIP_L,
        "text_encoder_2/config.json": _T5_XXL,
        "tokenizer/tokenizer_config.json": _CLIP_TOKENIZER,
    }


def config_folders() -> dict[str, dict[str, dict[str, Any]]]:
    """Folder name -> {relative path: JSON content}; the names are families.flux.FLUX1.configs and schnell's."""
    return {
        "flux1": _folder("FluxImg2ImgPipeline", guidance=True, fill=False, schnell=False),
        "flux1-schnell": _folder("FluxImg2ImgPipeline", guidance=False, fill=False, schnell=True),
        "flux1-fill": _folder("FluxFillPipeline", guidance=True, fill=True, schnell=False),
    }
