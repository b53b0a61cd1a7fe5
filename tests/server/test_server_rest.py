"""REST endpoints: health, info, models, one-shot multipart jobs, OpenAPI."""

from __future__ import annotations

import io
import json
import struct
import threading
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image
from server_helpers import dilate, disc_mask, make_image, wait_until
from underpaint.protocol.vocabulary import PROTOCOL_VERSION


def png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def post_job(base: str, image: bytes, mask: bytes | None = None, params: dict | str | None = None,
             headers: dict | None = None) -> httpx.Response:
    files = {"image": ("image.png", image, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    data = {} if params is None else {"params": params if isinstance(params, str) else json.dumps(params)}
    return httpx.post(f"{base}/v1/jobs", files=files, data=data, headers=headers or {}, timeout=120)


def test_health_info_and_models(live):
    health = httpx.get(f"{live.http}/health").json()
    assert health["status"] == "ok" and health["protocol"] == PROTOCOL_VERSION and health["device"]
    info = httpx.get(f"{live.http}/v1/info").json()
    assert info["type"] == "welcome" and info["protocol"] == PROTOCOL_VERSION
    assert info["defaults"]["model"] == "demo"
    assert info["limits"]["max_queued_jobs"] == live.config.max_queued_jobs
    models = httpx.get(f"{live.http}/v1/models").json()
    assert [m["id"] for m in models if m["default"]] == ["demo"]
    assert models == info["models"]


def test_openapi_lists_the_routes(live):
    spec = httpx.get(f"{live.http}/openapi.json").json()
    assert {"/health", "/v1/info", "/v1/models", "/v1/jobs"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/v1/jobs"]
    assert "image/png" in json.dumps(spec["paths"]["/v1/jobs"]["post"]["responses"])


def test_inpaint_job_returns_the_whole_image_untouched_outside_the_selection(live):
    pixels = make_image(80, 64, seed=31)
    mask = disc_mask(80, 64, 45, 30, 10)
    params = {"prompt": "a moon", "strength": 1.0, "steps": 3, "seed": 99,
              "inpaint": {"feather": 4, "grow": 2, "context": 8}}
    response = post_job(live.http, png(pixels, "RGBA"), png(mask, "L"), params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-underpaint-seeds"] == "99"
    out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert out.shape == pixels.shape
    outside = ~dilate(mask, 2 + 4)
    assert np.array_equal(out[outside], pixels[outside])
    assert np.array_equal(out[..., 3], pixels[..., 3])
    changed = np.any(out[..., :3] != pixels[..., :3], axis=-1)
    assert changed[mask > 0].mean() > 0.5
    again = post_job(live.http, png(pixels, "RGBA"), png(mask, "L"), params)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(again.content)).convert("RGBA")), out)


def test_img2img_job_without_a_mask(live):
    pixels = make_image(48, 40, seed=32)
    response = post_job(live.http, png(pixels, "RGBA"), params={"steps": 2, "seed": 5})
    assert response.status_code == 200, response.text
    out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert out.shape == pixels.shape and np.array_equal(out[..., 3], pixels[..., 3])
    assert not np.array_equal(out[..., :3], pixels[..., :3])


@pytest.mark.parametrize(("params", "status", "code", "field"), [
    ("{not json", 400, "bad_json", "params"),
    ("[1]", 400, "bad_message", "params"),
    ({"strength": 5}, 400, "out_of_range", "strength"),
    ({"strength": float("nan")}, 400, "not_finite", "strength"),
    ({"steps": 10_000}, 400, "out_of_range", "steps"),
    ({"sampler": "magic"}, 400, "bad_value", "sampler"),
    ({"colour": "blue"}, 400, "unknown_field", "colour"),
    ({"model": "no-such-model"}, 404, "unknown_model", "model"),
    ({"strength": 0.1, "steps": 5}, 400, "out_of_range", "strength"),
    ({"kind": "inpaint"}, 400, "missing_input", "mask"),
])
def test_bad_params_are_400_with_a_code(live, params, status, code, field):
    response = post_job(live.http, png(make_image(32, 32), "RGBA"), params=params)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert (detail["code"], detail["field"]) == (code, field)
    assert detail["message"]


def test_bad_uploads(live):
    response = post_job(live.http, b"not an image at all")
    assert response.status_code == 400 and response.json()["detail"]["code"] == "bad_payload"
    mask = png(np.full((16, 16), 255, np.uint8), "L")
    response = post_job(live.http, png(make_image(32, 32), "RGBA"), mask)
    assert response.status_code == 400 and response.json()["detail"]["code"] == "size_mismatch"
    response = post_job(live.http, png(make_image(32, 32), "RGBA"), png(np.zeros((32, 32), np.uint8), "L"))
    assert response.status_code == 400 and response.json()["detail"]["code"] == "empty_mask"


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that claims a huge size but carries no pixels: it must be refused from its header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_oversize_uploads_are_refused_before_decoding(live, make_live):
    response = post_job(live.http, header_only_png(12_000, 12_000))
    assert response.status_code == 413  # too_large is 413 Content Too Large
    assert response.json()["detail"]["code"] == "too_large" and "12000x12000" in response.json()["detail"]["message"]
    response = post_job(live.http, header_only_png(30_000, 30_000))  # a decompression bomb for PIL
    assert response.status_code in (400, 413) and response.json()["detail"]["code"] in ("too_large", "bad_payload")
    small = make_live(max_pixels=32 * 32)
    response = post_job(small.http, png(make_image(64, 64), "RGBA"))
    assert response.status_code == 413 and response.json()["detail"]["field"] == "image"
    assert response.json()["detail"]["code"] == "too_large"
    response = post_job(small.http, png(make_image(32, 32), "RGBA"), params={"steps": 2})
    assert response.status_code == 200, response.text


def test_rest_refuses_a_foreign_origin(live):
    response = httpx.get(f"{live.http}/v1/info", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and response.json()["detail"]["code"] == "forbidden_origin"


def test_rest_jobs_from_one_address_share_a_queue_limit(make_live):
    """A script cannot flood the queue: REST jobs from one address count against max_queued_jobs."""
    server = make_live(max_queued_jobs=1)
    gate = server.engine.hold("held")
    image = png(make_image(32, 32, seed=3), "RGBA")
    answers: dict[str, httpx.Response] = {}
    running = threading.Thread(target=lambda: answers.update(first=post_job(
        server.http, image, params={"steps": 2, "prompt": "held"})))
    running.start()
    assert gate.reached.wait(60)
    waiting = threading.Thread(target=lambda: answers.update(second=post_job(
        server.http, image, params={"steps": 2, "prompt": "queued"})))
    waiting.start()
    wait_until(lambda: server.service.jobs.queued_count("rest:127.0.0.1") == 1, 60, "the second job to queue")
    refused = post_job(server.http, image, params={"steps": 2})
    assert refused.status_code == 429 and refused.json()["detail"]["code"] == "queue_full"
    gate.release.set()
    running.join(120)
    waiting.join(120)
    assert answers["first"].status_code == 200 and answers["second"].status_code == 200
