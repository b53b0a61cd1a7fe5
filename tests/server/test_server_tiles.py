"""Tiled input and tiled results end to end: the real Client splits and reassembles, the server assembles and
splits, and the pixels are exactly those of the same job sent as single frames."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image
from server_helpers import (
    TIMEOUT,
    Raw,
    connected,
    dilate,
    disc_mask,
    image_frame,
    make_image,
    mask_frame,
    result_array,
    submit,
)
from underpaint.protocol.frames import decode_frame
from underpaint.protocol.messages import InpaintOptions, JobInput, PreviewOptions, Started
from underpaint.protocol.pixels import decode_pixels
from underpaint.protocol.tiles import split


def run(client, sub, pixels, x=0, y=0, mask=None, tile_side=0):
    client.tile_side = tile_side
    mframe = mask_frame(sub, mask, x, y) if mask is not None else None
    return client.run_job(sub, {"image": image_frame(sub, pixels, "rgba8", x, y), "mask": mframe},
                          timeout=TIMEOUT)


def test_tiled_img2img_gives_exactly_the_untiled_result(live):
    pixels = make_image(300, 200, seed=3)
    with connected(live.url) as (client, _):
        plain = run(client, submit(seed=5, batch=2, result_encoding="zlib"), pixels, 11, -9)
        tiled = run(client, submit(seed=5, batch=2, result_encoding="zlib"), pixels, 11, -9, tile_side=128)
    assert plain.result.images == tiled.result.images == 2 == len(tiled.frames)
    for a, b in zip(plain.frames, tiled.frames, strict=True):
        assert a.encoding == "zlib" and b.encoding == "raw"  # b was reassembled from zlib result tiles
        assert (b.x, b.y, b.width, b.height, b.index) == (a.x, a.y, a.width, a.height, a.index) == (11, -9, 300, 200,
                                                                                                     b.index)
        assert decode_pixels(a) == decode_pixels(b)
    assert [f.index for f in tiled.frames] == [0, 1]


def test_tiled_inpaint_keeps_every_pixel_outside_the_selection(live):
    width, height, ox, oy = 300, 200, -40, 24
    pixels = make_image(width, height, seed=9)
    mask = disc_mask(width, height, 180, 90, 30)
    options = InpaintOptions(feather=4, grow=2, context=16)
    with connected(live.url) as (client, rec):
        plain = run(client, submit("inpaint", seed=2, strength=1.0, steps=3, inpaint=options), pixels, ox, oy,
                    mask)
        sub = submit("inpaint", seed=2, strength=1.0, steps=3, inpaint=options)
        tiled = run(client, sub, pixels, ox, oy, mask, tile_side=64)
        started = rec.for_job(sub.job, Started)[0]
    frame = tiled.frames[0]
    assert (started.x, started.y, started.width, started.height) == (frame.x, frame.y, frame.width, frame.height)
    assert frame.width > 64  # the result region itself came back as several tiles
    assert decode_pixels(frame) == decode_pixels(plain.frames[0])
    composed = pixels.copy()
    lx, ly = frame.x - ox, frame.y - oy
    composed[ly:ly + frame.height, lx:lx + frame.width] = result_array(frame)
    outside = ~dilate(mask, options.grow + options.feather)
    assert np.array_equal(composed[outside], pixels[outside])
    assert np.any(composed[mask > 0] != pixels[mask > 0])


def test_server_sends_result_tiles_with_the_image_index(live):
    raw = Raw(live.url)
    try:
        assert raw.hello()["type"] == "welcome"
        sub = submit(seed=1, batch=2, result_tile=64, preview=PreviewOptions(enabled=False),
                     inputs=(JobInput(role="image", tiles=6),))
        tiles = split(image_frame(sub, make_image(130, 70, seed=1)), 64)
        assert len(tiles) == sub.input("image").tiles
        raw.send(sub.encode())
        for tile in tiles:
            raw.send_frame(tile)
        results, final = [], None
        while final is None:
            data = raw.ws.recv(timeout=TIMEOUT)
            if isinstance(data, bytes):
                results.append(decode_frame(data))
            elif json.loads(data)["type"] in ("result", "error", "cancelled"):
                final = json.loads(data)
        assert (final["type"], final.get("images")) == ("result", 2), final
        assert [(f.index, f.x, f.y, f.width, f.height) for f in results] == [
            (i, x, y, w, h) for i in (0, 1) for (x, y, w, h) in
            ((0, 0, 64, 64), (64, 0, 64, 64), (128, 0, 2, 64), (0, 64, 64, 6), (64, 64, 64, 6), (128, 64, 2, 6))]
    finally:
        raw.close()


@pytest.mark.parametrize("field", ["inputs", "result_tile"])
def test_rest_jobs_refuse_tile_fields(live, field):
    buf = io.BytesIO()
    Image.fromarray(make_image(32, 32)).save(buf, "PNG")
    value = [{"role": "image", "tiles": 2}] if field == "inputs" else 64
    response = httpx.post(f"{live.http}/v1/jobs", files={"image": ("a.png", buf.getvalue(), "image/png")},
                          data={"params": json.dumps({field: value})}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["detail"]["code"] == "unsupported" and response.json()["detail"]["field"] == field
