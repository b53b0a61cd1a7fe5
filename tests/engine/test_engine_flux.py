"""Flux.1 through the engine: tiny random dev and Fill models saved as diffusers folders, found by the
registry and loaded by the real loaders; img2img, inpaint, previews (flow-matching x0), cancel, refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from support.tiny_families import build_tiny_flux
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError, GenerationRequest, JobCancelled, LoraUse, PreviewPolicy
from underpaint.server.engine.previews import X0Capture
from underpaint.server.engine.registry import ModelRegistry
from underpaint.server.jobs.cancel import CancelFlag


@pytest.fixture(scope="module")
def flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flux-models")
    build_tiny_flux(root / "flux-dev")
    build_tiny_flux(root / "flux-fill", fill=True)
    return root


@pytest.fixture(scope="module")
def flux_engine(flux_dir: Path) -> DiffusersEngine:
    return DiffusersEngine(ModelRegistry([flux_dir], include_demo=False), device="cpu")


@pytest.fixture
def request_for() -> object:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (72, 88, 3), dtype=np.uint8)  # not multiples of 16: the engine pads
    mask = np.zeros((72, 88), np.uint8)
    mask[16:48, 24:64] = 255
    base = GenerationRequest(kind="img2img", model="flux-dev", prompt="a red boat", negative_prompt="", strength=0.6,
                             steps=5, guidance=3.5, seed=11, batch=1, sampler="default", image=image, mask=mask)

    def make(**changes: object) -> GenerationRequest:
        return replace(base, **changes)

    return make


def run(engine: DiffusersEngine, request: GenerationRequest, steps: list | None = None) -> list[np.ndarray]:
    return engine.generate(request, (steps if steps is not None else []).append, CancelFlag())


def test_the_registry_recognises_flux_folders(flux_engine: DiffusersEngine) -> None:
    specs = {s.id: (s.family, s.inpaint, s.resolution, s.source) for s in flux_engine.list_models()}
    assert specs == {"flux-dev": ("flux1", False, 1024, "diffusers"), "flux-fill": ("flux1", True, 1024, "diffusers")}
    assert flux_engine.pipelines("flux-fill").img2img is None  # Fill runs img2img as a full-mask inpaint


@pytest.mark.parametrize("model", ["flux-dev", "flux-fill"])
@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_jobs_run_at_the_input_size_and_are_reproducible(flux_engine, request_for, model: str, kind: str) -> None:
    steps: list = []
    first = run(flux_engine, request_for(model=model, kind=kind, batch=2), steps)
    assert [o.shape for o in first] == [(72, 88, 3)] * 2
    assert [s.step for s in steps] == [0, 1, 2, 3] and {s.total for s in steps} == {3}  # int(5 - 5 * 0.6) skipped
    alone = run(flux_engine, request_for(model=model, kind=kind, seed=12))
    # image i of a batch is seed + i alone; the inpaint pipelines VAE-encode the masked images as one batch,
    # whose float sums differ from a batch of one in the last bit: at most 1 level after rounding
    assert np.abs(alone[0].astype(int) - first[1]).max() <= (0 if (model, kind) == ("flux-dev", "img2img") else 1)
    assert not np.array_equal(first[0], first[1])


def test_img2img_equals_a_direct_pipeline_call(flux_engine, request_for, flux_dir: Path) -> None:
    from diffusers import FluxImg2ImgPipeline
    from PIL import Image

    request = request_for(image=request_for().image[:64, :80])  # multiples of 16: no padding
    ours = run(flux_engine, request)[0]
    pipe = FluxImg2ImgPipeline.from_pretrained(str(flux_dir / "flux-dev"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(prompt=request.prompt, image=Image.fromarray(request.image), height=64, width=80,
                  strength=request.strength, num_inference_steps=request.steps, guidance_scale=request.guidance,
                  generator=torch.Generator().manual_seed(request.seed), output_type="np").images[0]
    assert np.array_equal(ours, (direct * 255).round().astype(np.uint8))


def test_previews_show_the_flow_matching_x0(flux_engine, request_for) -> None:
    steps: list = []
    run(flux_engine, request_for(preview=PreviewPolicy(every_steps=1, max_side=256)), steps)
    previews = [s.preview for s in steps if s.preview is not None]
    assert [s.step for s in steps if s.preview is not None] == [1, 2]  # never the last step
    assert all(p.shape == (9, 11, 3) and p.dtype == np.uint8 for p in previews)  # 72x88 / 8, padding cropped


def test_flow_x0_is_the_sample_minus_sigma_times_velocity() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(4)
    capture = X0Capture(scheduler)
    sample, velocity = torch.randn(1, 8, 16), torch.randn(1, 8, 16)
    for i, t in enumerate(scheduler.timesteps):
        sigma = scheduler.sigmas[i]
        out = scheduler.step(velocity, t, sample, return_dict=False)[0]
        assert torch.allclose(capture.x0, sample - sigma * velocity)
        sample = out
    assert torch.allclose(capture.x0, sample, atol=1e-6)  # the last step lands on x0 (sigma 0)


def test_cancel_mid_run_raises_and_skips_the_vae_decode(flux_engine, request_for) -> None:
    vae = flux_engine.pipelines("flux-dev").img2img.vae
    cancel, steps = CancelFlag(), []

    def on_step(info) -> None:
        steps.append(info.step)
        if info.step == 1:
            cancel.set()

    with mock.patch.object(vae, "decode", wraps=vae.decode) as decode:
        with pytest.raises(JobCancelled):
            flux_engine.generate(request_for(steps=8, strength=1.0), on_step, cancel)
        assert decode.call_count == 0
    assert steps == [0, 1]


@pytest.mark.parametrize(("changes", "code", "field", "words"), [
    ({"sampler": "dpmpp_2m"}, "unsupported", "sampler", "does not fit Flux.1 models"),
    ({"tiled": True}, "unsupported", "resolution", "Flux.1 models cannot refine in tiles"),
])
def test_what_flux_cannot_do_is_refused_with_a_sentence(flux_engine, request_for, changes, code, field, words) -> None:
    with pytest.raises(EngineError, match=words) as err:
        run(flux_engine, request_for(**changes))
    assert (err.value.code, err.value.field) == (code, field)


def test_a_lora_of_another_family_is_refused_with_a_sentence(flux_dir: Path, request_for, tmp_path: Path) -> None:
    from lora_files import write_sd15_shaped
    from underpaint.server.engine.lora import LoraRegistry

    write_sd15_shaped(tmp_path / "loras" / "style.safetensors")
    engine = DiffusersEngine(ModelRegistry([flux_dir], include_demo=False), device="cpu",
                             loras=LoraRegistry([tmp_path / "loras"]))
    with pytest.raises(EngineError, match="Flux.1 models take no LoRAs") as err:
        run(engine, request_for(loras=(LoraUse("style"),)))
    assert (err.value.code, err.value.field) == ("incompatible_lora", "loras[0].id")
