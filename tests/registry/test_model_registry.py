"""ModelRegistry: scanning ComfyUI/A1111-like trees, ids, detection from headers, skipping, errors."""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from underpaint.server.engine.checkpoint_keys import NotACheckpoint, detect_single_file, read_safetensors_header
from underpaint.server.engine.interface import EngineError
from underpaint.server.engine.registry import MAX_DEPTH, ModelRegistry

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
TEXT_KEYS = {
    "sd1": ["cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"],
    "sd2": ["cond_stage_model.model.token_embedding.weight"],
    "sdxl": [
        "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
        "conditioner.embedders.1.model.positional_embedding",
    ],
}


def t(*shape: int) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.float16)


def fake_checkpoint(path: Path, family: str, in_channels: int = 4) -> Path:
    """A small safetensors file with the key layout (not the sizes) of a real checkpoint."""
    tensors = {UNET_IN: t(8, in_channels, 3, 3), "first_stage_model.encoder.conv_in.weight": t(4, 3, 3, 3)}
    tensors.update({k: t(2, 2) for k in TEXT_KEYS[family]})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def fake_diffusers(folder: Path, cls: str, cross: int, in_channels: int, sample: int, weights: str) -> Path:
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    unet = {"in_channels": in_channels, "cross_attention_dim": cross, "sample_size": sample}
    (folder / "unet" / "config.json").write_text(json.dumps(unet))
    (folder / "vae" / "config.json").write_text(json.dumps({"block_out_channels": [1, 2, 3, 4]}))
    if weights == "safetensors":
        save_file({"w": t(1)}, str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    elif weights == "bin":
        torch.save({"w": t(1)}, folder / "unet" / "diffusion_pytorch_model.bin")
    return folder


def write_comfy_tree(root: Path) -> Path:
    ckpts = root / "ComfyUI" / "models" / "checkpoints"
    fake_checkpoint(ckpts / "v1-5-pruned-emaonly.safetensors", "sd1")
    fake_checkpoint(ckpts / "SDXL" / "juggernautXL_v9 [fp16].safetensors", "sdxl")
    fake_checkpoint(ckpts / "SDXL" / "inpaint" / "sdxl-inpaint.safetensors", "sdxl", in_channels=9)
    fake_checkpoint(ckpts / "sd2" / "v2-1_768-ema-pruned.safetensors", "sd2")
    fake_checkpoint(ckpts / "sd2" / "v2-1_512-ema-pruned.safetensors", "sd2")
    fake_checkpoint(ckpts / "sd2" / "512-inpainting-ema.safetensors", "sd2", in_channels=9)
    fake_checkpoint(ckpts / "sd-v1-5-inpainting.safetensors", "sd1", in_channels=9)
    (ckpts / "put_checkpoints_here").write_text("")
    (ckpts / "v1-5-pruned-emaonly.yaml").write_text("model: {}\n")
    (ckpts / "v1-5-pruned-emaonly.preview.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (ckpts / "SDXL" / "juggernautXL_v9 [fp16].civitai.info").write_text("{}")
    lora = {"lora_unet_down_blocks_0.lora_down.weight": t(4, 4), "lora_unet_x.alpha": t(1)}
    save_file(lora, str(ckpts / "lora.safetensors"))
    vae = {"encoder.conv_in.weight": t(4, 3, 3, 3), "decoder.conv_out.weight": t(3, 4, 3, 3)}
    save_file(vae, str(ckpts / "vae-ft-mse.safetensors"))
    (ckpts / "broken.safetensors").write_bytes(b"not a safetensors file at all")
    torch.save({UNET_IN: t(8, 4, 3, 3)}, ckpts / "old-model.ckpt")
    return ckpts


@pytest.fixture
def comfy(tmp_path: Path) -> Path:
    return write_comfy_tree(tmp_path)


def by_id(registry: ModelRegistry) -> dict:
    return {s.id: s for s in registry.specs()}


def test_comfyui_tree_ids_families_and_resolutions(comfy: Path) -> None:
    specs = by_id(ModelRegistry([comfy], include_demo=False))
    summary = {i: (s.family, s.inpaint, s.resolution, s.source) for i, s in specs.items()}
    assert summary == {
        "SDXL/inpaint/sdxl-inpaint": ("sdxl", True, 1024, "single_file"),
        "SDXL/juggernautXL_v9 [fp16]": ("sdxl", False, 1024, "single_file"),
        "sd-v1-5-inpainting": ("sd1", True, 512, "single_file"),
        "sd2/512-inpainting-ema": ("sd2", True, 512, "single_file"),
        "sd2/v2-1_512-ema-pruned": ("sd2", False, 512, "single_file"),
        "sd2/v2-1_768-ema-pruned": ("sd2", False, 768, "single_file"),
        "v1-5-pruned-emaonly": ("sd1", False, 512, "single_file"),
    }
    spec = specs["SDXL/juggernautXL_v9 [fp16]"]
    assert spec.name == "juggernautXL_v9 [fp16]"
    source = ModelRegistry([comfy], include_demo=False).source(spec.id)
    assert source.path == comfy / "SDXL" / "juggernautXL_v9 [fp16].safetensors"
    assert "768-v" in specs["sd2/v2-1_768-ema-pruned"].note


def test_non_checkpoints_are_skipped_with_reasons(comfy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="underpaint.server.engine.registry"):
        registry = ModelRegistry([comfy], include_demo=False)
    skipped = {s.path: s for s in registry.skipped()}
    assert set(skipped) == {"lora.safetensors", "vae-ft-mse.safetensors", "broken.safetensors", "old-model.ckpt"}
    assert "LoRA" in skipped["lora.safetensors"].reason
    assert "VAE-only" in skipped["vae-ft-mse.safetensors"].reason
    assert "corrupt" in skipped["broken.safetensors"].reason
    assert skipped["old-model.ckpt"].refused and not skipped["lora.safetensors"].refused
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("broken.safetensors" in m for m in warnings)
    assert any("old-model.ckpt" in m and "pickle" in m for m in warnings)
    assert any("lora.safetensors" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x05\x00",
        struct.pack("<Q", 10**6) + b"{}",
        struct.pack("<Q", 4) + b"\xff\xfe{}",
        struct.pack("<Q", 2) + b"[]",
        struct.pack("<Q", 33) + b'{"a": {"dtype": "F16", "no": 1}}',
    ],
    ids=["empty", "short", "length-past-end", "not-utf8", "not-object", "no-shape"],
)
def test_corrupt_file_is_skipped_not_fatal(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.safetensors").write_bytes(content)
    fake_checkpoint(tmp_path / "good.safetensors", "sd1")
    registry = ModelRegistry([tmp_path], include_demo=False)
    assert [s.id for s in registry.specs()] == ["good"]
    assert [s.path for s in registry.skipped()] == ["bad.safetensors"]
    with pytest.raises(ValueError):
        read_safetensors_header(tmp_path / "bad.safetensors")


def test_header_is_read_without_the_weights(tmp_path: Path) -> None:
    path = fake_checkpoint(tmp_path / "m.safetensors", "sdxl", in_channels=9)
    shapes, _ = read_safetensors_header(path)
    assert shapes[UNET_IN] == (8, 9, 3, 3)
    assert detect_single_file(shapes) == ("sdxl", True)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({UNET_IN: (8, 8, 3, 3), "first_stage_model.x": (1,), TEXT_KEYS["sd1"][0]: (1,)}, "8 input channels"),
        ({UNET_IN: (8, 4, 3, 3), TEXT_KEYS["sd1"][0]: (1,)}, "no VAE"),
        ({UNET_IN: (8, 4, 3, 3), "first_stage_model.x": (1,)}, "no text-encoder"),
        ({UNET_IN: (8, 4, 3, 3), "first_stage_model.x": (1,), "conditioner.embedders.0.model.ln": (1,)}, "refiner"),
        ({"emb_params": (1, 768)}, "textual-inversion"),
        ({"control_model.time_embed.0.weight": (1,)}, "ControlNet"),
        ({"double_blocks.0.img_attn.qkv.weight": (1,)}, "no Stable Diffusion UNet"),
    ],
)
def test_detection_rejects_what_it_cannot_load(keys: dict, reason: str) -> None:
    with pytest.raises(NotACheckpoint, match=reason):
        detect_single_file(keys)


