"""The family table: every row is loadable by generic code, and what it declares holds."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
from underpaint.protocol.vocabulary import SAMPLERS
from underpaint.server.engine.families import FAMILIES, folder_candidates
from underpaint.server.engine.interface import EngineError
from underpaint.server.engine.previews import latent_to_rgb, unpack_latents
from underpaint.server.engine.samplers import BY_SCHEDULE, count_steps, make_scheduler


@pytest.mark.parametrize("row", FAMILIES.values(), ids=list(FAMILIES))
def test_every_row_names_real_pipelines_and_known_samplers(row) -> None:
    for name in (row.img2img, row.inpaint, row.inpaint_model):
        cls = getattr(diffusers, name)
        assert hasattr(cls, "from_pipe")
        assert row.denoiser in cls._get_signature_keys(cls)[0]
    assert row.recommended.sampler in BY_SCHEDULE[row.schedule] and row.recommended.sampler in SAMPLERS
    assert row.resolution % row.size_multiple == 0


def test_folder_classes_map_to_their_families() -> None:
    assert [r.name for r in folder_candidates("StableDiffusionPipeline")] == ["sd1", "sd2"]
    assert [r.name for r in folder_candidates("StableDiffusionXLInpaintPipeline")] == ["sdxl"]
    assert [r.name for r in folder_candidates("FluxFillPipeline")] == ["flux1"]
    assert folder_candidates("KandinskyPipeline") == ()


def test_dedicated_inpaint_channels() -> None:
    assert FAMILIES["sd1"].denoiser_inputs(4) == (4, 9)
    assert FAMILIES["flux1"].denoiser_inputs(16) == (64, 384)  # Flux.1 Fill's x_embedder takes 384


def test_flow_families_refuse_noise_prediction_samplers_with_a_sentence() -> None:
    base = diffusers.FlowMatchEulerDiscreteScheduler()
    assert type(make_scheduler("euler", base, "flow", "Flux.1")).__name__ == "FlowMatchEulerDiscreteScheduler"
    with pytest.raises(EngineError, match="sampler 'dpmpp_2m' does not fit Flux.1 models") as err:
        make_scheduler("dpmpp_2m", base, "flow", "Flux.1")
    assert err.value.code == "unsupported" and err.value.field == "sampler"


@pytest.mark.parametrize(("steps", "strength"), [(10, 0.3), (10, 0.35), (20, 0.55), (4, 1.0), (7, 0.5), (10, 0.05)])
def test_flow_step_count_matches_the_flux_pipeline(steps: int, strength: float) -> None:
    pipe = diffusers.FluxImg2ImgPipeline.__new__(diffusers.FluxImg2ImgPipeline)
    pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    pipe.scheduler.set_timesteps(steps)
    _, expected = pipe.get_timesteps(steps, strength, "cpu")
    assert count_steps("flow", pipe.scheduler, steps, strength) == expected


def test_a_family_without_fitted_factors_gets_a_neutral_preview() -> None:
    latent = np.zeros((16, 2, 2), np.float32)
    latent[:6] = 1.0  # the first of three channel groups (6, 5, 5): red
    assert latent_to_rgb(latent, "flux1")[0, 0].tolist() == [255, 128, 128]
    with pytest.raises(ValueError, match=r"expected a \(4, h, w\) SD 1.x latent"):
        latent_to_rgb(latent, "sd1")


def test_unpacking_inverts_the_flux_packing() -> None:
    import torch

    latents = torch.randn(2, 16, 6, 4)
    packed = diffusers.FluxImg2ImgPipeline._pack_latents(latents, 2, 16, 6, 4)
    assert torch.equal(unpack_latents(packed, 48, 32, 8), latents)


def test_docs_models_table_is_generated_from_the_family_rows() -> None:
    from pathlib import Path

    from underpaint.server.engine.families.support import support_table

    doc = Path(__file__).resolve().parents[2] / "docs" / "models.md"
    assert support_table(list(FAMILIES.values())) in doc.read_text(encoding="utf-8"), \
        "regenerate the table in docs/models.md from families.support.support_table"

