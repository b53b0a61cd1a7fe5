from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from underpaint.protocol.errors import ALL_CODES
from underpaint.protocol.vocabulary import SAMPLERS
from underpaint.server.engine import diffusers_engine
from underpaint.server.engine.demo_model import INPAINT_SUBFOLDER
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import (
    EngineError,
    GenerationRequest,
    JobCancelled,
    ModelSpec,
    PreviewPolicy,
    StepInfo,
)
from underpaint.server.engine.registry import ModelSource
from underpaint.server.jobs.cancel import CancelFlag

Make = Callable[..., GenerationRequest]


def run(engine: DiffusersEngine, request: GenerationRequest, on_step=None) -> list[np.ndarray]:
    return engine.generate(request, on_step or (lambda info: None), CancelFlag())


def near(a: np.ndarray, b: np.ndarray) -> bool:
    # Batched and single convolutions sum in different orders: allow one level of rounding.
    return int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def test_engine_reports_models_and_device(engine: DiffusersEngine, spec: ModelSpec) -> None:
    assert engine.list_models() == [spec] and engine.default_model() == "demo"
    assert engine.device_name() == "cpu (float32)"


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_outputs_have_the_input_size(engine: DiffusersEngine, make_request: Make, kind: str) -> None:
    images = run(engine, make_request(kind=kind, batch=2))
    assert len(images) == 2
    for image in images:
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8
    assert not np.array_equal(images[0], images[1])


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_seeds_are_deterministic_and_batches_reproducible_alone(
    engine: DiffusersEngine, make_request: Make, kind: str
) -> None:
    batch = run(engine, make_request(kind=kind, seed=10, batch=2, sampler="euler_a"))
    again = run(engine, make_request(kind=kind, seed=10, batch=2, sampler="euler_a"))
    assert all(np.array_equal(a, b) for a, b in zip(batch, again, strict=True))
    second_alone = run(engine, make_request(kind=kind, seed=11, sampler="euler_a"))[0]
    assert near(batch[1], second_alone)
    assert not near(batch[0], second_alone)