def test_a1111_tree_with_diffusers_folders(tmp_path: Path) -> None:
    models = tmp_path / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    fake_checkpoint(models / "anything-v3-fp16-pruned.safetensors", "sd1")
    fake_diffusers(models / "sd21", "StableDiffusionPipeline", 1024, 4, 96, "safetensors")
    fake_diffusers(models / "xl-inpaint", "StableDiffusionXLInpaintPipeline", 2048, 9, 128, "safetensors")
    fake_diffusers(models / "old-bin", "StableDiffusionPipeline", 768, 4, 64, "bin")
    fake_diffusers(models / "flux", "FluxPipeline", 4096, 64, 128, "safetensors")
    fake_diffusers(models / "empty", "StableDiffusionPipeline", 768, 4, 64, "none")
    fake_checkpoint(models / "sd21" / "unet" / "stray.safetensors", "sd1")  # inside a folder: not scanned
    specs = by_id(ModelRegistry([models], include_demo=False))
    summary = {i: (s.family, s.inpaint, s.resolution, s.source) for i, s in specs.items()}
    assert summary == {
        "anything-v3-fp16-pruned": ("sd1", False, 512, "single_file"),
        "sd21": ("sd2", False, 768, "diffusers"),
        "xl-inpaint": ("sdxl", True, 1024, "diffusers"),
    }
    assert ModelRegistry([models], include_demo=False).source("sd21").path == models / "sd21"
    skipped = {s.path: s for s in ModelRegistry([models], include_demo=False).skipped()}
    assert skipped["old-bin"].refused and "pickle" in skipped["old-bin"].reason
    assert "FluxPipeline" in skipped["flux"].reason
    assert "without unet weights" in skipped["empty"].reason
    with_pickle = by_id(ModelRegistry([models], allow_pickle=True, include_demo=False))
    assert with_pickle["old-bin"].family == "sd1"


