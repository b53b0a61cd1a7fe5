"""The shipped offline configs and CLIP vocabulary: in sync with the generator and true to the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from underpaint.server.engine.gen_configs import (
    CLIP_TOKENIZER_DIR,
    CONFIGS_DIR,
    clip_vocab,
    config_folders,
    render,
)
from underpaint.server.engine.interface import ModelSpec
from underpaint.server.engine.registry import ModelSource
from underpaint.server.engine.single_file import prepare_config

# Parameter counts of the released models (UNet, VAE, text encoder[, text encoder 2]).
SD1 = (859_520_964, 83_653_863, 123_060_480)
SD2 = (865_910_724, 83_653_863, 340_387_840)
SDXL = (2_567_463_684, 83_653_863, 123_060_480, 694_659_840)
INPAINT_EXTRA = 5 * 320 * 3 * 3  # five more conv_in input channels
EXPECTED_PARAMS = {
    "sd1": SD1,
    "sd1-inpaint": (SD1[0] + INPAINT_EXTRA, *SD1[1:]),
    "sd2": SD2,
    "sd2-base": SD2,
    "sd2-inpaint": (SD2[0] + INPAINT_EXTRA, *SD2[1:]),
    "sdxl": SDXL,
    "sdxl-inpaint": (SDXL[0] + INPAINT_EXTRA, *SDXL[1:]),
}
# open_clip's SimpleTokenizer ids for this sentence (checked against open-clip-torch 3.3.0).
A_PHOTO_OF_A_CAT = [49406, 320, 1125, 539, 320, 2368, 49407]


def test_shipped_files_match_the_generator() -> None:
    folders = config_folders()
    assert sorted(folders) == sorted(p.name for p in CONFIGS_DIR.iterdir())
    for name, files in folders.items():
        shipped = {p.relative_to(CONFIGS_DIR / name).as_posix() for p in (CONFIGS_DIR / name).rglob("*.json")}
        assert shipped == set(files), name
        for rel, content in files.items():
            assert (CONFIGS_DIR / name / rel).read_text(encoding="utf-8") == render(content), f"{name}/{rel}"


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_configs_build_the_released_architectures(name: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS_DIR / name
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        counts = [
            count(unet),
            count(vae),
            count(CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))),
        ]
        if (folder / "text_encoder_2").is_dir():
            config_2 = CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
            counts.append(count(CLIPTextModelWithProjection(config_2)))
    assert tuple(counts) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize(
    ("name", "scheduler", "prediction"),
    [
        ("sd1", "PNDMScheduler", "epsilon"),
        ("sd2", "DDIMScheduler", "v_prediction"),
        ("sd2-base", "DDIMScheduler", "epsilon"),
        ("sd2-inpaint", "DDIMScheduler", "epsilon"),
        ("sdxl", "EulerDiscreteScheduler", "epsilon"),
    ],
)
def test_schedulers_load_with_the_right_prediction_type(name: str, scheduler: str, prediction: str) -> None:
    import diffusers

    cls = getattr(diffusers, scheduler)
    loaded = cls.from_pretrained(CONFIGS_DIR / name, subfolder="scheduler", local_files_only=True)
    assert loaded.config.prediction_type == prediction
    assert (loaded.config.beta_start, loaded.config.beta_end) == (0.00085, 0.012)
    assert loaded.config.beta_schedule == "scaled_linear"


@pytest.mark.parametrize(("name", "pad_ids"), [("sd1", [49407]), ("sd2", [0]), ("sdxl", [49407, 0])])
def test_prepared_tokenizers_match_open_clip(name: str, pad_ids: list[int], tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    spec = ModelSource(ModelSpec(id="x", name="x", family=name, inpaint=False, resolution=768,
                                 source="single_file"), tmp_path / "x.safetensors")
    folder = prepare_config(spec, tmp_path / "config")
    subfolders = ["tokenizer", "tokenizer_2"][: len(pad_ids)]
    for sub, pad_id in zip(subfolders, pad_ids, strict=True):
        tokenizer = CLIPTokenizer.from_pretrained(folder / sub, local_files_only=True)
        assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
        assert tokenizer("a photo of a cat").input_ids == A_PHOTO_OF_A_CAT
        assert tokenizer("A PHOTO  of a cat").input_ids == A_PHOTO_OF_A_CAT
        assert tokenizer.pad_token_id == pad_id
        padded = tokenizer("a cat", padding="max_length", max_length=77).input_ids
        assert len(padded) == 77 and padded[-1] == pad_id
    assert not (CONFIGS_DIR / name / "tokenizer" / "vocab.json").exists()  # shipped once, copied at load


def test_clip_vocab_layout() -> None:
    vocab = json.loads((CLIP_TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))
    merges = (CLIP_TOKENIZER_DIR / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == 49408 and len(merges) == 1 + 48894 and merges[0] == "#version: 0.2"
    assert vocab["!"] == 0 and vocab["!</w>"] == 256 and vocab["<|startoftext|>"] == 49406
    assert vocab["".join(merges[1].split())] == 512  # merges follow the 512 byte symbols in order


def test_clip_vocab_rejects_a_short_bpe_file() -> None:
    with pytest.raises(ValueError, match="at least 48894 merge lines"):
        clip_vocab(["#version: 0.2", "i n", "t h"])
