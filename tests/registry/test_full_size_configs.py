"""Opt-in: full-size random checkpoints in the original layout load with the SHIPPED configs, offline.

Slow and heavy (SD1 ~1 min and 2 GB of disk, SDXL ~5 min, 7 GB of disk and ~15 GB of RAM), so it only
runs with UNDERPAINT_FULL_SIZE_TESTS=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from ldm_layout import (
    OPEN_CLIP_PREFIX,
    SDXL_CLIP_PREFIX,
    SDXL_OPEN_CLIP_PREFIX,
    clip_to_ldm,
    open_clip_to_ldm,
    unet_to_ldm,
    vae_to_ldm,
)
from underpaint.server.engine.gen_configs import CONFIGS_DIR
from underpaint.server.engine.registry import ModelRegistry
from underpaint.server.engine.single_file import load_single_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("UNDERPAINT_FULL_SIZE_TESTS") != "1", reason="set UNDERPAINT_FULL_SIZE_TESTS=1"),
]


def random_half(cls, folder: Path) -> torch.nn.Module:
    """The component built from a shipped config, filled with small seeded random fp16 values."""
    from transformers import CLIPTextConfig, PreTrainedModel

    with torch.device("meta"):
        if issubclass(cls, PreTrainedModel):
            module = cls(CLIPTextConfig.from_pretrained(folder))
        else:
            module = cls.from_config(cls.load_config(folder))
    module = module.to_empty(device="cpu").half()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)
    return module


@pytest.mark.parametrize(
    ("family", "stem"), [("sd1", "v1-5-pruned-emaonly"), ("sd2", "v2-1_768-ema-pruned"), ("sdxl", "sd_xl_base")]
)
def test_full_size_checkpoint_loads_with_shipped_config(family: str, stem: str, tmp_path: Path, no_network):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    config = CONFIGS_DIR / family
    parts = {
        "unet": random_half(UNet2DConditionModel, config / "unet"),
        "vae": random_half(AutoencoderKL, config / "vae"),
        "text_encoder": random_half(CLIPTextModel, config / "text_encoder"),
    }
    state = {**unet_to_ldm(parts["unet"].state_dict(), 2), **vae_to_ldm(parts["vae"].state_dict(), 4)}
    text = parts["text_encoder"].state_dict()
    if family == "sdxl":
        parts["text_encoder_2"] = random_half(CLIPTextModelWithProjection, config / "text_encoder_2")
        state.update(clip_to_ldm(text, 77, SDXL_CLIP_PREFIX))
        state.update(open_clip_to_ldm(parts["text_encoder_2"].state_dict(), SDXL_OPEN_CLIP_PREFIX))
    elif family == "sd2":
        state.update(open_clip_to_ldm(text, OPEN_CLIP_PREFIX))
    else:
        state.update(clip_to_ldm(text, 77))
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / f"{stem}.safetensors"))
    del state

    spec = ModelRegistry([tmp_path], include_demo=False).source(stem)
    assert spec.spec.family == family and not spec.spec.inpaint
    pipes = load_single_file(spec, "cpu", torch.float16)
    for name, module in parts.items():
        want, got = module.state_dict(), getattr(pipes.img2img, name).state_dict()
        assert set(want) == set(got), name
        assert all(torch.equal(v, got[k]) for k, v in want.items()), name
    assert pipes.img2img.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert no_network == []