def test_engine_equals_a_direct_img2img_pipeline_call(engine, make_request: Make, demo_folder: Path) -> None:
    from diffusers import StableDiffusionImg2ImgPipeline

    request = make_request(sampler="default", seed=5)
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(str(demo_folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        image=Image.fromarray(request.image),
        strength=request.strength,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=torch.Generator().manual_seed(5),
    ).images[0]
    assert np.array_equal(run(engine, request)[0], np.asarray(expected))


def test_engine_equals_a_direct_inpaint_pipeline_call(engine, make_request: Make, demo_folder: Path) -> None:
    from diffusers import EulerDiscreteScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    request = make_request(kind="inpaint", sampler="euler", seed=9, strength=1.0)
    unet = UNet2DConditionModel.from_pretrained(str(demo_folder), subfolder=INPAINT_SUBFOLDER)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(str(demo_folder), unet=unet, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    expected = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        image=Image.fromarray(request.image),
        mask_image=Image.fromarray(request.mask),
        height=96,
        width=128,
        strength=1.0,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=torch.Generator().manual_seed(9),
    ).images[0]
    assert np.array_equal(run(engine, request)[0], np.asarray(expected))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs(engine: DiffusersEngine, make_request: Make, sampler: str) -> None:
    totals: set[int] = set()
    for kind in ("img2img", "inpaint"):
        images = run(engine, make_request(kind=kind, sampler=sampler), lambda info: totals.add(info.total))
        assert images[0].shape == (96, 128, 3)
    assert totals and min(totals) >= 3  # int(4 steps x 0.75) = 3 denoising steps (PNDM repeats one)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("kind, steps, strength", [("img2img", 6, 1.0), ("img2img", 7, 0.3), ("inpaint", 9, 0.55)])
def test_the_announced_total_is_the_number_of_steps_that_run(
    engine: DiffusersEngine, make_request: Make, sampler: str, kind: str, steps: int, strength: float
) -> None:
    infos: list[StepInfo] = []
    run(engine, make_request(kind=kind, sampler=sampler, steps=steps, strength=strength), infos.append)
    plan, done = infos[0], infos[1:]
    assert plan.step == 0  # announced before the first step
    assert [i.step for i in done] == list(range(1, plan.total + 1))  # one callback per step, last == total
    assert {i.total for i in infos} == {plan.total}
    assert plan.total >= min(int(steps * strength), steps)  # PNDM ("default" here) runs one step more


@pytest.mark.parametrize("max_side, shape", [(64, (12, 16, 3)), (8, (6, 8, 3))])
def test_previews_arrive_as_arrays_on_the_steps_the_policy_wants(
    engine: DiffusersEngine, make_request: Make, max_side: int, shape: tuple[int, int, int]
) -> None:
    infos: list[StepInfo] = []
    with mock.patch.object(
        diffusers_engine, "render_latent_preview", wraps=diffusers_engine.render_latent_preview
    ) as spy:
        policy = PreviewPolicy(every_steps=2, max_side=max_side)
        run(engine, make_request(sampler="euler", steps=10, strength=0.5, preview=policy), infos.append)
    assert [i.step for i in infos] == [0, 1, 2, 3, 4, 5] and {i.total for i in infos} == {5}
    previews = {i.step: i.preview for i in infos if i.preview is not None}
    assert list(previews) == [2, 4] and spy.call_count == 2  # only wanted previews are rendered; never the last
    for preview in previews.values():
        assert preview.shape == shape and preview.dtype == np.uint8  # latent size (1/8), then fitted


def test_no_previews_unless_asked(engine: DiffusersEngine, make_request: Make) -> None:
    infos: list[StepInfo] = []
    run(engine, make_request(steps=6, strength=1.0), infos.append)
    assert len(infos) > 2 and all(i.preview is None for i in infos)


def test_preview_policy_spacing() -> None:
    policy = PreviewPolicy(every_steps=3, min_interval_s=10.0)
    assert [s for s in range(0, 11) if policy.wants(s, 10, None)] == [3, 6, 9]  # never step 0 or the last
    assert not policy.wants(3, 10, 4.0) and policy.wants(3, 10, 10.5)
    assert not any(PreviewPolicy(every_steps=0).wants(s, 10, None) for s in range(11))


@pytest.mark.parametrize("sampler, uses_x0", [("euler", True), ("dpmpp_2m", True), ("default", False)])
def test_previews_show_predicted_x0_when_the_scheduler_has_it(
    engine: DiffusersEngine, make_request: Make, sampler: str, uses_x0: bool
) -> None:
    captures: list = []

    class RecordingCapture(diffusers_engine.X0Capture):
        def __init__(self, scheduler) -> None:
            super().__init__(scheduler)
            captures.append(self)

    sources: list[tuple[object, object]] = []

    def on_step(info: StepInfo) -> None:
        if info.preview is not None:
            sources.append((spy.call_args.args[0], captures[0].x0))

    with (
        mock.patch.object(diffusers_engine, "X0Capture", RecordingCapture),
        mock.patch.object(
            diffusers_engine, "render_latent_preview", wraps=diffusers_engine.render_latent_preview
        ) as spy,
    ):
        run(engine, make_request(sampler=sampler, preview=PreviewPolicy(every_steps=1)), on_step)
    assert sources
    for rendered, x0 in sources:
        assert (rendered is x0) == uses_x0
        assert tuple(rendered.shape) == (1, 4, 12, 16)


def test_cancel_mid_run_raises_and_skips_the_vae_decode(engine: DiffusersEngine, make_request: Make) -> None:
    vae = engine.pipelines("demo").img2img.vae
    cancel = CancelFlag()
    steps: list[int] = []

    def on_step(info: StepInfo) -> None:
        steps.append(info.step)
        if info.step == 2:
            cancel.set()

    with mock.patch.object(vae, "decode", wraps=vae.decode) as decode:
        run(engine, make_request())
        assert decode.call_count == 1  # the spy sees a normal run's decode
        decode.reset_mock()
        with pytest.raises(JobCancelled):
            engine.generate(make_request(steps=10, strength=1.0), on_step, cancel)
        assert decode.call_count == 0
    assert steps == [0, 1, 2]


def test_cancel_before_start_runs_nothing(engine: DiffusersEngine, make_request: Make) -> None:
    cancel = CancelFlag()
    cancel.set()
    steps: list[StepInfo] = []
    with pytest.raises(JobCancelled):
        engine.generate(make_request(), steps.append, cancel)
    assert steps == []


BAD = np.zeros((96, 128), np.uint8)


@pytest.mark.parametrize(
    "changes, code, field",
    [
        ({"sampler": "heun"}, "unsupported", "sampler"),
        ({"model": "nope"}, "unknown_model", "model"),
        ({"kind": "txt2img"}, "bad_value", "kind"),
        ({"kind": "outpaint"}, "bad_value", "kind"),  # a job kind, not a pipeline: its handler picks one
        ({"image": np.zeros((96, 128, 3), np.float32)}, "bad_value", "image"),
        ({"image": np.zeros((96, 128, 4), np.uint8)}, "bad_value", "image"),
        ({"image": np.zeros((90, 128, 3), np.uint8)}, "bad_value", "image"),
        ({"kind": "inpaint", "mask": None}, "bad_value", "mask"),
        ({"kind": "inpaint", "mask": np.full((96, 64), 255, np.uint8)}, "size_mismatch", "mask"),
        ({"kind": "inpaint", "mask": np.full((96, 128), 127, np.uint8)}, "empty_mask", "mask"),
        ({"kind": "inpaint", "mask": BAD.astype(bool)}, "bad_value", "mask"),
        ({"strength": 0.0}, "out_of_range", "strength"),
        ({"strength": 1.5}, "out_of_range", "strength"),
        ({"strength": 0.2, "steps": 4}, "out_of_range", "strength"),
        ({"steps": 0}, "out_of_range", "steps"),
        ({"batch": 0}, "out_of_range", "batch"),
        ({"guidance": -1.0}, "out_of_range", "guidance"),
        ({"seed": -1}, "out_of_range", "seed"),
    ],
)
def test_bad_requests_are_specific_errors(engine, make_request: Make, changes: dict, code: str, field: str) -> None:
    with pytest.raises(EngineError) as info:
        run(engine, make_request(**changes))
    assert (info.value.code, info.value.field) == (code, field)
    assert info.value.code in ALL_CODES and info.value.message


def test_unsupported_kind_for_a_model(demo: ModelSource, make_request: Make, StubRegistry) -> None:
    engine = DiffusersEngine(StubRegistry(replace(demo.spec, capabilities=("img2img",)), path=demo.path), device="cpu")
    with pytest.raises(EngineError) as info:
        run(engine, make_request(kind="inpaint"))
    assert (info.value.code, info.value.field) == ("unsupported", "kind")


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("MPS backend out of memory"),
    ],
)
def test_out_of_memory_is_mapped_and_the_engine_recovers(engine, make_request: Make, error: Exception) -> None:
    before = run(engine, make_request(seed=3))
    unet = engine.pipelines("demo").img2img.unet
    with mock.patch.object(unet, "forward", side_effect=error), pytest.raises(EngineError) as info:
        run(engine, make_request(seed=3))
    assert info.value.code == "out_of_memory"
    assert np.array_equal(run(engine, make_request(seed=3))[0], before[0])


