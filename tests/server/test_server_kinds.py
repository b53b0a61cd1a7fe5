"""Job kinds follow the vocabulary: the welcome offers exactly what this server implements, and a kind the
protocol declares but the server has no handler for (``outpaint``) is refused with ``unsupported``, cleanly:
the session goes on and its next job completes."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
from PIL import Image
from server_helpers import TIMEOUT, Raw, connected, image_frame, make_image, mask_frame, quick_job, result_array, submit
from underpaint.protocol import vocabulary
from underpaint.protocol.messages import JobInput
from underpaint.server import imaging
from underpaint.server.jobs import handlers
from underpaint.server.jobs.handlers import HANDLERS, Handler

PIXELS = make_image(64, 64, seed=5)


def finished(raw: Raw, job: str) -> dict:
    while True:
        message = raw.recv(TIMEOUT)
        if message.get("job") == job and message["type"] in ("result", "error", "cancelled"):
            return message


def test_welcome_features_are_what_the_server_implements(live):
    raw = Raw(live.url)
    try:
        features = set(raw.hello()["features"])
    finally:
        raw.close()
    kinds = {f.partition(":")[2] for f in features if f.startswith("kind:")}
    assert kinds == set(HANDLERS) == set(vocabulary.KINDS)  # issue 14: outpaint and upscale have handlers
    assert "tiled" in features  # submit.resolution
    assert not any(f.startswith("role:") for f in features)  # no control/reference input yet
    samplers = {f.partition(":")[2] for f in features if f.startswith("sampler:")}
    assert samplers == {name for name, row in vocabulary.SAMPLERS.items() if row.feature}  # the engine maps all
    assert {"encoding:jpeg", "encoding:webp", "resume"} <= features
    assert features <= vocabulary.ALL_FEATURES


def test_an_unimplemented_kind_is_unsupported_and_the_session_goes_on(make_live, monkeypatch):
    """A client that skips its own feature check submits ``outpaint`` anyway (with its frames) to a server
    without an outpaint handler."""
    monkeypatch.delitem(HANDLERS, "outpaint")
    live = make_live()
    raw = Raw(live.url)
    try:
        raw.hello()  # advertises every feature of the vocabulary, outpaint included
        out = submit("outpaint", prompt="more sky",
                     inputs=(JobInput(role="image"), JobInput(role="mask")))
        raw.send(out.to_dict())
        error = raw.recv_error()
        assert (error["code"], error["job"], error["field"]) == ("unsupported", out.job, "kind")
        assert error["message"] == ("the server does not offer job kind 'outpaint' (it offers: img2img, inpaint, "
                                    "upscale)")
        raw.send_frame(image_frame(out, PIXELS))  # its frames were already on the way: dropped quietly
        raw.send_frame(mask_frame(out, PIXELS[..., 3]))
        after = submit("inpaint", prompt="after outpaint")
        raw.send(after.to_dict())
        raw.send_frame(image_frame(after, PIXELS))
        raw.send_frame(mask_frame(after, (PIXELS[..., 0] > 128).astype("uint8") * 255))
        first = raw.recv(TIMEOUT)
        assert first.get("job") == after.job, first  # nothing more about the refused job
        assert finished(raw, after.job)["type"] == "result"
    finally:
        raw.close()
    assert live.engine.order() == ["after outpaint"]  # the refused job never reached the engine
    quick_job(live.url)


def test_rest_refuses_an_unimplemented_kind(make_live, monkeypatch):
    monkeypatch.delitem(HANDLERS, "outpaint")
    live = make_live()
    buf = io.BytesIO()
    Image.fromarray(PIXELS).save(buf, "PNG")
    response = httpx.post(f"{live.http}/v1/jobs", files={"image": ("a.png", buf.getvalue(), "image/png")},
                          data={"params": json.dumps({"kind": "outpaint"})}, timeout=TIMEOUT)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == ("unsupported", "kind")
    assert "job kind 'outpaint'" in detail["message"]


def fill_transparent(inputs: handlers.Inputs, submit, model: handlers.Model) -> imaging.Prepared:
    """A minimal outpaint: repaint the fully transparent pixels (or the mask, when one is sent)."""
    mask = inputs.get("mask")
    if mask is None:
        mask = np.where(inputs.image[..., 3] == 0, np.uint8(255), np.uint8(0))
    return imaging.prepare(inputs.image, inputs.rect, mask, cut=imaging.Cut.AROUND_MASK, resolution=model.resolution,
                           context=8, max_pixels=model.max_pixels)


def test_a_kind_is_served_once_it_has_a_handler(make_live, monkeypatch):
    """Issue #10: with its vocabulary row in place, one handler is all the server needs for a new kind: the
    welcome offers it, models list it, the connection accepts its roles and the job runs end to end."""
    monkeypatch.setitem(HANDLERS, "outpaint", Handler("inpaint", fill_transparent))
    server = make_live()
    pixels = make_image(64, 64, seed=8, opaque=True)
    pixels[:, 48:, 3] = 0  # a transparent strip on the right to fill
    with connected(server.url) as (client, _):
        assert "kind:outpaint" in client.welcome.features
        assert "outpaint" in client.welcome.models[0].capabilities
        sub = submit("outpaint", prompt="extend", strength=1.0, steps=3)
        result = client.run_job(sub, {"image": image_frame(sub, pixels)}, timeout=TIMEOUT)
    frame = result.frames[0]
    assert frame.x + frame.width == 64 and frame.x <= 48 - 8  # the strip and its context ring
    out = result_array(frame)
    strip = out[:, 48 - frame.x:, :3]
    assert np.any(strip != pixels[frame.y:frame.y + frame.height, 48:, :3])  # the strip was painted
    assert np.array_equal(out[..., 3], pixels[frame.y:frame.y + frame.height, frame.x:, 3])  # alpha kept
