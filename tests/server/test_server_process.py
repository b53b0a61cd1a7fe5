"""A real `underpaint serve` subprocess started with --token: websocket and REST authentication, and a job
end to end through the installed command."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from server_helpers import TIMEOUT, connected, image_frame, make_image, quick_job, result_array, submit
from support.server import running_server
from underpaint.protocol.client import Client
from underpaint.protocol.errors import ProtocolError

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("token-server")
    with running_server(folder, "--token", TOKEN, env={"OMP_NUM_THREADS": "1"}) as url:
        yield url


def http_of(ws_url: str) -> str:
    return ws_url.replace("ws://", "http://").removesuffix("/v1/ws")


@pytest.mark.parametrize(("token", "message"), [("wrong", "wrong token"), (None, "missing token")])
def test_wrong_or_missing_token_is_refused(token_server, token, message):
    client = Client(token_server, token=token)
    client.connect()
    try:
        with pytest.raises(ProtocolError) as info:
            client.wait_connected(timeout=30)
    finally:
        client.close(wait=True)
    assert (info.value.code, info.value.message, info.value.field) == ("bad_token", message, "token")
    quick_job(token_server, token=TOKEN)  # the server still serves a client that knows the token


def test_job_end_to_end_through_the_command(token_server):
    pixels = make_image(64, 48, seed=41)
    with connected(token_server, token=TOKEN) as (client, _):
        assert client.welcome.defaults.model == "demo"
        sub = submit(seed=3, steps=4, result_format="rgba16", result_encoding="png")
        result = client.run_job(sub, {"image": image_frame(sub, pixels, x=-5, y=7)}, timeout=TIMEOUT)
    frame = result.frames[0]
    assert (frame.x, frame.y, frame.width, frame.height, frame.encoding) == (-5, 7, 64, 48, "png")
    out = result_array(frame)
    assert np.array_equal(out[..., 3], pixels[..., 3].astype(np.uint16) * 257)


def test_rest_needs_the_bearer_token(token_server):
    base = http_of(token_server)
    assert httpx.get(f"{base}/health").status_code == 200  # liveness needs no secret
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.get(f"{base}/v1/info", headers=headers)
        assert response.status_code == 401 and response.json()["detail"]["code"] == "bad_token"
    response = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json()[0]["id"] == "demo"
    response = httpx.post(f"{base}/v1/jobs", files={"image": ("a.png", b"x", "image/png")})
    assert response.status_code == 401
