"""LoRAs end to end: a server with a LoRA folder lists them in its welcome and applies them per job."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server_helpers import (
    TIMEOUT,
    ControlledEngine,
    image_frame,
    make_image,
    result_array,
    start_live,
    stop_live,
    submit,
)
from underpaint.protocol.client import Client
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import LoraChoice

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from lora_files import lora_weights, write_kohya, write_sd15_shaped  # noqa: E402


@pytest.fixture(scope="module")
def lora_live(tmp_path_factory: pytest.TempPathFactory, real_engine) -> Iterator:
    from underpaint.server.engine.lora import LoraRegistry

    folder = tmp_path_factory.mktemp("ComfyUI") / "loras"
    pipes = real_engine.pipelines(real_engine.default_model())
    write_kohya(folder / "speed" / "ink.safetensors", lora_weights(pipes.img2img.unet, pipes.img2img.text_encoder, 1))
    write_sd15_shaped(folder / "sd15.safetensors")
    previous, real_engine.loras = real_engine.loras, LoraRegistry([folder])
    live = start_live(ControlledEngine(real_engine))
    yield live
    stop_live(live)
    real_engine.loras = previous


@pytest.fixture
def client(lora_live) -> Iterator[Client]:
    client = Client(lora_live.url)
    client.connect()
    client.wait_connected(timeout=30)
    yield client
    client.close(wait=True)


def job(client: Client, **fields) -> np.ndarray:
    sub = submit(seed=3, steps=4, strength=0.6, **fields)
    done = client.run_job(sub, {"image": image_frame(sub, make_image(64, 64, seed=2))}, timeout=TIMEOUT)
    return result_array(done.frames[0])


def test_the_welcome_lists_the_loras_and_the_feature(client: Client) -> None:
    assert client.welcome is not None and "lora" in client.welcome.features
    assert {(lo.id, lo.name, lo.family) for lo in client.welcome.loras} == {("speed/ink", "ink", "demo"),
                                                                            ("sd15", "sd15", "sd1")}


def test_a_job_with_a_lora_differs_and_weight_zero_does_not(client: Client) -> None:
    plain = job(client)
    assert np.array_equal(job(client, loras=(LoraChoice(id="speed/ink", weight=0.0),)), plain)
    assert not np.array_equal(job(client, loras=(LoraChoice(id="speed/ink", weight=1.0),)), plain)
    assert np.array_equal(job(client), plain)


def test_a_lora_of_another_family_is_a_job_error_and_the_server_goes_on(client: Client) -> None:
    with pytest.raises(ProtocolError) as info:
        job(client, loras=(LoraChoice(id="sd15", weight=1.0),))
    assert (info.value.code, info.value.field) == ("incompatible_lora", "loras[0].id")
    assert "is for sd1 models" in info.value.message
    with pytest.raises(ProtocolError) as info:
        job(client, loras=(LoraChoice(id="missing", weight=1.0),))
    assert info.value.code == "unknown_lora"
    assert job(client).shape == (64, 64, 4)


def test_models_lists_the_loras_and_tiny_vaes_beside_a_comfyui_checkpoints_folder(tmp_path: Path) -> None:
    from test_cli_operator import write_diffusers_folder
    from test_server_cli import underpaint

    models = tmp_path / "ComfyUI" / "models"
    write_diffusers_folder(models / "checkpoints" / "tiny-sd")
    write_sd15_shaped(models / "loras" / "styles" / "ink.safetensors")
    (models / "loras" / "notes.safetensors").write_bytes(b"junk")
    for part in ("encoder", "decoder"):
        write_sd15_shaped(models / "vae_approx" / f"taesdxl_{part}.safetensors")
    done = underpaint("models", "--models-dir", str(models / "checkpoints"), timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert "lora styles/ink sd1" in lines
    assert any(line.startswith("lora notes.safetensors skipped:") for line in lines)
    assert "tiny VAE taesdxl sdxl" in lines
