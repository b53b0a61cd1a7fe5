"""Upscaler models: found in the operator's upscaler folders, pickles refused unless allowed, loaded through
spandrel from tiny ESRGAN-architecture weights made here, run in tiles without seams; plain resize without them.

spandrel imports torchvision, which cannot sit beside this project's CPU torch 2.13.0: the spandrel tests run
in a separate venv (``.ci/provision_spandrel.sh``, torch 2.14.1 + torchvision 0.29.1;
test_engine_spandrel_venv.py runs this module there), which sets
UNDERPAINT_REQUIRE_SPANDREL=1 so that a missing spandrel fails there; the main run skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from underpaint.protocol import errors
from underpaint.server.engine.interface import EngineError, JobCancelled
from underpaint.server.engine.upscalers import Upscalers, run_model, scale_from_name, spandrel_available, upscaler_dirs

REQUIRED = os.environ.get("UNDERPAINT_REQUIRE_SPANDREL") == "1"
needs_spandrel = pytest.mark.skipif(not spandrel_available() and not REQUIRED,
                                    reason="no spandrel here (test_engine_spandrel_venv.py runs these in its venv)")


def tiny_esrgan(path: Path, scale: int, seed: int = 0) -> None:
    """A real ESRGAN (RRDBNet) with 8 filters and one block, random weights, saved as safetensors."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    model = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


class Cancelled:
    """A cancel token that fires after ``after`` checks."""

    def __init__(self, after: int) -> None:
        self.checks, self.after = 0, after

    @property
    def cancelled(self) -> bool:
        return self.checks >= self.after

    def raise_if_cancelled(self) -> None:
        self.checks += 1
        if self.checks > self.after:
            raise JobCancelled()


def image(h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- without spandrel
def test_upscaler_folders_beside_the_models_directory(tmp_path):
    comfy, webui = tmp_path / "ComfyUI" / "models", tmp_path / "webui" / "models"
    for folder in (comfy / "checkpoints", comfy / "upscale_models", webui / "Stable-diffusion", webui / "ESRGAN"):
        folder.mkdir(parents=True)
    found = upscaler_dirs([comfy / "checkpoints", webui / "Stable-diffusion", comfy / "checkpoints"])
    assert found == [comfy / "upscale_models", webui / "ESRGAN"]
    assert upscaler_dirs([tmp_path / "nowhere"]) == []


@pytest.mark.parametrize("name, scale", [("4x-UltraSharp", 4), ("RealESRGAN_x2plus", 2), ("4x_foolhardy_Remacri", 4),
                                         ("x4", 4), ("ESRGAN", None), ("1080p", None), ("model_16x", None)])
def test_scale_from_name(name, scale):
    assert scale_from_name(name) == scale


@pytest.mark.parametrize("factor", [2, 4])
def test_plain_resize_needs_no_model(factor):
    out = Upscalers([]).upscale(image(), None, factor)
    assert out.shape == (40 * factor, 56 * factor, 3) and out.dtype == np.uint8


def test_unknown_upscaler_is_a_clear_error():
    with pytest.raises(EngineError) as info:
        Upscalers([]).upscale(image(), "4x-missing", 4)
    assert info.value.code == errors.UNKNOWN_MODEL and info.value.field == "upscale.upscaler"
    assert "plain resize only" in info.value.message


# ----------------------------------------------------------------------------- spandrel
@needs_spandrel
def test_models_are_found_and_pickles_refused_unless_allowed(tmp_path):
    import torch

    folder = tmp_path / "upscale_models"
    tiny_esrgan(folder / "4x-Tiny.safetensors", 4)
    tiny_esrgan(folder / "sub" / "plain.safetensors", 2)  # no scale in the name: read from the weights
    torch.save({"model.0.weight": torch.zeros(1)}, folder / "2x-pickled.pth")
    (folder / "notes.txt").write_text("not a model")
    ups = Upscalers([folder])
    assert {(u.id, u.scale) for u in ups.list()} == {("4x-Tiny", 4), ("sub/plain", 2)}
    [skipped] = ups.skipped()
    assert skipped.path == "2x-pickled.pth" and skipped.refused
    assert "2x-pickled" in {u.id for u in Upscalers([folder], allow_pickle=True).list()}


@needs_spandrel
def test_a_file_spandrel_does_not_know_is_skipped_with_the_reason(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"weird.weight": torch.zeros(3, 3)}, str(tmp_path / "mystery.safetensors"))
    ups = Upscalers([tmp_path])
    assert ups.list() == [] and "mystery.safetensors" in ups.skipped()[0].path


@needs_spandrel
@pytest.mark.parametrize("model_scale, factor", [(4, 4), (2, 2), (4, 2), (2, 4)])
def test_upscale_by_a_model_gives_the_exact_factor(tmp_path, model_scale, factor):
    tiny_esrgan(tmp_path / f"{model_scale}x-Tiny.safetensors", model_scale)
    ups = Upscalers([tmp_path])
    out = ups.upscale(image(), f"{model_scale}x-Tiny", factor)
    assert out.shape == (40 * factor, 56 * factor, 3) and out.dtype == np.uint8
    plain = ups.upscale(image(), None, factor)
    assert not np.array_equal(out, plain)  # the model ran, not the resize


@needs_spandrel
def test_tiles_match_one_pass(tmp_path):
    """Tiles with enough context reproduce the untiled result (RRDBNet's reach is far below the margin)."""
    from underpaint.server.engine.upscalers import load_model

    tiny_esrgan(tmp_path / "2x-Tiny.safetensors", 2)
    model = load_model(tmp_path / "2x-Tiny.safetensors")
    rgb = image(70, 90)
    whole = run_model(model, rgb, tile=512, overlap=0)
    tiled = run_model(model, rgb, tile=32, overlap=24)
    assert tiled.shape == whole.shape == (140, 180, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


@needs_spandrel
def test_cancel_stops_between_tiles(tmp_path):
    from underpaint.server.engine.upscalers import load_model

    tiny_esrgan(tmp_path / "2x-Tiny.safetensors", 2)
    token = Cancelled(after=2)
    with pytest.raises(JobCancelled):
        run_model(load_model(tmp_path / "2x-Tiny.safetensors"), image(70, 90), token, tile=32, overlap=8)
    assert token.checks == 3  # tile 3 of 9 was the last to run


def test_a_float_image_is_resized_in_float():
    levels = np.linspace(0, 1, 40 * 56 * 3, dtype=np.float32).reshape(40, 56, 3)
    out = Upscalers([]).upscale(levels, None, 2)
    assert out.shape == (80, 112, 3) and out.dtype == np.float32
    assert len(np.unique(np.round(out * 65535))) > 256


@needs_spandrel
def test_a_model_keeps_float_input_in_float(tmp_path):
    """16-bit and float layers go through the model in float: the same result as the 8-bit run, finer."""
    tiny_esrgan(tmp_path / "2x-Tiny.safetensors", 2)
    ups = Upscalers([tmp_path])
    rgb8 = image()
    eight = ups.upscale(rgb8, "2x-Tiny", 2)
    deep = ups.upscale(rgb8.astype(np.float32) / 255, "2x-Tiny", 2)
    assert deep.dtype == np.float32 and deep.shape == eight.shape
    assert np.abs(np.round(deep * 255) - eight).max() <= 1
