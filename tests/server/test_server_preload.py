"""The default model is loaded in the background at start-up (unless --no-preload)."""

from __future__ import annotations

import threading

import pytest
from server_helpers import wait_until
from underpaint.server.cli.compose import make_server
from underpaint.server.cli.main import parser
from underpaint.server.config import ServerConfig
from underpaint.server.engine.interface import Engine, ModelSpec


class RecordingEngine(Engine):
    def __init__(self) -> None:
        self.preloaded: list[str] = []

    def list_models(self) -> list[ModelSpec]:
        return [ModelSpec(id="m", name="m", family="sd1", inpaint=False, resolution=512, source="builtin")]

    def default_model(self) -> str:
        return "m"

    def device_name(self) -> str:
        return "cpu"

    def preload(self, model_id: str) -> None:
        self.preloaded.append(model_id)

    def generate(self, request, on_step, cancel):  # pragma: no cover - no job runs here
        raise AssertionError("no job expected")


@pytest.mark.parametrize("preload", [True, False])
def test_default_model_is_preloaded_unless_disabled(preload: bool) -> None:
    engine = RecordingEngine()
    server, sock = make_server(ServerConfig(port=0, log_level="warning", preload=preload), engine)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "the server to start")
        if preload:
            wait_until(lambda: engine.preloaded == ["m"], 30, "the preload")
        else:
            assert engine.preloaded == []
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_no_preload_flag_reaches_the_config() -> None:
    args = parser().parse_args(["serve", "--no-preload"])
    assert args.no_preload is True
