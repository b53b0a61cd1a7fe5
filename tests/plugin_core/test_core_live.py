"""plugin_core.live.LiveSession against a real `underpaint serve` (demo model): what a host's timer sees."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support.server import running_process
from underpaint.protocol.client import Client
from underpaint.protocol.plugin_core import params
from underpaint.protocol.plugin_core.live import LiveFrame, LiveSession, live_params

W = H = 64
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_process(tmp_path_factory.mktemp("live-server"), "--max-model-pixels", str(64 * 64)) as (url, proc):
        yield url, proc


@pytest.fixture
def client(server):
    c = Client(server[0], client_name="live-tests")
    c.connect()
    c.wait_connected(30)
    yield c
    c.close(wait=True)


def wait_frame(session: LiveSession, number: int | None = None, timeout: float = TIMEOUT) -> LiveFrame:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = session.poll()
        if frame is not None and (number is None or frame.number >= number):
            return frame
        time.sleep(0.01)
    raise AssertionError(f"no live frame; status {session.status!r}, error {session.error!r}")


def canvas(seed: int = 0) -> bytearray:
    return bytearray(os.urandom(W * H * 4) if seed < 0 else bytes((i * 7 + seed) % 251 for i in range(W * H * 4)))


class Params:
    """A host's job params object (GIMP's shape: ``submit_fields``)."""

    def submit_fields(self) -> dict:
        return {"kind": "img2img", "model": None, "prompt": "live", "negative_prompt": "", "strength": 0.5,
                "steps": 2, "guidance": 7.0, "seed": 1234, "sampler": "default", "batch": 1}


def test_plugins_advertise_live_when_they_have_it():
    assert "live" in params.client_features(live=True) and "live" not in params.client_features()
    assert params.offer(params.client_features(live=True)).live
    assert not params.offer(params.client_features(live=True), params.client_features()).live


def test_params_from_an_object_a_mapping_or_attributes():
    assert live_params(Params()) == {"prompt": "live", "negative_prompt": "", "strength": 0.5, "steps": 2,
                                     "guidance": 7.0, "seed": 1234, "sampler": "default"}
    assert live_params({"prompt": "x", "batch": 3, "seed": None}) == {"prompt": "x"}

    class Attrs:
        prompt, strength, steps, model = "y", 0.3, 4, "demo"

    assert live_params(Attrs()) == {"prompt": "y", "strength": 0.3, "steps": 4, "model": "demo"}


def test_push_then_poll_gives_the_newest_frame_decoded(client):
    session = LiveSession(client, Params())
    try:
        assert session.status == "live: starting …"
        pixels = canvas()
        assert session.push(bytes(pixels), W, H, "bgra8", x=10, y=-5)
        assert not session.push(bytes(pixels), W, H, "bgra8", x=10, y=-5)  # nothing changed
        frame = wait_frame(session)
        assert (frame.number, frame.x, frame.y, frame.width, frame.height) == (0, 10, -5, W, H)
        assert frame.pixel_format == "bgra8" and len(frame.pixels) == W * H * 4
        assert frame.seed == 1234 and frame.params["seed"] == 1234 and frame.params["prompt"] == "live"
        assert session.poll() is None  # returned once
        pixels[:40] = bytes(40)
        assert session.push(bytes(pixels), W, H, "bgra8", x=10, y=-5)
        assert wait_frame(session).number == 1
        assert session.error is None and session.status.startswith("live:")
    finally:
        session.stop()


def test_a_burst_of_pushes_never_surfaces_an_older_frame(client):
    session = LiveSession(client, {"prompt": "burst", "strength": 0.5, "steps": 2, "seed": 5})
    try:
        pixels = canvas(1)
        seen = []
        for n in range(30):
            pixels[n * 100:n * 100 + 16] = bytes([n]) * 16
            assert session.push(bytes(pixels), W, H, "rgba8")
            frame = session.poll()
            if frame is not None:
                seen.append(frame.number)
            time.sleep(0.01)
            assert len(session._unanswered) <= 2  # noqa: SLF001 - at most one running + one waiting
        deadline = time.monotonic() + TIMEOUT
        while not session.idle and time.monotonic() < deadline:
            time.sleep(0.01)
        last = session.poll()
        if last is not None:
            seen.append(last.number)
        assert seen == sorted(set(seen)) and seen[-1] == session.sent  # increasing; the last push is shown
        assert session.sent < 29  # latest wins: pushes made while two frames were unanswered were merged
    finally:
        session.stop()


def test_stop_ends_all_traffic(client):
    session = LiveSession(client, {"prompt": "stop", "strength": 0.5, "steps": 2})
    pixels = canvas(2)
    session.push(bytes(pixels), W, H, "rgba8")
    wait_frame(session)
    session.stop()
    assert session.status == "live: stopped" and session.error is None
    pixels[:4] = bytes(4)
    assert not session.push(bytes(pixels), W, H, "rgba8")
    time.sleep(0.5)
    assert session.poll() is None
    assert session.stream not in client._live_listeners  # noqa: SLF001 - its live_stopped arrived


def test_a_corrupted_base_is_repaired_by_a_full_frame(client):
    session = LiveSession(client, {"prompt": "repair", "strength": 0.5, "steps": 2})
    try:
        pixels = canvas(3)
        session.push(bytes(pixels), W, H, "rgba8")
        wait_frame(session)
        session._encoder._digests[0] = bytes(16)  # noqa: SLF001 - the client's idea of the base goes wrong
        pixels[-8:] = bytes(8)
        session.push(bytes(pixels), W, H, "rgba8")
        frame = wait_frame(session, 2)  # frame 1 got stale_base, frame 2 went whole
        assert frame.number == 2 and session.error is None
    finally:
        session.stop()


def test_a_connection_without_live_gives_one_sentence(server):
    client = Client(server[0], features=params.client_features())  # a plugin that did not ask for live
    client.connect()
    client.wait_connected(30)
    try:
        session = LiveSession(client, {"prompt": "x"})
        session.push(bytes(canvas()), W, H, "rgba8")
        deadline = time.monotonic() + 10
        while session.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert session.error == ("This plugin's connection was opened without live painting (reconnect) — live "
                                 "stopped.")
        assert session.status == session.error and not session.push(bytes(canvas(9)), W, H, "rgba8")
    finally:
        client.close(wait=True)


def test_server_down_while_live_stops_with_one_message(tmp_path: Path):
    with running_process(tmp_path, "--max-model-pixels", str(64 * 64)) as (url, proc):
        client = Client(url)
        client.connect()
        client.wait_connected(30)
        session = LiveSession(client, {"prompt": "down", "strength": 0.5, "steps": 2})
        pixels = canvas(4)
        session.push(bytes(pixels), W, H, "rgba8")
        wait_frame(session)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while session.error is None and time.monotonic() < deadline:
            pixels[:4] = bytes([int(time.monotonic() * 100) % 256]) * 4
            session.push(bytes(pixels), W, H, "rgba8")
            time.sleep(0.05)
        assert session.error == "Server unavailable — live stopped."
        assert session.status == session.error
        pixels[:4] = bytes(4)
        assert not session.push(bytes(pixels), W, H, "rgba8")  # no traffic, no new message
        assert session.error == "Server unavailable — live stopped."
        client.close(wait=True)


def test_not_connected_is_one_clear_error():
    client = Client("127.0.0.1:9")
    session = LiveSession(client, {"prompt": "x"})
    session.push(bytes(canvas()), W, H, "rgba8")
    deadline = time.monotonic() + 10
    while session.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session.error == "Server unavailable — live stopped."
    with pytest.raises(ValueError):
        session.push(b"short", W, H, "rgba8")
