"""Issue 14 through the server: full-resolution (tiled) runs, outpaint and upscale jobs end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from server_helpers import TIMEOUT, connected, image_frame, make_image, mask_frame, result_array, submit
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import InpaintOptions, Progress, Started, UpscaleOptions
from underpaint.server.jobs import handlers


# ----------------------------------------------------------------------------- the resolution rule (no server)
@pytest.mark.parametrize("resolution, size, strength, expected", [
    ("auto", (800, 720), 0.3, True),  # > 2x the model's area, a refine
    ("auto", (800, 720), 0.7, False),  # high strength: fitted
    ("auto", (700, 700), 0.3, False),  # < 2x the area
    ("full", (600, 500), 0.9, True),  # asked for: bigger than one model area
    ("full", (500, 500), 0.3, False),  # within one model area: one fitted run
    ("fit", (4000, 3000), 0.2, False),
])
def test_which_regions_run_tiled(resolution, size, strength, expected):
    sub = submit("img2img", resolution=resolution, strength=strength)
    assert handlers.tiled(sub, Rect(0, 0, *size), handlers.Model(512, None)) is expected


@pytest.fixture
def requests(live, monkeypatch):
    """The engine requests of this test's jobs."""
    seen = []
    original = live.engine.generate

    def spy(request, on_step, cancel):
        seen.append(request)
        return original(request, on_step, cancel)

    monkeypatch.setattr(live.engine, "generate", spy)
    return seen


# ----------------------------------------------------------------------------- full resolution
def test_full_resolution_inpaint_keeps_its_size_and_the_pixels_outside_the_mask(live, requests):
    pixels = make_image(640, 448, seed=3, opaque=True)
    mask = np.zeros((448, 640), np.uint8)
    mask[100:340, 150:520] = 255
    sub = submit("inpaint", resolution="full", strength=0.5, steps=2, inpaint=InpaintOptions(feather=4, context=600))
    with connected(live.url) as (client, _):
        result = client.run_job(sub, {"image": image_frame(sub, pixels, x=16, y=8),
                                      "mask": mask_frame(sub, mask, x=16, y=8)}, timeout=TIMEOUT)
    [request] = requests
    assert request.tiled and request.image.shape == (448, 640, 3)  # the region itself, not fitted to 512²
    frame = result.frames[0]
    assert (frame.x, frame.y, frame.width, frame.height) == (16, 8, 640, 448)
    out = result_array(frame)
    outside = np.ones((448, 640), bool)
    outside[100 - 5:340 + 5, 150 - 5:520 + 5] = False  # the mask and its feather
    assert np.array_equal(out[outside], pixels[outside])
    assert not np.array_equal(out[120:320, 170:500], pixels[120:320, 170:500])


# ----------------------------------------------------------------------------- outpaint
def test_outpaint_fills_the_new_area_with_a_soft_seam(live, requests):
    old = make_image(64, 48, seed=4, opaque=True)
    canvas = np.zeros((48, 96, 4), np.uint8)
    canvas[:, 32:] = old  # the canvas grew by 32 px on the left: x = -32 in the old document
    sub = submit("outpaint", strength=1.0, steps=2, inpaint=InpaintOptions(feather=8, context=32))
    with connected(live.url) as (client, recorder):
        result = client.run_job(sub, {"image": image_frame(sub, canvas, x=-32, y=0)}, timeout=TIMEOUT)
    started = recorder.for_job(sub.job, Started)[0]
    frame = result.frames[0]
    assert (frame.x, frame.y, frame.width, frame.height) == (-32, 0, 96, 48)
    assert (started.x, started.y, started.width, started.height) == (-32, 0, 96, 48)
    assert requests[0].kind == "inpaint" and not requests[0].tiled
    out = result_array(frame)
    assert (out[:, :32, 3] == 255).all()  # the new area, opaque
    assert (out[:, 40:, 3] == 0).all()  # the old image beyond the seam: untouched (transparent layer)
    seam = out[:, 32:40, 3].astype(int)
    assert (np.diff(seam, axis=1) <= 0).all() and seam[:, 0].min() > 200  # ramps down into the old image
    assert out[:, :32, :3].std() > 1  # painted, not a flat colour


