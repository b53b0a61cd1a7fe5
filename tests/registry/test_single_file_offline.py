"""A single-file .safetensors written from a tiny pipeline loads with the network off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_sd import tiny_pipeline, tiny_xl_pipeline, write_single_file
from underpaint.server.engine.interface import EngineError, ModelSpec
from underpaint.server.engine.registry import ModelRegistry, ModelSource
from underpaint.server.engine.single_file import config_name, config_override, load_single_file, prepare_config


def assert_same_weights(expected: torch.nn.Module, loaded: torch.nn.Module) -> None:
    want, got = expected.state_dict(), loaded.state_dict()
    assert set(want) == set(got)
    for key, value in want.items():
        assert torch.equal(value, got[key]), key


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    root = tmp_path_factory.mktemp("models")
    pipe = tiny_pipeline(root / "work")
    pipe9 = tiny_pipeline(root / "work9", in_channels=9)
    write_single_file(pipe, root / "checkpoints" / "Tiny SD1 (test v1.0).safetensors")
    write_single_file(pipe9, root / "checkpoints" / "inpaint" / "tiny-inpainting.safetensors")
    return root / "checkpoints", pipe, pipe9


@pytest.fixture(scope="module")
def tiny_xl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("xl")
    pipe = tiny_xl_pipeline(root / "work")
    return write_single_file(pipe, root / "checkpoints" / "SDXL" / "tinyXL_v1.safetensors"), pipe


def test_registry_detects_tiny_checkpoints(tiny_models) -> None:
    ckpts, _, _ = tiny_models
    specs = {s.id: s for s in ModelRegistry([ckpts], include_demo=False).specs()}
    assert set(specs) == {"Tiny SD1 (test v1.0)", "inpaint/tiny-inpainting"}
    plain, inpaint = specs["Tiny SD1 (test v1.0)"], specs["inpaint/tiny-inpainting"]
    assert (plain.family, plain.inpaint, plain.source) == ("sd1", False, "single_file")
    assert (inpaint.family, inpaint.inpaint) == ("sd1", True)
    assert plain.resolution == 16 * 8  # from the config folder beside it: unet sample_size 16, 4-level VAE
    registry = ModelRegistry([ckpts], include_demo=False)
    assert config_override(registry.source(plain.id)) == ckpts / "Tiny SD1 (test v1.0).config"
    lonely = ModelSpec(id="x", name="x", family="sd1", inpaint=False, resolution=512, source="single_file")
    assert config_override(ModelSource(lonely, ckpts / "x.safetensors")) is None


def test_single_file_loads_offline_with_exact_weights(tiny_models, no_network) -> None:
    ckpts, pipe, _ = tiny_models
    spec = ModelRegistry([ckpts], include_demo=False).source("Tiny SD1 (test v1.0)")
    pipes = load_single_file(spec, "cpu", torch.float32)
    assert no_network == []
    assert type(pipes.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(pipes.inpaint).__name__ == "StableDiffusionInpaintPipeline"
    assert_same_weights(pipe.unet, pipes.img2img.unet)
    assert_same_weights(pipe.vae, pipes.img2img.vae)
    assert_same_weights(pipe.text_encoder, pipes.img2img.text_encoder)
    assert pipes.inpaint.unet is pipes.img2img.unet and pipes.inpaint.vae is pipes.img2img.vae
    param_bytes = 4 * sum(p.numel() for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters())
    assert param_bytes <= pipes.nbytes < param_bytes * 1.01
    assert pipes.img2img.tokenizer("a cat").input_ids == pipe.tokenizer("a cat").input_ids

    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 64, 64, generator=generator)
    out = pipes.img2img(
        prompt="a cat", image=image, strength=0.5, num_inference_steps=2, output_type="np", generator=generator
    ).images
    assert out.shape == (1, 64, 64, 3) and float(out.std()) > 0
    assert no_network == []


def test_nine_channel_checkpoint_loads_as_inpaint_only(tiny_models, no_network) -> None:
    ckpts, _, pipe9 = tiny_models
    spec = ModelRegistry([ckpts], include_demo=False).source("inpaint/tiny-inpainting")
    pipes = load_single_file(spec, "cpu", torch.float32)
    assert pipes.img2img is None
    assert type(pipes.inpaint).__name__ == "StableDiffusionInpaintPipeline"
    assert pipes.inpaint.unet.config.in_channels == 9
    assert_same_weights(pipe9.unet, pipes.inpaint.unet)
    assert no_network == []


def test_sdxl_single_file_loads_offline_with_both_text_encoders(tiny_xl, no_network) -> None:
    checkpoint, pipe = tiny_xl
    spec = ModelRegistry([checkpoint.parent.parent], include_demo=False).source("SDXL/tinyXL_v1")
    assert (spec.spec.family, spec.spec.inpaint) == ("sdxl", False)
    pipes = load_single_file(spec, "cpu", torch.float32)
    assert type(pipes.img2img).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert type(pipes.inpaint).__name__ == "StableDiffusionXLInpaintPipeline"
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert_same_weights(getattr(pipe, name), getattr(pipes.img2img, name))
    out = pipes.img2img(
        prompt="a cat", image=torch.rand(1, 3, 64, 64), strength=0.5, num_inference_steps=2, output_type="np"
    ).images
    assert out.shape == (1, 64, 64, 3)
    assert no_network == []


def test_mismatched_config_is_a_clear_load_error(tiny_models, tmp_path: Path, no_network) -> None:
    ckpts, _, _ = tiny_models
    broken = tmp_path / "broken"
    ckpt = broken / "tiny.safetensors"
    broken.mkdir()
    ckpt.write_bytes((ckpts / "Tiny SD1 (test v1.0).safetensors").read_bytes())
    config = ckpts / "Tiny SD1 (test v1.0).config"
    for src in config.rglob("*"):
        dest = broken / "tiny.config" / src.relative_to(config)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_file():
            dest.write_bytes(src.read_bytes())
    unet_config = broken / "tiny.config" / "unet" / "config.json"
    unet_config.write_text(json.dumps({**json.loads(unet_config.read_text()), "cross_attention_dim": 48}))
    spec = ModelRegistry([broken], include_demo=False).source("tiny")
    with pytest.raises(EngineError) as err:
        load_single_file(spec, "cpu", torch.float32)
    assert err.value.code == "model_load_failed" and "'tiny'" in err.value.message
    assert no_network == []


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    spec = ModelSource(ModelSpec(id="gone", name="gone", family="sd1", inpaint=False, resolution=512,
                                 source="single_file"), tmp_path / "gone.safetensors")
    with pytest.raises(EngineError, match="checkpoint file is missing") as err:
        load_single_file(spec, "cpu", torch.float32)
    assert err.value.code == "model_load_failed"


@pytest.mark.parametrize(
    ("family", "inpaint", "resolution", "name"),
    [
        ("sd1", False, 512, "sd1"),
        ("sd1", True, 512, "sd1-inpaint"),
        ("sd2", False, 768, "sd2"),
        ("sd2", False, 512, "sd2-base"),
        ("sd2", True, 512, "sd2-inpaint"),
        ("sdxl", False, 1024, "sdxl"),
        ("sdxl", True, 1024, "sdxl-inpaint"),
    ],
)
def test_config_name_per_spec(family: str, inpaint: bool, resolution: int, name: str) -> None:
    spec = ModelSpec(id="x", name="x", family=family, inpaint=inpaint, resolution=resolution, source="single_file")
    assert config_name(spec) == name
    assert config_override(ModelSource(spec, None)) is None


def test_config_name_rejects_other_families() -> None:
    with pytest.raises(EngineError, match="no single-file config for family 'demo'"):
        config_name(ModelSpec(id="demo", name="demo", family="demo", inpaint=False, resolution=512, source="builtin"))


def test_network_guard_catches_connections(no_network) -> None:
    import socket

    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert no_network == [("127.0.0.1", 9)]


def test_override_files_replace_shipped_ones(tmp_path: Path) -> None:
    override = tmp_path / "sd2-512-finetune.config" / "scheduler"
    override.mkdir(parents=True)
    (override / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "DDIMScheduler", "prediction_type": "epsilon"})
    )
    spec = ModelSource(ModelSpec(id="m", name="m", family="sd2", inpaint=False, resolution=768,
                                 source="single_file"), tmp_path / "sd2-512-finetune.safetensors")
    folder = prepare_config(spec, tmp_path / "prepared")
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "epsilon"
    assert json.loads((folder / "unet" / "config.json").read_text())["cross_attention_dim"] == 1024
    assert (folder / "tokenizer" / "vocab.json").is_file() and (folder / "tokenizer" / "merges.txt").is_file()
