"""Warm paths and few-step settings: cached prompt embeddings, guidance off, the few-step samplers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError, GenerationRequest, StepInfo

Make = Callable[..., GenerationRequest]


@contextmanager
def calls(module: torch.nn.Module) -> Iterator[list[tuple[int, ...]]]:
    """The shape of the first input of every forward call of ``module`` while inside."""
    seen: list[tuple[int, ...]] = []
    handle = module.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)) if args else None)
    try:
        yield seen
    finally:
        handle.remove()


def run(engine: DiffusersEngine, request: GenerationRequest, CancelFlag, on_step=None) -> list[np.ndarray]:
    return engine.generate(request, on_step or (lambda info: None), CancelFlag())


def test_the_same_prompt_runs_the_text_encoder_once(engine: DiffusersEngine, make_request: Make, CancelFlag) -> None:
    text_encoder = engine.pipelines("demo").img2img.text_encoder
    with calls(text_encoder) as seen:
        first = run(engine, make_request(prompt="a lighthouse at dusk", negative_prompt="fog"), CancelFlag)
        encoded = len(seen)
        again = run(engine, make_request(prompt="a lighthouse at dusk", negative_prompt="fog", seed=5), CancelFlag)
        inpaint = run(engine, make_request(kind="inpaint", prompt="a lighthouse at dusk", negative_prompt="fog"),
                      CancelFlag)
        batch = run(engine, make_request(prompt="a lighthouse at dusk", negative_prompt="fog", batch=2), CancelFlag)
        assert encoded >= 1 and len(seen) == encoded  # hits: img2img, another seed, inpaint, a batch
        run(engine, make_request(prompt="a lighthouse at dawn", negative_prompt="fog"), CancelFlag)
        assert len(seen) > encoded  # another prompt is encoded
        run(engine, make_request(prompt="a lighthouse at dusk", negative_prompt="rain"), CancelFlag)
        assert len(seen) > encoded + 1  # another negative prompt too
    assert not np.array_equal(first[0], again[0]) and inpaint[0].shape == first[0].shape
    # batch item 0 is the single job (batched convolutions may round one level differently)
    assert np.abs(batch[0].astype(int) - first[0].astype(int)).max() <= 1


def test_a_cached_embedding_gives_the_uncached_image(
    engine: DiffusersEngine, make_request: Make, CancelFlag, demo, StubRegistry
) -> None:
    request = make_request(prompt="a cached prompt", negative_prompt="")
    warm = run(engine, request, CancelFlag)[0]
    assert np.array_equal(run(engine, request, CancelFlag)[0], warm)
    cold = DiffusersEngine(StubRegistry(demo), device="cpu")
    assert np.array_equal(run(cold, request, CancelFlag)[0], warm)


@pytest.mark.parametrize("guidance, unet_batch", [(0.0, 1), (1.0, 1), (5.0, 2)])
def test_guidance_off_runs_one_unet_pass_a_step(
    engine: DiffusersEngine, make_request: Make, CancelFlag, guidance: float, unet_batch: int
) -> None:
    unet = engine.pipelines("demo").img2img.unet
    with calls(unet) as seen:
        run(engine, make_request(guidance=guidance, steps=4, strength=0.5), CancelFlag)
    assert seen and {shape[0] for shape in seen} == {unet_batch}


def test_guidance_off_ignores_the_negative_prompt(engine: DiffusersEngine, make_request: Make, CancelFlag) -> None:
    a = run(engine, make_request(guidance=0.0, negative_prompt="blurry"), CancelFlag)[0]
    b = run(engine, make_request(guidance=0.0, negative_prompt="something else entirely"), CancelFlag)[0]
    assert np.array_equal(a, b)


@pytest.mark.parametrize("sampler", ["lcm", "tcd", "euler_a_sgm"])
@pytest.mark.parametrize("steps, strength, total", [(4, 1.0, 4), (6, 0.5, 3), (8, 0.3, 2), (1, 1.0, 1)])
def test_few_step_samplers_run_the_steps_they_announce(
    engine: DiffusersEngine, make_request: Make, CancelFlag, sampler: str, steps: int, strength: float, total: int
) -> None:
    infos: list[StepInfo] = []
    run(engine, make_request(sampler=sampler, steps=steps, strength=strength, guidance=0.0), CancelFlag,
        infos.append)
    assert [i.step for i in infos] == list(range(total + 1)) and {i.total for i in infos} == {total}


def test_tcd_and_lcm_refuse_more_steps_than_their_schedule(
    engine: DiffusersEngine, make_request: Make, CancelFlag
) -> None:
    for sampler in ("lcm", "tcd"):
        with pytest.raises(EngineError, match=f"the {sampler} sampler runs at most 50 steps") as info:
            run(engine, make_request(sampler=sampler, steps=51), CancelFlag)
        assert (info.value.code, info.value.field) == ("out_of_range", "steps")
    assert run(engine, make_request(sampler="euler_a_sgm", steps=60, strength=0.05), CancelFlag)[0].shape


def test_euler_a_sgm_uses_trailing_timesteps(engine: DiffusersEngine) -> None:
    from underpaint.server.engine.samplers import make_scheduler

    base = engine.pipelines("demo").img2img.scheduler
    scheduler = make_scheduler("euler_a_sgm", base)
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [999, 749, 499, 249]  # starts at the last training step
