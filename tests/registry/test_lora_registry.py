"""The LoRA registry reads only headers: family and key layout from names and shapes; what it skips and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from underpaint.server.engine.interface import EngineError
from underpaint.server.engine.lora import LoraRegistry

ATTN2_K = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"


def write(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(s) for k, s in shapes.items()}, str(path))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "loras"
    write(root / "sd15_peft.safetensors", {f"unet.{ATTN2_K}.lora_A.weight": (4, 768),
                                           f"unet.{ATTN2_K}.lora_B.weight": (320, 4)})
    write(root / "sd2_old_diffusers.safetensors", {f"unet.{ATTN2_K}.lora.down.weight": (4, 1024),
                                                   f"unet.{ATTN2_K}.lora.up.weight": (320, 4)})
    key = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    write(root / "xl" / "lightning_kohya.safetensors", {f"{key}.lora_down.weight": (8, 2048),
                                                        f"{key}.lora_up.weight": (640, 8), f"{key}.alpha": ()})
    te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    write(root / "text_only.safetensors", {f"{te}.lora_down.weight": (4, 768), f"{te}.lora_up.weight": (768, 4)})
    write(root / "loha.safetensors", {f"lora_unet_{ATTN2_K.replace('.', '_')}.hada_w1_a": (320, 4)})
    write(root / "checkpoint.safetensors", {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)})
    write(root / "flux_like.safetensors", {f"unet.{ATTN2_K}.lora_A.weight": (4, 4096)})
    (root / "empty.safetensors").write_bytes(b"")
    (root / "readme.txt").write_text("not scanned")
    return root


def test_families_and_layouts_come_from_the_header(folder: Path) -> None:
    registry = LoraRegistry([folder])
    found = {s.id: s.family for s in registry.specs()}
    assert found == {"sd15_peft": "sd1", "sd2_old_diffusers": "sd2", "xl/lightning_kohya": "sdxl",
                     "text_only": "sd1"}
    assert registry.source("xl/lightning_kohya").layout == "kohya"
    assert registry.source("sd2_old_diffusers").layout == "diffusers"


def test_what_is_not_a_usable_lora_is_skipped_with_the_reason(folder: Path) -> None:
    skipped = {s.path: s.reason for s in LoraRegistry([folder]).skipped()}
    assert set(skipped) == {"loha.safetensors", "checkpoint.safetensors", "flux_like.safetensors",
                            "empty.safetensors"}
    assert "LyCORIS" in skipped["loha.safetensors"]
    assert "not a LoRA" in skipped["checkpoint.safetensors"]
    assert "cross-attention width 4096" in skipped["flux_like.safetensors"]


def test_the_same_id_in_two_folders_gets_a_suffix(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write(tmp_path / name / "style.safetensors", {f"unet.{ATTN2_K}.lora_A.weight": (4, 768)})
    ids = [s.id for s in LoraRegistry([tmp_path / "a", tmp_path / "b"]).specs()]
    assert ids == ["style", "style~2"]


def test_an_unknown_id_names_what_is_offered(folder: Path) -> None:
    with pytest.raises(EngineError, match="unknown LoRA 'nope'; available: sd15_peft") as info:
        LoraRegistry([folder]).source("nope", "loras[2].id")
    assert (info.value.code, info.value.field) == ("unknown_lora", "loras[2].id")


def test_a_missing_folder_offers_nothing(tmp_path: Path) -> None:
    assert LoraRegistry([tmp_path / "nowhere"]).specs() == []
