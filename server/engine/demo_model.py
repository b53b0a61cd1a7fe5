"""A tiny, randomly initialised Stable Diffusion model built in code.

It has the real architecture (CLIP text encoder, 4-level VAE with 1/8 latents, a 4-channel and a
9-channel UNet) so the whole diffusers path runs without downloads, but its outputs are noise.
It is saved once with ``save_pretrained`` and then loaded like any other diffusers folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from .interface import ModelSpec
from .model_source import ModelSource

DEMO_VERSION = "demo-v1"
INPAINT_SUBFOLDER = "unet_inpaint"
CROSS_ATTENTION_DIM = 32  # the text embedding width: what tells a LoRA made for the demo model
_SEED = 20240611
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
_BUILD_LOCK = threading.Lock()  # the build seeds torch's global RNG: one build per process at a time

DEMO_SPEC = ModelSpec(
    id="demo",
    name="Demo (random weights)",
    family="demo",
    inpaint=False,  # the main UNet is 4-channel; inpaint jobs use its extra 9-channel UNet
    resolution=512,
    source="builtin",
    note="Built-in tiny model with random weights: it exercises the pipeline but outputs noise.",
)


def default_cache_dir() -> Path:
    env = os.environ.get("UNDERPAINT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "underpaint"


def demo_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / DEMO_VERSION


def demo_source(cache_dir: Path | None = None) -> ModelSource:
    """DEMO_SPEC and where the demo lives (or will be built) under ``cache_dir``."""
    return ModelSource(DEMO_SPEC, demo_dir(cache_dir))


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level map: every byte to a printable unicode character."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def write_tokenizer(folder: Path) -> int:
    """Write a byte-level CLIP tokenizer with no merges; return its vocabulary size."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [_BOS, _EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return len(tokens)


def _unet(in_channels: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
    ).eval()


def _text_encoder(vocab_size: int, bos_id: int, eos_id: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    return CLIPTextModel(config).eval()


def _scheduler():
    from diffusers import PNDMScheduler

    # Stable Diffusion 1.5's default scheduler settings.
    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )


def build_demo(folder: Path) -> None:
    """Build the demo model deterministically and save it as a diffusers folder at ``folder``."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline
    from transformers import CLIPTokenizer

    tok_dir = folder / "_tokenizer_src"
    vocab_size = write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), model_max_length=77)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        unet = _unet(4)
        torch.manual_seed(_SEED + 1)
        unet_inpaint = _unet(9)
        torch.manual_seed(_SEED + 2)
        vae = _vae()
        torch.manual_seed(_SEED + 3)
        text_encoder = _text_encoder(vocab_size, vocab_size - 2, vocab_size - 1)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    unet_inpaint.save_pretrained(str(folder / INPAINT_SUBFOLDER), safe_serialization=True)
    shutil.rmtree(tok_dir)


def ensure_demo_model(cache_dir: Path | None = None) -> Path:
    """Return the demo model folder, building it on first use (safe against concurrent builders)."""
    final = demo_dir(cache_dir)
    if (final / "model_index.json").is_file():
        return final
    with _BUILD_LOCK:
        if (final / "model_index.json").is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEMO_VERSION}-", dir=final.parent))
        try:
            build_demo(tmp)
            try:
                os.rename(tmp, final)  # atomic; fails if another process won the race
            except OSError:
                if not (final / "model_index.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
