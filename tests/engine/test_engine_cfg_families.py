"""The flow-matching families with classifier-free guidance (SD 3.5, Chroma) through the engine: tiny random
models saved as diffusers folders, found by the registry and loaded by the real loader; img2img, inpaint,
previews (flow-matching x0), cancel, refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from support.tiny_families import build_tiny_chroma, build_tiny_qwen_image, build_tiny_sd3, build_tiny_z_image
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.families import FAMILIES
from underpaint.server.engine.interface import EngineError, GenerationRequest, JobCancelled, PreviewPolicy
from underpaint.server.engine.registry import ModelRegistry
from underpaint.server.jobs.cancel import CancelFlag

CASES = {  # family -> (builder, img2img pipeline, label, native side of the tiny model)
    "sd3": (build_tiny_sd3, "StableDiffusion3Img2ImgPipeline", "SD 3.5", 256),
    "chroma": (build_tiny_chroma, "ChromaImg2ImgPipeline", "Chroma", 1024),
    "z_image": (build_tiny_z_image, "ZImageImg2ImgPipeline", "Z-Image", 1024),
    "qwen_image": (build_tiny_qwen_image, "QwenImageImg2ImgPipeline", "Qwen-Image", 1328),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return request.param, CASES[request.param][0](tmp_path_factory.mktemp(request.param) / "tiny")


@pytest.fixture(scope="module")
def engine(case: tuple[str, Path]) -> DiffusersEngine:
    return DiffusersEngine(ModelRegistry([case[1].parent], include_demo=False), device="cpu")


@pytest.fixture
def make(case: tuple[str, Path]) -> object:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (56, 72, 3), dtype=np.uint8)  # not multiples of 16: the engine pads
    mask = np.zeros((56, 72), np.uint8)
    mask[8:40, 16:56] = 255
    base = GenerationRequest(kind="img2img", model="tiny", prompt="a red boat", negative_prompt="sea",
                             strength=0.6, steps=5, guidance=4.5, seed=3, batch=1, sampler="default", image=image,
                             mask=mask)
    return lambda **changes: replace(base, **changes)


def run(engine: DiffusersEngine, request: GenerationRequest, steps: list | None = None) -> list[np.ndarray]:
    return engine.generate(request, (steps if steps is not None else []).append, CancelFlag())


def test_the_registry_recognises_the_folder(engine: DiffusersEngine, case: tuple[str, Path]) -> None:
    [spec] = engine.list_models()
    _, _, label, side = CASES[case[0]]
    assert (spec.family, spec.inpaint, spec.resolution, spec.source) == (case[0], False, side, "diffusers")
    assert spec.note == f"{label} diffusers folder"


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_jobs_run_at_the_input_size_with_previews(engine, make, kind: str) -> None:
    steps: list = []
    out = run(engine, make(kind=kind, batch=2, preview=PreviewPolicy(every_steps=1)), steps)
    assert [o.shape for o in out] == [(56, 72, 3)] * 2 and not np.array_equal(out[0], out[1])
    assert [s.step for s in steps] == [0, 1, 2, 3] and {s.total for s in steps} == {3}
    assert [s.preview.shape for s in steps if s.preview is not None] == [(7, 9, 3)] * 2
    alone = run(engine, make(kind=kind, seed=4))[0]
    assert np.abs(alone.astype(int) - out[1]).max() <= 1  # image i of a batch is seed + i alone


def test_img2img_equals_a_direct_pipeline_call(engine, make, case: tuple[str, Path]) -> None:
    import diffusers
    from PIL import Image

    request = make(image=make().image[:48, :64])
    ours = run(engine, request)[0]
    pipe = getattr(diffusers, CASES[case[0]][1]).from_pretrained(str(case[1]), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(prompt=request.prompt, negative_prompt=request.negative_prompt, image=Image.fromarray(request.image),
                  height=48, width=64, strength=request.strength, num_inference_steps=request.steps,
                  **{FAMILIES[case[0]].guidance_kwarg: request.guidance},
                  generator=torch.Generator().manual_seed(request.seed), output_type="np").images[0]
    assert np.array_equal(ours, (direct * 255).round().astype(np.uint8))


def test_cancel_mid_run_skips_the_vae_decode(engine, make) -> None:
    vae = engine.pipelines("tiny").img2img.vae
    cancel, steps = CancelFlag(), []

    def on_step(info) -> None:
        steps.append(info.step)
        if info.step == 2:
            cancel.set()

    with mock.patch.object(vae, "decode", wraps=vae.decode) as decode, pytest.raises(JobCancelled):
        engine.generate(make(steps=8, strength=1.0), on_step, cancel)
    assert decode.call_count == 0 and steps == [0, 1, 2]


def test_noise_prediction_samplers_and_tiles_are_refused(engine, make, case: tuple[str, Path]) -> None:
    label = CASES[case[0]][2]
    with pytest.raises(EngineError, match=f"sampler 'euler_a' does not fit {label} models"):
        run(engine, make(sampler="euler_a"))
    with pytest.raises(EngineError, match=f"{label} models cannot refine in tiles"):
        run(engine, make(tiled=True))