def test_pickle_checkpoints_refused_unless_allowed(tmp_path: Path) -> None:
    state = {UNET_IN: t(8, 9, 3, 3), "first_stage_model.a": t(1), TEXT_KEYS["sd2"][0]: t(1)}
    torch.save({"state_dict": state, "global_step": 875000}, tmp_path / "sd2-inpaint.ckpt")
    torch.save({"state_dict": state, "callback": Path("x")}, tmp_path / "unsafe.ckpt")
    refused = ModelRegistry([tmp_path], include_demo=False)
    assert refused.specs() == []
    assert {s.path for s in refused.skipped() if s.refused} == {"sd2-inpaint.ckpt", "unsafe.ckpt"}
    with pytest.raises(EngineError) as err:
        refused.get("sd2-inpaint")
    assert err.value.code == "unknown_model"

    allowed = ModelRegistry([tmp_path], allow_pickle=True, include_demo=False)
    spec = allowed.get("sd2-inpaint")
    assert (spec.family, spec.inpaint, spec.resolution) == ("sd2", True, 512)
    # weights_only loading refuses arbitrary objects: skipped, never executed
    assert [s.path for s in allowed.skipped()] == ["unsafe.ckpt"]


def test_unknown_id_error_lists_available(comfy: Path) -> None:
    registry = ModelRegistry([comfy], include_demo=False)
    with pytest.raises(EngineError) as err:
        registry.get("nope")
    assert (err.value.code, err.value.field) == ("unknown_model", "model")
    assert err.value.message.startswith("unknown model 'nope'; available: ")
    assert "v1-5-pruned-emaonly" in err.value.message and "sd2/v2-1_768-ema-pruned" in err.value.message


@pytest.mark.parametrize(
    "bad_id",
    [
        "../checkpoints/v1-5-pruned-emaonly",
        "sd2/../v1-5-pruned-emaonly",
        "v1-5-pruned-emaonly.safetensors",
        "SDXL\\juggernautXL_v9 [fp16]",
        "",
    ],
)
def test_path_like_ids_are_unknown(comfy: Path, bad_id: str) -> None:
    registry = ModelRegistry([comfy], include_demo=False)
    for candidate in (bad_id, str(comfy / "v1-5-pruned-emaonly"), str(comfy / "v1-5-pruned-emaonly.safetensors")):
        with pytest.raises(EngineError) as err:
            registry.get(candidate)
        assert err.value.code == "unknown_model"