def test_other_runtime_failures_are_internal(engine: DiffusersEngine, make_request: Make) -> None:
    unet = engine.pipelines("demo").img2img.unet
    with mock.patch.object(unet, "forward", side_effect=ValueError("boom")), pytest.raises(EngineError) as info:
        run(engine, make_request())
    assert info.value.code == "internal" and "boom" in info.value.message


def test_a_failing_model_load_leaves_the_engine_usable(
    demo: ModelSource, make_request: Make, tmp_path: Path, StubRegistry
) -> None:
    broken = ModelSource(ModelSpec(id="broken", name="Broken", family="sd1", inpaint=False, resolution=512,
                                   source="diffusers"), tmp_path / "missing")
    engine = DiffusersEngine(StubRegistry(demo, broken), device="cpu")
    with pytest.raises(EngineError) as info:
        run(engine, make_request(model="broken"))
    assert info.value.code == "model_load_failed"
    assert run(engine, make_request())[0].shape == (96, 128, 3)


def test_out_of_memory_while_loading_evicts_other_models_and_retries(
    demo: ModelSource, make_request: Make, StubRegistry
) -> None:
    engine = DiffusersEngine(StubRegistry(demo.spec, replace(demo.spec, id="other"), path=demo.path), device="cpu")
    engine.pipelines("other")
    real = diffusers_engine.load_pipelines
    attempts: list[str] = []

    def flaky(model: ModelSource, *args, **kwargs):
        attempts.append(model.spec.id)
        if len(attempts) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(model, *args, **kwargs)

    with mock.patch.object(diffusers_engine, "load_pipelines", flaky):
        assert run(engine, make_request())[0].shape == (96, 128, 3)
    assert attempts == ["demo", "demo"] and engine.cache.keys() == ["demo"]


def test_out_of_memory_while_loading_alone_is_reported(demo: ModelSource, make_request: Make, StubRegistry) -> None:
    engine = DiffusersEngine(StubRegistry(demo), device="cpu")
    failing = mock.Mock(side_effect=torch.OutOfMemoryError("CUDA out of memory"))
    with mock.patch.object(diffusers_engine, "load_pipelines", failing), pytest.raises(EngineError) as info:
        run(engine, make_request())
    assert info.value.code == "out_of_memory" and failing.call_count == 1  # nothing to evict: no retry
    assert run(engine, make_request())[0].shape == (96, 128, 3)


def test_img2img_on_a_9_channel_only_model_uses_a_full_mask(
    make_request: Make, demo_folder: Path, tmp_path: Path, StubRegistry
) -> None:
    folder = tmp_path / "inpaint-model"
    shutil.copytree(demo_folder, folder, ignore=shutil.ignore_patterns(INPAINT_SUBFOLDER, "unet"))
    shutil.copytree(demo_folder / INPAINT_SUBFOLDER, folder / "unet")
    inp = ModelSpec(id="inp", name="Inpaint", family="sd1", inpaint=True, resolution=512, source="diffusers")
    engine = DiffusersEngine(StubRegistry(inp, path=folder), device="cpu")
    img2img = run(engine, make_request(model="inp"))[0]
    full_mask = np.full((96, 128), 255, np.uint8)
    inpaint = run(engine, make_request(model="inp", kind="inpaint", mask=full_mask))[0]
    assert img2img.shape == (96, 128, 3) and np.array_equal(img2img, inpaint)
