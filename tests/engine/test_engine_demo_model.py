from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from underpaint.server.engine import demo_model
from underpaint.server.engine.demo_model import (
    DEMO_SPEC,
    DEMO_VERSION,
    INPAINT_SUBFOLDER,
    build_demo,
    bytes_to_unicode,
    demo_source,
    ensure_demo_model,
)
from underpaint.server.engine.loader import load_pipelines
from underpaint.server.engine.registry import ModelSource

WEIGHT_FILES = (
    "unet/diffusion_pytorch_model.safetensors",
    f"{INPAINT_SUBFOLDER}/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
)


def test_build_is_deterministic(demo_folder: Path, tmp_path: Path) -> None:
    build_demo(tmp_path / "again")
    for name in WEIGHT_FILES:
        first, second = load_file(demo_folder / name), load_file(tmp_path / "again" / name)
        assert first.keys() == second.keys() and first
        for key in first:
            assert torch.equal(first[key], second[key]), f"{name}:{key}"


def test_architecture_matches_real_sd(demo_folder: Path) -> None:
    unet = json.loads((demo_folder / "unet/config.json").read_text())
    unet9 = json.loads((demo_folder / INPAINT_SUBFOLDER / "config.json").read_text())
    vae = json.loads((demo_folder / "vae/config.json").read_text())
    assert (unet["in_channels"], unet9["in_channels"]) == (4, 9)
    assert unet["sample_size"] == unet9["sample_size"] == 64
    assert unet["cross_attention_dim"] == 32 and list(unet["block_out_channels"]) == [32, 64]
    assert vae["latent_channels"] == 4 and len(vae["block_out_channels"]) == 4  # 1/8 latents
    index = json.loads((demo_folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionImg2ImgPipeline"
    assert index["safety_checker"] == [None, None]


def test_tokenizer_is_byte_level(demo_folder: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(demo_folder / "tokenizer"))
    assert len(tok) == 2 * 256 + 2 and tok.model_max_length == 77
    ids = tok("hi")["input_ids"]
    vocab = tok.get_vocab()
    table = bytes_to_unicode()
    assert ids == [
        vocab["<|startoftext|>"],
        vocab[table[ord("h")]],
        vocab[table[ord("i")] + "</w>"],
        vocab["<|endoftext|>"],
    ]
    assert len(tok("x" * 500, truncation=True)["input_ids"]) == 77


def test_weights_are_read_from_disk(demo_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / DEMO_VERSION
    shutil.copytree(demo_folder, copy)
    weights_file = copy / "unet/diffusion_pytorch_model.safetensors"
    weights = load_file(weights_file)
    key = "conv_in.weight"
    weights[key] = torch.full_like(weights[key], 0.125)
    save_file(weights, weights_file)

    pipes = load_pipelines(ModelSource(DEMO_SPEC, copy), "cpu", torch.float32)
    assert torch.equal(pipes.img2img.unet.conv_in.weight, weights[key])
    assert pipes.inpaint.unet.config.in_channels == 9
    assert pipes.inpaint.vae is pipes.img2img.vae and pipes.inpaint.text_encoder is pipes.img2img.text_encoder
    assert pipes.img2img.vae_scale_factor == 8 and pipes.img2img.safety_checker is None
    assert not pipes.img2img.unet.training


def test_concurrent_first_use_builds_once_safely(tmp_path: Path, monkeypatch) -> None:
    builds: list[Path] = []

    def fake_build(folder: Path) -> None:
        builds.append(folder)
        (folder / "model_index.json").write_text("{}")

    monkeypatch.setattr(demo_model, "build_demo", fake_build)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_demo_model(tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / DEMO_VERSION] * 3 and len(builds) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_VERSION]  # no temp dirs left


def test_losing_the_rename_race_to_another_process_uses_its_build(tmp_path: Path, monkeypatch) -> None:
    final = tmp_path / DEMO_VERSION

    def build_while_other_process_finishes(folder: Path) -> None:
        (folder / "model_index.json").write_text('{"mine": true}')
        final.mkdir()
        (final / "model_index.json").write_text('{"theirs": true}')

    monkeypatch.setattr(demo_model, "build_demo", build_while_other_process_finishes)
    assert ensure_demo_model(tmp_path) == final
    assert json.loads((final / "model_index.json").read_text()) == {"theirs": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_VERSION]


def test_demo_spec_is_honest(tmp_path: Path) -> None:
    source = demo_source(tmp_path)
    spec = source.spec
    assert (spec.id, spec.family, spec.resolution, spec.source) == ("demo", "demo", 512, "builtin")
    assert source.path == tmp_path / DEMO_VERSION and not source.path.exists()  # naming it builds nothing
    assert "random" in spec.note and "noise" in spec.note
