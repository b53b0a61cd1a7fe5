"""Tiny autoencoders found in the user's folders: TAESD's own file pair and a diffusers AutoencoderTiny folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file
from torch import nn
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import GenerationRequest
from underpaint.server.engine.tiny_vae import TinyVaes, default_tiny_vae_dirs, find_tiny_vaes, load_tiny_vae

Make = Callable[..., GenerationRequest]
WIDTH = 8  # TAESD uses 64; the layout is the same


# --- TAESD as published (madebyollin/taesd): plain nn.Sequential encoder and decoder, images in [0, 1] ------
def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


def taesd_encoder(c: int = WIDTH, latent: int = 4) -> nn.Sequential:
    def down() -> list[nn.Module]:
        return [conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c)]

    return nn.Sequential(conv(3, c), Block(c, c), *down(), *down(), *down(), conv(c, latent))


def taesd_decoder(c: int = WIDTH, latent: int = 4) -> nn.Sequential:
    def up() -> list[nn.Module]:
        return [Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False)]

    return nn.Sequential(Clamp(), conv(latent, c), nn.ReLU(), *up(), *up(), *up(), Block(c, c), conv(c, 3))


@pytest.fixture(scope="module")
def reference() -> tuple[nn.Sequential, nn.Sequential]:
    torch.manual_seed(3)
    encoder, decoder = taesd_encoder().eval(), taesd_decoder().eval()
    for module in (encoder, decoder):
        for p in module.parameters():
            p.data.mul_(0.5)
    return encoder, decoder


@pytest.fixture(scope="module")
def vae_approx(tmp_path_factory: pytest.TempPathFactory, reference) -> Path:
    """A ComfyUI-style ``models/vae_approx``: TAESD's file pair, an SDXL one, and junk beside them."""
    folder = tmp_path_factory.mktemp("ComfyUI") / "models" / "vae_approx"
    folder.mkdir(parents=True)
    encoder, decoder = reference
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(folder / "taesd_encoder.safetensors"))
    save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(folder / "taesd_decoder.safetensors"))
    torch.save(decoder.state_dict(), folder / "taesdxl_decoder.pth")  # no encoder: not usable
    (folder / "taef1_decoder.safetensors").write_bytes(b"")
    return folder


def test_taesd_files_are_found_by_name(vae_approx: Path) -> None:
    found = find_tiny_vaes([vae_approx])
    assert [(s.name, s.families) for s in found] == [("taesd", ("sd1", "sd2", "demo"))]
    assert default_tiny_vae_dirs([vae_approx.parent / "checkpoints"]) == [vae_approx]


def test_taesd_files_load_as_the_published_network(vae_approx: Path, reference) -> None:
    """The loaded AutoencoderTiny computes what TAESD itself computes (diffusers maps [-1, 1] to [0, 1])."""
    encoder, decoder = reference
    [source] = find_tiny_vaes([vae_approx])
    tiny = load_tiny_vae(source, "cpu", torch.float32)
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    latents = torch.randn(1, 4, 4, 6)
    with torch.no_grad():
        assert torch.allclose(tiny.encode(image).latents, encoder((image + 1) / 2), atol=1e-5)
        assert torch.allclose(tiny.decode(latents).sample, decoder(latents) * 2 - 1, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_engine(demo, vae_approx: Path, StubRegistry) -> DiffusersEngine:
    return DiffusersEngine(StubRegistry(demo), device="cpu", tiny_vaes=TinyVaes([vae_approx]))


def run(engine: DiffusersEngine, request: GenerationRequest, CancelFlag) -> np.ndarray:
    return engine.generate(request, lambda info: None, CancelFlag())[0]


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_live_frames_use_the_tiny_vae_and_others_the_full_one(
    tiny_engine: DiffusersEngine, engine: DiffusersEngine, make_request: Make, CancelFlag, kind: str
) -> None:
    full = run(engine, make_request(kind=kind), CancelFlag)
    assert np.array_equal(run(tiny_engine, make_request(kind=kind), CancelFlag), full)
    assert np.array_equal(run(engine, make_request(kind=kind, tiny_vae=True), CancelFlag), full)  # none there
    fast = run(tiny_engine, make_request(kind=kind, tiny_vae=True), CancelFlag)
    assert fast.shape == full.shape and not np.array_equal(fast, full)
    assert np.array_equal(run(tiny_engine, make_request(kind=kind, tiny_vae=True), CancelFlag), fast)
    assert tiny_engine.tiny_vaes is not None and tiny_engine.tiny_vaes.loads == 1


def test_a_diffusers_autoencoder_tiny_folder_is_used_like_the_files(
    tmp_path: Path, demo, vae_approx: Path, tiny_engine: DiffusersEngine, make_request: Make, CancelFlag,
    StubRegistry,
) -> None:
    [source] = find_tiny_vaes([vae_approx])
    load_tiny_vae(source, "cpu", torch.float32).save_pretrained(tmp_path / "taesd")
    assert [s.folder for s in find_tiny_vaes([tmp_path])] == [tmp_path / "taesd"]
    folder_engine = DiffusersEngine(StubRegistry(demo), device="cpu", tiny_vaes=TinyVaes([tmp_path]))
    request = make_request(tiny_vae=True)
    assert np.array_equal(run(folder_engine, request, CancelFlag), run(tiny_engine, request, CancelFlag))


def test_a_tiny_vae_that_does_not_fit_the_model_is_not_used(
    tmp_path: Path, demo, engine: DiffusersEngine, make_request: Make, CancelFlag, StubRegistry
) -> None:
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1)).save_pretrained(tmp_path / "taesd_small")  # 1/2 latents, not 1/8
    odd = DiffusersEngine(StubRegistry(demo), device="cpu", tiny_vaes=TinyVaes([tmp_path]))
    assert np.array_equal(run(odd, make_request(tiny_vae=True), CancelFlag), run(engine, make_request(), CancelFlag))