def test_outpaint_without_a_new_area_is_an_empty_mask_error(live):
    sub = submit("outpaint", strength=1.0, steps=2)
    with connected(live.url) as (client, _), pytest.raises(ProtocolError) as info:
        client.run_job(sub, {"image": image_frame(sub, make_image(32, 32, opaque=True))}, timeout=TIMEOUT)
    assert info.value.code == "empty_mask"


# ----------------------------------------------------------------------------- upscale
def test_upscale_without_refine_is_a_resize_placed_at_the_scaled_offset(live, requests):
    pixels = make_image(40, 24, seed=5, opaque=True)
    sub = submit("upscale", upscale=UpscaleOptions(factor=4, refine=False), strength=0.01, steps=1)
    with connected(live.url) as (client, recorder):
        result = client.run_job(sub, {"image": image_frame(sub, pixels, x=10, y=6)}, timeout=TIMEOUT)
    assert requests == []  # no diffusion, no denoising-steps check (0.01 x 1 step would be refused)
    assert not recorder.for_job(sub.job, Progress)
    started = recorder.for_job(sub.job, Started)[0]
    assert (started.x, started.y, started.width, started.height) == (40, 24, 160, 96)
    [frame] = result.frames
    assert (frame.x, frame.y, frame.width, frame.height) == (40, 24, 160, 96)
    assert result.result.images == 1 and result.result.seeds == ()
    expected = np.asarray(Image.fromarray(pixels[..., :3]).resize((160, 96), Image.LANCZOS))
    assert np.abs(result_array(frame)[..., :3].astype(int) - expected).max() <= 1
    assert (result_array(frame)[..., 3] == 255).all()


def test_upscale_with_refine_runs_img2img_on_the_upscaled_image(live, requests):
    pixels = make_image(48, 32, seed=6, opaque=True)
    sub = submit("upscale", upscale=UpscaleOptions(factor=2), strength=0.5, steps=2)
    with connected(live.url) as (client, _):
        result = client.run_job(sub, {"image": image_frame(sub, pixels, x=3, y=5)}, timeout=TIMEOUT)
    [request] = requests
    assert request.kind == "img2img"
    [frame] = result.frames
    assert (frame.x, frame.y, frame.width, frame.height) == (6, 10, 96, 64)
    assert result.result.images == 1 and len(result.result.seeds) == 1


def test_an_unknown_upscaler_is_refused_naming_the_field(live):
    sub = submit("upscale", upscale=UpscaleOptions(upscaler="4x-Nothing", refine=False))
    with connected(live.url) as (client, _), pytest.raises(ProtocolError) as info:
        client.run_job(sub, {"image": image_frame(sub, make_image(16, 16))}, timeout=TIMEOUT)
    assert (info.value.code, info.value.field) == ("unknown_model", "upscale.upscaler")


def test_a_16_bit_upscale_without_refine_keeps_its_levels(live):
    """A 16-bit layer is resized in float, not through 8 bits: its result has more than 256 levels, and it is
    the float Lanczos resize of the input within one 16-bit level."""
    pixels = make_image(40, 24, seed=8, dtype=np.uint16, opaque=True)
    sub = submit("upscale", upscale=UpscaleOptions(factor=2, refine=False), result_format="rgba16")
    with connected(live.url) as (client, _):
        result = client.run_job(sub, {"image": image_frame(sub, pixels, fmt="rgba16")}, timeout=TIMEOUT)
    [frame] = result.frames
    out = result_array(frame)
    assert frame.pixel_format == "rgba16" and out.shape == (48, 80, 4)
    assert len(np.unique(out[..., 0])) > 256, "the result went through 8 bits"
    colour = pixels[..., :3].astype(np.float32) / 65535
    expected = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(colour[..., c]), "F").resize(
        (80, 48), Image.LANCZOS)) for c in range(3)], axis=-1)
    assert np.abs(out[..., :3].astype(np.float64) / 65535 - np.clip(expected, 0, 1)).max() <= 1.5 / 65535
    assert (out[..., 3] == 65535).all()
