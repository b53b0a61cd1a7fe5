"""Flux.1 as ComfyUI keeps it: a transformer file, CLIP-L and T5 files and a VAE file in sibling folders, paired
by the registry and loaded offline by the real single-file loaders; a missing part is a sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ldm_layout import vae_to_ldm
from safetensors.torch import save_file
from support.tiny_families import build_tiny_flux, write_comfy_layout
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import GenerationRequest
from underpaint.server.engine.registry import ModelRegistry
from underpaint.server.jobs.cancel import CancelFlag


def ldm_vae(state: dict) -> dict:
    return {k.removeprefix("first_stage_model."): v for k, v in vae_to_ldm(state, 4).items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("flux-diffusers")
    return {"dev": build_tiny_flux(root / "dev"), "fill": build_tiny_flux(root / "fill", fill=True)}


@pytest.fixture
def comfy(tmp_path: Path, tiny: dict[str, Path]) -> Path:
    comfy = tmp_path / "ComfyUI"
    write_comfy_layout(tiny["dev"], comfy, "flux1-dev-tiny", ldm_vae)
    write_comfy_layout(tiny["fill"], comfy, "flux1-fill-tiny", ldm_vae)
    vae4 = {"encoder.conv_in.weight": np.zeros((16, 3, 3, 3), np.float32),  # an SD VAE (4 channels): not Flux's
            "decoder.conv_in.weight": np.zeros((16, 4, 3, 3), np.float32)}
    import torch

    save_file({k: torch.from_numpy(v) for k, v in vae4.items()}, str(comfy / "models" / "vae" / "aaa-sd.safetensors"))
    return comfy


def request(model: str, kind: str) -> GenerationRequest:
    image = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[8:40, 16:48] = 255
    return GenerationRequest(kind=kind, model=model, prompt="a red boat", negative_prompt="", strength=0.75, steps=4,
                             guidance=3.5, seed=9, batch=1, sampler="default", image=image, mask=mask)


def test_split_files_are_paired_and_run_as_the_diffusers_folder_does(comfy: Path, tiny: dict[str, Path]) -> None:
    registry = ModelRegistry([comfy / "models"], include_demo=False)
    specs = {s.id: s for s in registry.specs()}
    dev, fill = specs["diffusion_models/flux1-dev-tiny"], specs["diffusion_models/flux1-fill-tiny"]
    assert (dev.family, dev.inpaint, dev.source, fill.inpaint) == ("flux1", False, "split", True)
    assert dev.note == ("Flux.1 split files (flux1): flux1-dev-tiny.safetensors + clip_l.safetensors + "
                        "t5xxl_fp16.safetensors + ae.safetensors")
    assert "flux1-fill" in fill.note
    split = DiffusersEngine(registry, device="cpu")
    folder = DiffusersEngine(ModelRegistry([tiny["dev"].parent], include_demo=False), device="cpu")
    for kind in ("img2img", "inpaint"):
        ours = split.generate(request(dev.id, kind), lambda _: None, CancelFlag())[0]
        same = folder.generate(request("dev", kind), lambda _: None, CancelFlag())[0]
        assert np.array_equal(ours, same), kind  # the same weights, loaded the other way
    filled = split.generate(request(fill.id, "inpaint"), lambda _: None, CancelFlag())[0]
    assert np.array_equal(filled, folder.generate(request("fill", "inpaint"), lambda _: None, CancelFlag())[0])


def test_a_missing_part_is_skipped_with_a_sentence_naming_it(comfy: Path) -> None:
    (comfy / "models" / "text_encoders" / "t5xxl_fp16.safetensors").unlink()
    skipped = {s.path: s.reason for s in ModelRegistry([comfy / "models"], include_demo=False).skipped()}
    reason = skipped["diffusion_models/flux1-dev-tiny.safetensors"]
    assert reason.startswith("no T5 text encoder (t5xxl/t5*, width 32) for Flux.1 file found in ")
    assert str(comfy / "models" / "text_encoders") in reason and str(comfy / "models" / "clip") in reason


def test_a_missing_tokenizer_is_a_sentence_at_load(comfy: Path) -> None:
    shutil.rmtree(comfy / "comfy" / "t5_tokenizer")
    engine = DiffusersEngine(ModelRegistry([comfy / "models"], include_demo=False), device="cpu")
    with pytest.raises(Exception, match="the T5 tokenizer is missing: looked for ComfyUI's t5_tokenizer folder at"):
        engine.generate(request("diffusion_models/flux1-dev-tiny", "img2img"), lambda _: None, CancelFlag())


def test_a_gguf_transformer_pairs_and_runs_quantized(comfy: Path, tiny: dict[str, Path]) -> None:
    import torch
    from support.tiny_families import write_gguf_transformer

    pytest.importorskip("gguf", reason="the gguf extra (in dev) is not installed")
    gguf_file = write_gguf_transformer(tiny["dev"], comfy / "models" / "unet" / "flux1-dev-tiny-Q8_0.gguf")
    shutil.copytree(comfy / "models" / "diffusion_models" / "flux1-dev-tiny.config",
                    gguf_file.with_name("flux1-dev-tiny-Q8_0.config"))
    registry = ModelRegistry([comfy / "models"], include_demo=False)
    spec = registry.get("unet/flux1-dev-tiny-Q8_0")
    assert (spec.family, spec.source) == ("flux1", "split") and "flux1-dev-tiny-Q8_0.gguf + clip_l" in spec.note
    engine = DiffusersEngine(registry, device="cpu")
    transformer = engine.pipelines(spec.id).img2img.transformer
    kinds = {type(p).__name__ for p in transformer.parameters()}
    assert "GGUFParameter" in kinds  # loaded quantized, dequantized per layer
    quantized = engine.generate(request(spec.id, "img2img"), lambda _: None, CancelFlag())[0].astype(int)
    plain = engine.generate(request("diffusion_models/flux1-dev-tiny", "img2img"), lambda _: None,
                            CancelFlag())[0].astype(int)
    assert quantized.shape == plain.shape and 0 < np.abs(quantized - plain).mean() < 8  # Q8_0: close, not equal
    assert torch.is_tensor(next(transformer.parameters()))


def test_the_parts_themselves_are_listed_as_what_they_are(comfy: Path) -> None:
    skipped = {s.path: s.reason for s in ModelRegistry([comfy / "models"], include_demo=False).skipped()}
    assert skipped["text_encoders/clip_l.safetensors"].startswith("text-encoder weights (CLIP or T5)")
    assert skipped["text_encoders/t5xxl_fp16.safetensors"].startswith("text-encoder weights (CLIP or T5)")
    assert skipped["vae/ae.safetensors"] == "VAE-only weights, not a checkpoint"


def test_of_several_fitting_files_the_conventional_name_wins(comfy: Path) -> None:
    encoders = comfy / "models" / "text_encoders"
    shutil.copyfile(encoders / "clip_l.safetensors", encoders / "aaa-other-clip.safetensors")  # sorts first
    shutil.copyfile(encoders / "t5xxl_fp16.safetensors", encoders / "aaa-t5-copy.safetensors")
    spec = ModelRegistry([comfy / "models"], include_demo=False).get("diffusion_models/flux1-dev-tiny")
    assert "+ clip_l.safetensors + t5xxl_fp16.safetensors + ae.safetensors" in spec.note
    (encoders / "clip_l.safetensors").unlink()  # no conventional name left: the first by name, and the note says
    spec = ModelRegistry([comfy / "models"], include_demo=False).get("diffusion_models/flux1-dev-tiny")
    assert "+ aaa-other-clip.safetensors + t5xxl_fp16.safetensors +" in spec.note
