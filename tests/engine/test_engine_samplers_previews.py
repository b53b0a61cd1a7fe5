from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
)
from underpaint.protocol.vocabulary import SAMPLERS
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError
from underpaint.server.engine.previews import X0Capture, fit_max_side, latent_to_rgb, render_latent_preview
from underpaint.server.engine.samplers import make_scheduler

SD_SCHEDULER = PNDMScheduler(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("default", PNDMScheduler),
        ("euler", EulerDiscreteScheduler),
        ("euler_a", EulerAncestralDiscreteScheduler),
        ("dpmpp_2m", DPMSolverMultistepScheduler),
        ("ddim", DDIMScheduler),
        ("lcm", LCMScheduler),
    ],
)
def test_each_sampler_is_a_fresh_scheduler_from_the_model_config(name: str, cls: type) -> None:
    first, second = make_scheduler(name, SD_SCHEDULER), make_scheduler(name, SD_SCHEDULER)
    assert type(first) is cls and first is not second and first is not SD_SCHEDULER
    assert first.config.beta_schedule == "scaled_linear" and first.config.beta_end == 0.012


def test_sampler_options() -> None:
    dpm = make_scheduler("dpmpp_2m", SD_SCHEDULER)
    assert (dpm.config.algorithm_type, dpm.config.solver_order) == ("dpmsolver++", 2)
    assert make_scheduler("ddim", SD_SCHEDULER).config.clip_sample is False

def test_the_engine_maps_every_sampler_of_the_vocabulary() -> None:
    """welcome.features lists what the engine maps: today that is every row of vocabulary.SAMPLERS."""
    assert set(DiffusersEngine.samplers(None)) == set(SAMPLERS)  # type: ignore[arg-type]


def test_a_sampler_the_engine_does_not_map_is_unsupported() -> None:
    with pytest.raises(EngineError, match="sampler 'heun' is not available on this server") as info:
        make_scheduler("heun", SD_SCHEDULER)
    assert (info.value.code, info.value.field) == ("unsupported", "sampler")


# --- previews ---------------------------------------------------------------------------------------


def test_latent_to_rgb_uses_the_family_projection() -> None:
    zero = np.zeros((4, 2, 3), np.float32)
    assert latent_to_rgb(zero, "sd1").shape == (2, 3, 3)
    assert latent_to_rgb(zero, "sd1")[0, 0].tolist() == [128, 128, 128]
    assert latent_to_rgb(zero, "sdxl")[0, 0].tolist() == [141, 125, 127]  # SDXL has a bias
    first_channel = zero.copy()
    first_channel[0] = 1.0
    assert latent_to_rgb(first_channel, "demo")[1, 2].tolist() == [172, 157, 169]
    third_channel = zero.copy()
    third_channel[2] = 5.0  # R clips low, G = (0.881 + 1) / 2, B clips high
    assert latent_to_rgb(third_channel, "sd1")[0, 0].tolist() == [0, 240, 255]


def test_latent_to_rgb_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(4, h, w\)"):
        latent_to_rgb(np.zeros((16, 2, 2), np.float32), "sd1")


def test_fit_max_side_downscales_only() -> None:
    image = np.zeros((12, 16, 3), np.uint8)
    image[:, 8:] = 200
    small = fit_max_side(image, 8)
    assert small.shape == (6, 8, 3) and small.dtype == np.uint8
    assert small[:, :4].max() == 0 and small[:, 4:].min() == 200  # box filter keeps flat areas
    assert fit_max_side(image, 100) is image
    with pytest.raises(ValueError, match="max_side"):
        fit_max_side(image, 0)


def test_render_latent_preview_takes_the_first_batch_item() -> None:
    latents = torch.zeros(2, 4, 12, 16)
    latents[1] = 5.0
    preview = render_latent_preview(latents, "sd1", 8)
    assert preview.shape == (6, 8, 3) and (preview == 128).all()


def run_steps(scheduler, steps: int = 3) -> list[torch.Tensor]:
    capture = X0Capture(scheduler)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    found = []
    for t in scheduler.timesteps:
        eps = torch.randn(1, 4, 8, 8, generator=generator)
        sample = scheduler.step(eps, t, sample, return_dict=False)[0]
        found.append(capture.x0)
    return found


def test_x0_capture_keeps_the_step_signature_and_result() -> None:
    wrapped, plain = make_scheduler("euler_a", SD_SCHEDULER), make_scheduler("euler_a", SD_SCHEDULER)
    X0Capture(wrapped)
    assert "generator" in inspect.signature(wrapped.step).parameters  # pipelines look for it
    for s in (wrapped, plain):
        s.set_timesteps(2)
    t = wrapped.timesteps[0]
    sample, eps = torch.ones(1, 4, 8, 8), torch.full((1, 4, 8, 8), 0.5)
    out_w = wrapped.step(eps, t, sample, generator=torch.Generator().manual_seed(1), return_dict=False)
    out_p = plain.step(eps, t, sample, generator=torch.Generator().manual_seed(1), return_dict=False)
    assert isinstance(out_w, tuple) and torch.equal(out_w[0], out_p[0])
    assert torch.equal(out_w[1], out_p[1])


@pytest.mark.parametrize("name", ["euler", "euler_a", "ddim", "lcm", "dpmpp_2m"])
def test_x0_is_captured_where_the_scheduler_predicts_it(name: str) -> None:
    found = run_steps(make_scheduler(name, SD_SCHEDULER))
    assert all(x is not None and x.shape == (1, 4, 8, 8) for x in found)
    assert not torch.equal(found[0], found[-1])


def test_pndm_has_no_x0() -> None:
    assert run_steps(make_scheduler("default", SD_SCHEDULER)) == [None, None, None, None]
