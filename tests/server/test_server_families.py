"""Tiny Flux.1, SD 3.5, Chroma, Z-Image and Qwen-Image models through the whole server: the welcome lists
them, REST jobs run on them, the selection is pasted back with everything outside it untouched, and what Flux
cannot do is refused with a sentence."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from server_helpers import ControlledEngine, Live, dilate, disc_mask, make_image, start_live, stop_live
from support.tiny_families import (
    build_tiny_chroma,
    build_tiny_flux,
    build_tiny_qwen_image,
    build_tiny_sd3,
    build_tiny_z_image,
)


@pytest.fixture(scope="module")
def flux_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from underpaint.server.cli.compose import build_engine
    from underpaint.server.config import ServerConfig

    root = tmp_path_factory.mktemp("flux-models")
    build_tiny_flux(root / "flux-dev")
    build_tiny_flux(root / "flux-fill", fill=True)
    build_tiny_sd3(root / "sd35")
    build_tiny_chroma(root / "chroma")
    build_tiny_z_image(root / "z-image")
    build_tiny_qwen_image(root / "qwen-image")
    engine = build_engine(ServerConfig(models_dirs=(root,)))
    live = start_live(ControlledEngine(engine))
    yield live
    stop_live(live)


def png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def post_job(live: Live, pixels: np.ndarray, mask: np.ndarray | None, params: dict) -> httpx.Response:
    files = {"image": ("image.png", png(pixels, "RGBA"), "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", png(mask, "L"), "image/png")
    return httpx.post(f"{live.http}/v1/jobs", files=files, data={"params": json.dumps(params)}, timeout=120)


def test_the_welcome_lists_the_flux_models(flux_live: Live) -> None:
    models = {m["id"]: m for m in httpx.get(f"{flux_live.http}/v1/models").json()}
    assert models["flux-dev"]["family"] == "flux1" and models["flux-fill"]["family"] == "flux1"
    assert models["sd35"]["family"] == "sd3" and models["chroma"]["family"] == "chroma"
    assert models["z-image"]["family"] == "z_image" and models["qwen-image"]["family"] == "qwen_image"


@pytest.mark.parametrize("model", ["flux-dev", "flux-fill", "sd35", "chroma", "z-image", "qwen-image"])
def test_an_inpaint_job_leaves_everything_outside_the_selection_untouched(flux_live: Live, model: str) -> None:
    pixels = make_image(80, 64, seed=41)
    mask = disc_mask(80, 64, 40, 30, 12)
    params = {"model": model, "prompt": "a red boat", "strength": 1.0, "steps": 3, "seed": 5, "guidance": 3.5,
              "inpaint": {"feather": 4, "grow": 2, "context": 8}}
    response = post_job(flux_live, pixels, mask, params)
    assert response.status_code == 200, response.text
    out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    outside = ~dilate(mask, 2 + 4)
    assert out.shape == pixels.shape and np.array_equal(out[outside], pixels[outside])
    assert np.any(out[..., :3] != pixels[..., :3], axis=-1)[mask > 0].mean() > 0.5


def test_an_img2img_job_with_the_flux_sampler(flux_live: Live) -> None:
    pixels = make_image(48, 40, seed=42)
    response = post_job(flux_live, pixels, None, {"model": "flux-dev", "steps": 2, "seed": 3, "sampler": "euler"})
    assert response.status_code == 200, response.text
    assert np.asarray(Image.open(io.BytesIO(response.content))).shape[:2] == (40, 48)


def test_full_resolution_is_refused_and_auto_fits(flux_live: Live) -> None:
    pixels = make_image(1040, 1032, seed=43)  # larger than Flux's 1024 x 1024
    params = {"model": "flux-dev", "steps": 4, "seed": 3, "strength": 0.3, "resolution": "full"}
    refused = post_job(flux_live, pixels, None, params)
    assert refused.status_code == 400 and refused.json()["detail"]["code"] == "unsupported"
    assert "cannot refine in tiles" in refused.json()["detail"]["message"]
    fitted = post_job(flux_live, pixels, None, {**params, "resolution": "auto"})  # auto would tile an SD model
    assert fitted.status_code == 200, fitted.text


def test_a_noise_prediction_sampler_is_refused(flux_live: Live) -> None:
    response = post_job(flux_live, make_image(32, 32), None, {"model": "flux-dev", "sampler": "dpmpp_2m"})
    assert response.status_code == 400, response.text
    assert "does not fit Flux.1 models" in response.json()["detail"]["message"]


@pytest.mark.parametrize("model", ["flux-dev", "qwen-image"])
def test_live_frames_run_on_a_transformer_family(flux_live: Live, model: str) -> None:
    from server_helpers import connected
    from test_server_live import Listener, canvas, send
    from underpaint.protocol.live import DeltaEncoder, LiveResultReceived
    from underpaint.protocol.live_messages import LiveStart, LiveStarted
    from underpaint.protocol.pixels import decode_pixels

    with connected(flux_live.url) as (client, _):
        events = Listener()
        client.live_start(LiveStart(stream="s1", model=model, prompt="a red boat", steps=4, strength=0.5, seed=11,
                                    tile=32), events)
        assert events.wait(lambda e: isinstance(e, LiveStarted)).model == model
        send(client, DeltaEncoder("s1", 32), canvas(72, 40), 72, 40)
        result = events.wait(lambda e: isinstance(e, LiveResultReceived))
        assert (result.frame.width, result.frame.height) == (72, 40)
        assert len(decode_pixels(result.frame)) == 72 * 40 * 4


def test_a_family_without_live_frames_is_refused_at_stream_start(flux_live: Live, monkeypatch) -> None:
    import dataclasses

    from server_helpers import connected
    from test_server_live import Listener
    from underpaint.protocol.live_messages import LiveError, LiveStart
    from underpaint.server.engine.families import FAMILIES

    monkeypatch.setitem(FAMILIES, "z_image", dataclasses.replace(FAMILIES["z_image"], live=False))
    with connected(flux_live.url) as (client, _):
        events = Listener()
        client.live_start(LiveStart(stream="s1", model="z-image", prompt="x", steps=4, strength=0.5, seed=1, tile=32),
                          events)
        error = events.wait(lambda e: isinstance(e, LiveError))
        assert error.code == "unsupported" and "Z-Image models cannot run live frames" in error.message
