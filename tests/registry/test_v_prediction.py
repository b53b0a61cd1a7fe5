"""SDXL v-prediction fine-tunes (NoobAI/Illustrious style): told from the checkpoint's marker keys, or from a
scheduler config beside it, and loaded with that scheduler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_sd import tiny_xl_pipeline, write_single_file
from underpaint.server.engine.registry import ModelRegistry
from underpaint.server.engine.single_file import load_single_file


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vpred")
    path = write_single_file(tiny_xl_pipeline(root / "work"), root / "models" / "noob-vpred.safetensors")
    shutil.rmtree(path.with_name("noob-vpred.config") / "scheduler")  # a config folder without a scheduler
    return path


def with_keys(checkpoint: Path, dest: Path, *markers: str) -> Path:
    state = load_file(str(checkpoint))
    state.update({key: torch.tensor([]) for key in markers})
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest))
    shutil.copytree(checkpoint.with_name(checkpoint.stem + ".config"), dest.with_name(dest.stem + ".config"))
    return dest


@pytest.mark.parametrize(("markers", "expected", "note"), [
    ((), {"prediction_type": "epsilon", "rescale_betas_zero_snr": False}, ""),
    (("v_pred",), {"prediction_type": "v_prediction", "rescale_betas_zero_snr": False}, " (v-prediction)"),
    (("v_pred", "ztsnr"), {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True,
                           "timestep_spacing": "trailing"}, " (v-prediction, zero terminal SNR)"),
])
def test_marker_keys_set_the_scheduler(checkpoint: Path, tmp_path: Path, markers, expected, note) -> None:
    path = with_keys(checkpoint, tmp_path / "models" / "xl.safetensors", *markers)
    source = ModelRegistry([path.parent], include_demo=False).source("xl")
    assert source.spec.family == "sdxl" and source.spec.note.endswith("config folder xl.config" + note)
    config = load_single_file(source, "cpu", torch.float32).img2img.scheduler.config
    assert {key: config[key] for key in expected} == expected


def test_a_scheduler_config_beside_the_file_wins(checkpoint: Path, tmp_path: Path) -> None:
    path = with_keys(checkpoint, tmp_path / "models" / "xl.safetensors", "v_pred")
    sidecar = path.with_name("xl.config") / "scheduler"
    sidecar.mkdir()
    (sidecar / "scheduler_config.json").write_text(json.dumps({"_class_name": "EulerDiscreteScheduler",
                                                               "prediction_type": "epsilon"}))
    source = ModelRegistry([path.parent], include_demo=False).source("xl")
    assert load_single_file(source, "cpu", torch.float32).img2img.scheduler.config["prediction_type"] == "epsilon"
