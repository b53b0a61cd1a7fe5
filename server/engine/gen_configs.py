"""Regenerate the shipped offline config data under ``server/data/``.

``server/data/configs/<name>/`` holds diffusers config folders (JSON only, no weights) that let
single-file checkpoints load without the network; ``server/data/clip_tokenizer/`` holds the CLIP BPE
vocabulary once, derived from open_clip's ``bpe_simple_vocab_16e6.txt.gz`` (MIT).

    python -m underpaint.server.engine.gen_configs [--bpe PATH/bpe_simple_vocab_16e6.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

from .families.flux_configs import config_folders as flux_config_folders

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CONFIGS_DIR = DATA_DIR / "configs"
CLIP_TOKENIZER_DIR = DATA_DIR / "clip_tokenizer"

CLIP_MERGES = 49152 - 256 - 2  # merges CLIP uses from the BPE file
START, END = "<|startoftext|>", "<|endoftext|>"
DIFFUSERS_VERSION = "0.30.0"

_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "timestep_spacing": "leading",
}
_SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
_SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
_UNET_COMMON = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "center_input_sample": False,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
}
_CLIP_L = {  # openai/clip-vit-large-patch14 text tower (SD1, SDXL text_encoder)
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
}
_OPENCLIP_H = {  # OpenCLIP ViT-H/14 text tower without its last block (SD2)
    "hidden_act": "gelu",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 23,
    "projection_dim": 512,
}
_OPENCLIP_BIGG = {  # OpenCLIP ViT-bigG/14 text tower (SDXL text_encoder_2)
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}


def scheduler(class_name: str, prediction_type: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if class_name == "EulerDiscreteScheduler":
        extra = {"interpolation_type": "linear", "use_karras_sigmas": False, "sample_max_value": 1.0}
    return {"_class_name": class_name, "prediction_type": prediction_type, **_SCHEDULE, **extra}


def sd_unet(in_channels: int, cross_dim: int, sample_size: int, sd2: bool, upcast: bool) -> dict[str, Any]:
    cfg = {
        **_UNET_COMMON,
        "attention_head_dim": [5, 10, 20, 20] if sd2 else 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "cross_attention_dim": cross_dim,
        "down_block_types": _SD_DOWN,
        "up_block_types": _SD_UP,
        "in_channels": in_channels,
        "sample_size": sample_size,
    }
    if sd2:
        cfg.update(use_linear_projection=True, upcast_attention=upcast, dual_cross_attention=False)
        cfg.update(only_cross_attention=False, num_class_embeds=None)
    return cfg


def sdxl_unet(in_channels: int) -> dict[str, Any]:
    return {
        **_UNET_COMMON,
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280],
        "cross_attention_dim": 2048,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "projection_class_embeddings_input_dim": 2816,
        "transformer_layers_per_block": [1, 2, 10],
        "use_linear_projection": True,
        "in_channels": in_channels,
        "sample_size": 128,
    }


def vae(sample_size: int, sdxl: bool) -> dict[str, Any]:
    cfg = {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": sample_size,
        "scaling_factor": 0.13025 if sdxl else 0.18215,
    }
    if sdxl:
        cfg["force_upcast"] = True
    return cfg


def text_encoder(tower: dict[str, Any], with_projection: bool = False) -> dict[str, Any]:
    arch = "CLIPTextModelWithProjection" if with_projection else "CLIPTextModel"
    return {
        "architectures": [arch],
        "model_type": "clip_text_model",
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
        **tower,
    }


def tokenizer_config(pad_token: str) -> dict[str, Any]:
    """OpenAI CLIP pads with the end token, OpenCLIP (SD2, SDXL tokenizer_2) pads with "!" (id 0)."""
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": START,
        "eos_token": END,
        "unk_token": END,
        "pad_token": pad_token,
        "do_lower_case": True,
        "add_prefix_space": False,
        "errors": "replace",
    }


def _sd_folder(pipeline: str, sched: dict, unet: dict, vae_cfg: dict, te: dict, pad: str) -> dict:
    index = {
        "_class_name": pipeline,
        "_diffusers_version": DIFFUSERS_VERSION,
        "requires_safety_checker": False,
        "feature_extractor": [None, None],
        "safety_checker": [None, None],
        "image_encoder": [None, None],
        "scheduler": ["diffusers", sched["_class_name"]],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    return {
        "model_index.json": index,
        "scheduler/scheduler_config.json": sched,
        "unet/config.json": unet,
        "vae/config.json": vae_cfg,
        "text_encoder/config.json": te,
        "tokenizer/tokenizer_config.json": tokenizer_config(pad),
    }


def _sdxl_folder(pipeline: str, in_channels: int) -> dict:
    sched = scheduler("EulerDiscreteScheduler", "epsilon")
    index = {
        "_class_name": pipeline,
        "_diffusers_version": DIFFUSERS_VERSION,
        "force_zeros_for_empty_prompt": True,
        "requires_aesthetics_score": False,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "scheduler": ["diffusers", sched["_class_name"]],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    return {
        "model_index.json": index,
        "scheduler/scheduler_config.json": sched,
        "unet/config.json": sdxl_unet(in_channels),
        "vae/config.json": vae(1024, sdxl=True),
        "text_encoder/config.json": text_encoder(_CLIP_L),
        "text_encoder_2/config.json": text_encoder(_OPENCLIP_BIGG, with_projection=True),
        "tokenizer/tokenizer_config.json": tokenizer_config(END),
        "tokenizer_2/tokenizer_config.json": tokenizer_config("!"),
    }


def config_folders() -> dict[str, dict[str, dict[str, Any]]]:
    """Config folder name -> {relative file path -> JSON content}."""
    pndm = scheduler("PNDMScheduler", "epsilon")
    ddim_eps = scheduler("DDIMScheduler", "epsilon")
    ddim_v = scheduler("DDIMScheduler", "v_prediction")
    sd1_te, sd2_te = text_encoder(_CLIP_L), text_encoder(_OPENCLIP_H)
    sd, sd_inp = "StableDiffusionPipeline", "StableDiffusionInpaintPipeline"
    return {
        "sd1": _sd_folder(sd, pndm, sd_unet(4, 768, 64, False, False), vae(512, False), sd1_te, END),
        "sd1-inpaint": _sd_folder(sd_inp, pndm, sd_unet(9, 768, 64, False, False), vae(512, False), sd1_te, END),
        # SD 2.x 768-v (v-prediction); the 512 base model is epsilon
        "sd2": _sd_folder(sd, ddim_v, sd_unet(4, 1024, 96, True, True), vae(768, False), sd2_te, "!"),
        "sd2-base": _sd_folder(sd, ddim_eps, sd_unet(4, 1024, 64, True, False), vae(512, False), sd2_te, "!"),
        "sd2-inpaint": _sd_folder(sd_inp, ddim_eps, sd_unet(9, 1024, 64, True, False), vae(512, False), sd2_te, "!"),
        "sdxl": _sdxl_folder("StableDiffusionXLPipeline", 4),
        "sdxl-inpaint": _sdxl_folder("StableDiffusionXLInpaintPipeline", 9),
        **flux_config_folders(),
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


def write_configs(out_dir: Path = CONFIGS_DIR) -> list[Path]:
    written = []
    for name, files in config_folders().items():
        for rel, content in files.items():
            path = out_dir / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(content), encoding="utf-8")
            written.append(path)
    return written


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable unicode symbol table."""
    ranges = (("!", "~"), ("¡", "¬"), ("®", "ÿ"))
    printable = [c for lo, hi in ranges for c in range(ord(lo), ord(hi) + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes, strict=True)}


def clip_vocab(bpe_lines: list[str]) -> tuple[dict[str, int], list[str]]:
    """Vocabulary and merges as CLIPTokenizer expects them, from the lines of the BPE file."""
    merges = [line for line in bpe_lines[1 : CLIP_MERGES + 1]]
    if len(merges) != CLIP_MERGES or any(len(m.split()) != 2 for m in merges):
        raise ValueError(f"BPE file must hold at least {CLIP_MERGES} merge lines of two symbols each")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + [START, END]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def write_clip_tokenizer(bpe_gz: Path, out_dir: Path = CLIP_TOKENIZER_DIR) -> None:
    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")
    vocab, merges = clip_vocab(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--bpe", type=Path, help="open_clip's bpe_simple_vocab_16e6.txt.gz (rewrites vocab)")
    args = parser.parse_args(argv)
    print(f"wrote {len(write_configs())} config files under {CONFIGS_DIR}")
    if args.bpe:
        write_clip_tokenizer(args.bpe)
        print(f"wrote vocab.json and merges.txt under {CLIP_TOKENIZER_DIR}")


if __name__ == "__main__":
    main()
