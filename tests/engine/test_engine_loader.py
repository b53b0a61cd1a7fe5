from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from underpaint.server.engine.demo_model import INPAINT_SUBFOLDER
from underpaint.server.engine.interface import EngineError, ModelSpec
from underpaint.server.engine.loader import PipelineCache, Pipelines, load_pipelines, pick_device, pipeline_nbytes
from underpaint.server.engine.registry import ModelSource

NO_ACCEL = not torch.cuda.is_available() and not torch.backends.mps.is_available()


def fake(nbytes: int, name: str = "m") -> Pipelines:
    spec = ModelSpec(id=name, name=name, family="sd1", inpaint=False, resolution=512, source="diffusers")
    return Pipelines(spec=spec, img2img=None, inpaint=None, nbytes=nbytes)


# --- device selection -------------------------------------------------------------------------------


def test_pick_device_cpu_defaults_to_fp32_and_honours_precision() -> None:
    assert pick_device("cpu") == ("cpu", torch.float32)
    assert pick_device("CPU", "bf16") == ("cpu", torch.bfloat16)


@pytest.mark.skipif(not NO_ACCEL, reason="machine has an accelerator")
def test_pick_device_auto_falls_back_to_cpu_and_refuses_missing_cuda() -> None:
    assert pick_device(None) == ("cpu", torch.float32)
    assert pick_device("auto") == ("cpu", torch.float32)
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:0")
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")


def test_pick_device_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        pick_device("cpu", "fp8")


# --- loading ----------------------------------------------------------------------------------------


def test_a_diffusers_folder_loads_with_shared_components(demo_folder: Path) -> None:
    spec = ModelSource(ModelSpec(id="plain", name="Plain", family="sd1", inpaint=False, resolution=512,
                                 source="diffusers"), demo_folder)
    pipes = load_pipelines(spec, "cpu", torch.float32)
    assert type(pipes.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(pipes.inpaint).__name__ == "StableDiffusionInpaintPipeline"
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        assert getattr(pipes.inpaint, name) is getattr(pipes.img2img, name)
    assert pipes.inpaint.unet.config.in_channels == 4  # a regular model inpaints with its own UNet
    expected = sum(
        t.numel() * t.element_size()
        for m in (pipes.img2img.unet, pipes.img2img.vae, pipes.img2img.text_encoder)
        for t in [*m.parameters(), *m.buffers()]
    )
    assert pipes.nbytes == expected == pipeline_nbytes(pipes.img2img, pipes.inpaint)


def inpaint_only_folder(demo_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "inpaint-model"
    shutil.copytree(demo_folder, folder, ignore=shutil.ignore_patterns(INPAINT_SUBFOLDER))
    shutil.rmtree(folder / "unet")
    shutil.copytree(demo_folder / INPAINT_SUBFOLDER, folder / "unet")
    return folder


@pytest.mark.parametrize("declared_inpaint", [True, False])
def test_a_9_channel_model_has_no_img2img_pipeline(demo_folder: Path, tmp_path: Path, declared_inpaint: bool) -> None:
    folder = inpaint_only_folder(demo_folder, tmp_path)
    spec = ModelSource(ModelSpec(id="inp", name="Inp", family="sd1", inpaint=declared_inpaint, resolution=512,
                                 source="diffusers"), folder)
    pipes = load_pipelines(spec, "cpu", torch.float32)
    assert pipes.img2img is None
    assert pipes.inpaint.unet.config.in_channels == 9


@pytest.mark.parametrize(
    "spec, message",
    [
        (ModelSource(ModelSpec(id="gone", name="Gone", family="sd1", inpaint=False, resolution=512,
                               source="diffusers"), Path("/nonexistent/x")), "model_index"),
        (ModelSource(ModelSpec(id="nopath", name="No path", family="sd1", inpaint=False, resolution=512,
                               source="diffusers"), None), "without a path"),
        (ModelSource(ModelSpec(id="odd", name="Odd", family="sd1", inpaint=False, resolution=512,
                               source="ftp"), None), "unknown model source"),
        (ModelSource(ModelSpec(id="k3", name="Kandinsky 3", family="kandinsky3", inpaint=False, resolution=512,
                               source="diffusers"), Path("/tmp")),
         "unsupported model family"),
    ],
)
def test_load_failures_are_model_load_failed(spec: ModelSource, message: str) -> None:
    with pytest.raises(EngineError, match=message) as info:
        load_pipelines(spec, "cpu", torch.float32)
    assert info.value.code == "model_load_failed"


def test_corrupt_weights_are_model_load_failed(demo_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(demo_folder, folder)
    (folder / "unet/diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    spec = ModelSource(ModelSpec(id="broken", name="Broken", family="sd1", inpaint=False, resolution=512,
                                 source="diffusers"), folder)
    with pytest.raises(EngineError) as info:
        load_pipelines(spec, "cpu", torch.float32)
    assert info.value.code == "model_load_failed" and "broken" in info.value.message


def test_channels_last_option(demo: ModelSource) -> None:
    pipes = load_pipelines(replace(demo), "cpu", torch.float32, channels_last=True)
    assert pipes.img2img.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipes.inpaint.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


# --- cache ------------------------------------------------------------------------------------------


def test_cache_hits_do_not_reload() -> None:
    cache = PipelineCache(100)
    calls: list[str] = []
    first = cache.get("a", lambda: calls.append("a") or fake(10))
    assert cache.get("a", lambda: calls.append("again") or fake(10)) is first
    assert calls == ["a"]


def test_cache_evicts_least_recently_used_by_bytes() -> None:
    cache = PipelineCache(100)
    cache.get("a", lambda: fake(40))
    cache.get("b", lambda: fake(40))
    cache.get("a", lambda: fake(40))  # a is now the most recent
    cache.get("c", lambda: fake(40))  # 120 > 100: evict b
    assert cache.keys() == ["a", "c"] and cache.total_bytes() == 80
    cache.get("huge", lambda: fake(500))  # larger than the budget: kept alone
    assert cache.keys() == ["huge"]
    cache.clear()
    assert cache.keys() == [] and "huge" not in cache


def test_cache_loads_a_model_once_under_concurrency() -> None:
    cache = PipelineCache(100)
    loads: list[int] = []

    def slow_load() -> Pipelines:
        loads.append(1)
        time.sleep(0.05)
        return fake(1)

    got: list[Pipelines] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a", slow_load))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 4 and all(p is got[0] for p in got)


def test_cache_rejects_negative_budget() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        PipelineCache(-1)


def test_the_requested_dtype_survives_sharing_components(demo: ModelSource) -> None:
    # from_pipe casts to float32 unless told the dtype: both pipelines must stay in the requested one.
    pipes = load_pipelines(demo, "cpu", torch.bfloat16)
    for pipe in (pipes.img2img, pipes.inpaint):
        assert pipe.unet.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.bfloat16