def test_ids_are_stable_and_relative(comfy: Path, tmp_path: Path) -> None:
    first = sorted(s.id for s in ModelRegistry([comfy], include_demo=False).specs())
    moved = tmp_path / "elsewhere"
    os.rename(comfy, moved)
    assert sorted(s.id for s in ModelRegistry([moved], include_demo=False).specs()) == first
    assert all(not i.startswith("/") and "\\" not in i and ".." not in i.split("/") for i in first)


def test_demo_and_default_id(tmp_path: Path) -> None:
    empty = ModelRegistry([tmp_path])
    assert [s.id for s in empty.specs()] == ["demo"]
    assert empty.default_id() == "demo" and empty.get("demo").source == "builtin"
    fake_checkpoint(tmp_path / "b.safetensors", "sd1")
    fake_checkpoint(tmp_path / "a.safetensors", "sdxl")
    assert empty.scan()[-1].id == "demo"  # rescan picks up new files, demo listed last
    assert empty.default_id() == "a"
    with pytest.raises(EngineError, match="no models available"):
        ModelRegistry([tmp_path / "missing"], include_demo=False).default_id()


def test_demo_id_stays_reserved(tmp_path: Path) -> None:
    fake_checkpoint(tmp_path / "demo.safetensors", "sd1")
    registry = ModelRegistry([tmp_path])
    assert [(s.id, s.source) for s in registry.specs()] == [("demo~2", "single_file"), ("demo", "builtin")]
    assert registry.default_id() == "demo~2"


def test_several_dirs_and_duplicate_ids(tmp_path: Path) -> None:
    fake_checkpoint(tmp_path / "one" / "model.safetensors", "sd1")
    fake_checkpoint(tmp_path / "two" / "model.safetensors", "sdxl")
    fake_checkpoint(tmp_path / "two" / "other.safetensors", "sd2")
    registry = ModelRegistry([tmp_path / "one", tmp_path / "two", tmp_path / "absent"], include_demo=False)
    assert [(s.id, s.family) for s in registry.specs()] == [("model", "sd1"), ("model~2", "sdxl"), ("other", "sd2")]
    assert registry.source("model~2").path == tmp_path / "two" / "model.safetensors"


def test_single_file_or_diffusers_folder_as_models_dir(tmp_path: Path) -> None:
    ckpt = fake_checkpoint(tmp_path / "solo.safetensors", "sd1")
    folder = fake_diffusers(tmp_path / "xl", "StableDiffusionXLPipeline", 2048, 4, 128, "safetensors")
    assert [s.id for s in ModelRegistry([ckpt, folder], include_demo=False).specs()] == ["solo", "xl"]


def test_depth_limit_hidden_dirs_config_override_and_symlink_loop(tmp_path: Path) -> None:
    deep = tmp_path
    for i in range(MAX_DEPTH + 1):
        deep = deep / f"d{i}"
    fake_checkpoint(deep / "too-deep.safetensors", "sd1")
    fake_checkpoint(deep.parent / "deep-enough.safetensors", "sd1")
    fake_checkpoint(tmp_path / ".trash" / "hidden.safetensors", "sd1")
    fake_checkpoint(tmp_path / "m.safetensors", "sd1")
    fake_diffusers(tmp_path / "m.config", "StableDiffusionPipeline", 768, 4, 32, "none")
    (tmp_path / "d0" / "loop").symlink_to(tmp_path, target_is_directory=True)
    registry = ModelRegistry([tmp_path], include_demo=False)
    ids = [s.id for s in registry.specs()]
    assert "/".join(f"d{i}" for i in range(MAX_DEPTH)) + "/deep-enough" in ids
    assert "m" in ids and not any("too-deep" in i or "hidden" in i or "m.config" in i for i in ids)
    assert registry.get("m").resolution == 256  # from m.config: sample_size 32 * 2**3
    assert registry.skipped() == []
