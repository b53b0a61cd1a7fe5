"""LoRAs per job on the demo model: both key layouts, weights, caching, no residue, and clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from lora_files import lora_weights, write_diffusers, write_kohya, write_sd15_shaped
from underpaint.server.engine.checkpoint_keys import read_safetensors_header
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError, GenerationRequest, LoraUse
from underpaint.server.engine.lora import LoraRegistry, default_lora_dirs, detect_lora
from underpaint.server.engine.warm import warm_state

Make = Callable[..., GenerationRequest]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models") / "loras"


@pytest.fixture(scope="module")
def lora_engine(demo, folder: Path, StubRegistry) -> DiffusersEngine:
    engine = DiffusersEngine(StubRegistry(demo), device="cpu")
    pipes = engine.pipelines("demo")
    unet, text = pipes.img2img.unet, pipes.img2img.text_encoder
    write_diffusers(folder / "style_peft.safetensors", lora_weights(unet, text, seed=1))
    write_kohya(folder / "kohya" / "style_kohya.safetensors", lora_weights(unet, text, seed=1))
    write_kohya(folder / "kohya" / "half_alpha.safetensors", lora_weights(unet, text, seed=1), alpha=2.0)
    write_diffusers(folder / "unet_only.safetensors", lora_weights(unet, None, seed=2))
    write_diffusers(folder / "other.safetensors", lora_weights(unet, text, seed=3))
    write_sd15_shaped(folder / "sd15_style.safetensors")
    write_diffusers(folder / "broken.safetensors", lora_weights(unet, None, seed=4))
    (folder / "notes.safetensors").write_bytes(b"not a safetensors file")
    engine.loras = LoraRegistry([folder])
    return engine


def run(engine: DiffusersEngine, request: GenerationRequest, CancelFlag) -> np.ndarray:
    return engine.generate(request, lambda info: None, CancelFlag())[0]


def with_loras(make: Make, *loras: tuple[str, float], **changes) -> GenerationRequest:
    return make(loras=tuple(LoraUse(i, w) for i, w in loras), **changes)


def test_the_registry_finds_both_layouts_and_says_what_it_skipped(lora_engine: DiffusersEngine) -> None:
    specs = {s.id: s for s in lora_engine.list_loras()}
    assert {"style_peft", "kohya/style_kohya", "kohya/half_alpha", "unet_only", "other", "broken"} <= set(specs)
    assert specs["kohya/style_kohya"].family == specs["style_peft"].family == "demo"
    assert specs["kohya/style_kohya"].name == "style_kohya"
    assert specs["sd15_style"].family == "sd1"
    skipped = {s.path: s.reason for s in lora_engine.loras.skipped()}
    assert "notes.safetensors" in skipped


def test_layouts_are_detected_from_the_header(folder: Path, lora_engine: DiffusersEngine) -> None:
    assert detect_lora(read_safetensors_header(folder / "style_peft.safetensors")[0]) == ("demo", "diffusers")
    assert detect_lora(read_safetensors_header(folder / "kohya/style_kohya.safetensors")[0]) == ("demo", "kohya")


@pytest.mark.parametrize("lora", ["style_peft", "kohya/style_kohya"])
@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_weight_zero_is_exactly_no_lora_and_a_weight_changes_the_output(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag, lora: str, kind: str
) -> None:
    plain = run(lora_engine, make_request(kind=kind), CancelFlag)
    zero = run(lora_engine, with_loras(make_request, (lora, 0.0), kind=kind), CancelFlag)
    full = run(lora_engine, with_loras(make_request, (lora, 1.0), kind=kind), CancelFlag)
    half = run(lora_engine, with_loras(make_request, (lora, 0.5), kind=kind), CancelFlag)
    assert np.array_equal(zero, plain)
    assert not np.array_equal(full, plain) and not np.array_equal(half, full) and not np.array_equal(half, plain)


def test_both_layouts_of_the_same_weights_give_the_same_image(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag
) -> None:
    peft = run(lora_engine, with_loras(make_request, ("style_peft", 0.8)), CancelFlag)
    kohya = run(lora_engine, with_loras(make_request, ("kohya/style_kohya", 0.8)), CancelFlag)
    assert np.abs(peft.astype(int) - kohya.astype(int)).max() <= 1


def test_kohya_alpha_scales_the_lora(lora_engine: DiffusersEngine, make_request: Make, CancelFlag) -> None:
    """alpha 2 at rank 4 is half the effect: weight 1 with alpha 2 == weight 0.5 with alpha = rank."""
    half_alpha = run(lora_engine, with_loras(make_request, ("kohya/half_alpha", 1.0)), CancelFlag)
    half_weight = run(lora_engine, with_loras(make_request, ("kohya/style_kohya", 0.5)), CancelFlag)
    assert np.abs(half_alpha.astype(int) - half_weight.astype(int)).max() <= 1


def test_a_cached_lora_is_not_read_again(lora_engine: DiffusersEngine, make_request: Make, CancelFlag) -> None:
    slots = warm_state(lora_engine.pipelines("demo")).loras
    run(lora_engine, with_loras(make_request, ("unet_only", 1.0)), CancelFlag)
    loads = slots.loads
    for weight in (1.0, 0.3, 0.0, 0.7):
        run(lora_engine, with_loras(make_request, ("unet_only", weight)), CancelFlag)
    run(lora_engine, make_request(), CancelFlag)
    run(lora_engine, with_loras(make_request, ("unet_only", 1.0)), CancelFlag)
    assert slots.loads == loads


def test_switching_loras_between_jobs_leaves_no_residue(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag
) -> None:
    first_a = run(lora_engine, make_request(prompt="a quiet lake"), CancelFlag)
    with_b = run(lora_engine, with_loras(make_request, ("other", 1.0), prompt="a quiet lake"), CancelFlag)
    b_and_c = run(lora_engine, with_loras(make_request, ("other", 1.0), ("style_peft", 0.5), prompt="a quiet lake"),
                  CancelFlag)
    again_a = run(lora_engine, make_request(prompt="a quiet lake"), CancelFlag)
    again_b = run(lora_engine, with_loras(make_request, ("other", 1.0), prompt="a quiet lake"), CancelFlag)
    assert not np.array_equal(first_a, with_b) and not np.array_equal(with_b, b_and_c)
    assert np.array_equal(first_a, again_a)
    assert np.array_equal(with_b, again_b)


def test_a_lora_of_another_family_is_a_specific_error(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag
) -> None:
    with pytest.raises(EngineError, match="LoRA 'sd15_style' is for sd1 models; this model is demo") as info:
        run(lora_engine, with_loras(make_request, ("style_peft", 1.0), ("sd15_style", 1.0)), CancelFlag)
    assert (info.value.code, info.value.field) == ("incompatible_lora", "loras[1].id")


def test_an_unknown_lora_is_a_specific_error(lora_engine: DiffusersEngine, make_request: Make, CancelFlag) -> None:
    with pytest.raises(EngineError, match="unknown LoRA 'nope'") as info:
        run(lora_engine, with_loras(make_request, ("nope", 1.0)), CancelFlag)
    assert (info.value.code, info.value.field) == ("unknown_lora", "loras[0].id")


def test_a_damaged_file_is_a_job_error_and_the_engine_keeps_serving(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag, folder: Path
) -> None:
    before = run(lora_engine, make_request(), CancelFlag)
    path = folder / "broken.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # damaged after the scan
    with pytest.raises(EngineError, match="cannot read LoRA 'broken'") as info:
        run(lora_engine, with_loras(make_request, ("broken", 1.0)), CancelFlag)
    assert (info.value.code, info.value.field) == ("lora_load_failed", "loras[0].id")
    assert np.array_equal(run(lora_engine, make_request(), CancelFlag), before)
    assert run(lora_engine, with_loras(make_request, ("style_peft", 1.0)), CancelFlag).shape == before.shape


def test_comfyui_and_a1111_lora_folders_are_found_beside_the_models(tmp_path: Path) -> None:
    comfy, a1111 = tmp_path / "ComfyUI" / "models", tmp_path / "webui" / "models"
    for folder in (comfy / "checkpoints", comfy / "loras", a1111 / "Stable-diffusion", a1111 / "Lora"):
        folder.mkdir(parents=True)
    found = default_lora_dirs([comfy / "checkpoints", a1111 / "Stable-diffusion"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["ComfyUI/models/loras", "webui/models/Lora"]


def test_least_recently_used_loras_are_removed_and_reload_the_same(
    lora_engine: DiffusersEngine, make_request: Make, CancelFlag, monkeypatch: pytest.MonkeyPatch
) -> None:
    from underpaint.server.engine import lora

    monkeypatch.setattr(lora, "MAX_RESIDENT", 1)
    pipes = lora_engine.pipelines("demo")
    slots = warm_state(pipes).loras
    first = run(lora_engine, with_loras(make_request, ("style_peft", 1.0)), CancelFlag)
    run(lora_engine, with_loras(make_request, ("other", 1.0)), CancelFlag)
    assert list(slots.resident) == [lora.adapter_name(lora_engine.loras.source("other"))]
    assert list(pipes.img2img.unet.peft_config) == list(slots.resident)  # the other one left the modules
    loads = slots.loads
    assert np.array_equal(run(lora_engine, with_loras(make_request, ("style_peft", 1.0)), CancelFlag), first)
    assert slots.loads == loads + 1
