"""Issue #24 item 4 and issue #25 items 6 and 8 (server half): every bad REST input is a 4xx in the one error
shape with no Python repr, REST upscale works, and a batch answers every image."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image
from server_helpers import make_image


def png(array: np.ndarray, mode: str = "RGBA") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def post(base: str, image: bytes | None, params: dict | str | None = None, mask: bytes | None = None,
         name: str = "image.png") -> httpx.Response:
    files = {} if image is None else {"image": (name, image, "application/octet-stream")}
    if mask is not None:
        files["mask"] = ("mask.tif", mask, "application/octet-stream")
    data = {} if params is None else {"params": params if isinstance(params, str) else json.dumps(params)}
    return httpx.post(f"{base}/v1/jobs", files=files or None, data=data, timeout=120)


def detail(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"detail"} and set(body["detail"]) == {"code", "message", "field"}, body
    assert "0x" not in body["detail"]["message"], body  # no Python object repr
    return body["detail"]


def broken_png() -> bytes:
    """A PNG whose IDAT is cut short and followed by a chunk with an invalid type (Pillow: SyntaxError)."""
    data = png(make_image(32, 32, seed=4))
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at:at + 4])[0]
    body = data[at + 8:at + 8 + length // 2]
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return data[:at] + chunk + struct.pack(">I", 4) + b"\x00\x01\x02\x03" + b"zzzz" + bytes(4)


def odd_dds() -> bytes:
    """A DDS header with a pixel format Pillow cannot decode (NotImplementedError)."""
    header = struct.pack("<7I", 124, 0x1007, 8, 8, 0, 0, 0) + bytes(44) + struct.pack("<2I", 32, 4) + b"ZZZZ"
    return b"DDS " + header + bytes(20) + struct.pack("<4I", 0x1000, 0, 0, 0) + bytes(4) + bytes(256)


def lab_tiff() -> bytes:
    buf = io.BytesIO()
    Image.new("LAB", (32, 32)).save(buf, "TIFF")
    return buf.getvalue()


def test_an_integer_too_long_for_python_is_bad_json(live):
    response = post(live.http, png(make_image(32, 32)), '{"seed": ' + "9" * 5000 + "}")
    assert response.status_code == 400
    assert (detail(response)["code"], detail(response)["field"]) == ("bad_json", "params")


@pytest.mark.parametrize(("image", "mask", "field"), [
    (broken_png(), None, "image"),
    (odd_dds(), None, "image"),
    (png(make_image(32, 32)), lab_tiff(), "mask"),
    (b"not an image at all", None, "image"),
], ids=["truncated-idat", "dds", "lab-tiff-mask", "junk"])
def test_files_pillow_cannot_read_are_bad_payload(live, image, mask, field):
    response = post(live.http, image, {"steps": 2}, mask=mask)
    assert response.status_code == 400, response.text
    assert (detail(response)["code"], detail(response)["field"]) == ("bad_payload", field)
    assert detail(response)["message"].startswith(f"{field} is not")


def test_fastapis_own_refusals_have_the_same_shape(live):
    response = post(live.http, None, {"steps": 2})  # no image file at all
    assert response.status_code == 400
    assert (detail(response)["code"], detail(response)["field"]) == ("missing_input", "image")
    response = httpx.get(f"{live.http}/v1/nothing-here")
    assert response.status_code == 404 and detail(response)["code"] == "unsupported"


def test_rest_upscale_returns_the_bigger_image(live):
    pixels = make_image(64, 64, seed=8)
    response = post(live.http, png(pixels), {"kind": "upscale", "upscale": {"factor": 2, "refine": False}})
    assert response.status_code == 200, response.text
    out = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert out.shape == (128, 128, 4)
    small = np.asarray(Image.fromarray(out).resize((64, 64), Image.Resampling.BOX)).astype(int)
    assert np.abs(small - pixels.astype(int)).mean() < 8  # the same picture, twice the size


def test_a_batch_answers_a_zip_of_every_image(live):
    pixels = make_image(32, 32, seed=9)
    response = post(live.http, png(pixels), {"steps": 2, "batch": 3, "seed": 40})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-underpaint-seeds"] == "40,41,42"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        images = [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGBA")) for n in names]
    assert names == ["image-0.png", "image-1.png", "image-2.png"]
    assert all(i.shape == pixels.shape for i in images)
    assert not np.array_equal(images[0], images[1])  # three seeds, three images
    single = post(live.http, png(pixels), {"steps": 2, "seed": 41})  # one image stays a plain PNG
    assert single.headers["content-type"] == "image/png" and single.headers["x-underpaint-seeds"] == "41"
    assert np.asarray(Image.open(io.BytesIO(single.content))).shape == pixels.shape
