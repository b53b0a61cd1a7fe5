"""The GIMP plug-in's job runner against a real `underpaint serve` (demo model), without GIMP."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.server import running_server
from underpaint.plugin_gimp import job
from underpaint.plugin_gimp import pixels as px
from underpaint.plugin_gimp.params import IMG2IMG, INPAINT, parse_params
from underpaint.protocol.geometry import Rect
from underpaint.protocol.plugin_core.regions import plan_region


class Sink:
    def __init__(self) -> None:
        self.steps: list[float] = []
        self.previews = 0

    def status(self, text: str) -> None:
        pass

    def progress(self, fraction: float) -> None:
        self.steps.append(fraction)

    def preview(self, frame, data: bytes) -> None:
        self.previews += 1


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("gimp-job-server")) as url:
        yield url


def run(url: str, kind: str, the_plan, spec: px.PixelSpec, image: bytes, mask: bytes | None, **values):
    p = parse_params(kind, {"prompt": "test", "steps": 2, "seed": 11, **values})
    sink = Sink()
    runner = job.JobRunner(url, None, job.plan_request(p, the_plan, the_plan, spec, image, mask), sink,
                           idle_timeout=120)
    runner.start()
    for _ in range(3000):
        if runner.step(wait=0.1):
            break
    return runner.result(), sink


def test_img2img_rgba8_region_and_seed(server_url: str) -> None:
    spec = px.choose_spec("rgb", "u8")
    the_plan = plan_region(IMG2IMG, Rect(16, 8, 40, 24), None, 64)
    image = bytes((i * 7) % 256 for i in range(40 * 24 * 4))
    outcome, sink = run(server_url, IMG2IMG, the_plan, spec, image, None)
    f = outcome.frame
    assert (f.x, f.y, f.width, f.height, f.pixel_format) == (16, 8, 40, 24, "rgba8")
    assert len(outcome.pixels) == 40 * 24 * 4 and outcome.seed == 11 and outcome.model
    assert sink.steps and sink.steps[-1] == 1.0


def test_inpaint_graya16_keeps_unselected_pixels(server_url: str) -> None:
    spec = px.choose_spec("gray", "u16")
    layer = Rect(0, 0, 48, 40)
    selection = Rect(16, 12, 12, 10)
    the_plan = plan_region(INPAINT, layer, selection, 8)
    r = the_plan.region
    image = b"".join(((x * 1031 + y * 17) % 65536).to_bytes(2, "little") + (65535).to_bytes(2, "little")
                     for y in range(r.height) for x in range(r.width))
    mask = bytes(255 if selection.contains_point(r.x + x, r.y + y) else 0
                 for y in range(r.height) for x in range(r.width))
    outcome, _ = run(server_url, INPAINT, the_plan, spec, image, mask, context=8)
    f = outcome.frame
    assert (f.x, f.y, f.width, f.height, f.pixel_format) == (r.x, r.y, r.width, r.height, "graya16")
    out = outcome.pixels
    outside = [i for i in range(r.width * r.height) if mask[i] == 0]
    assert outside and all(out[i * 4:i * 4 + 4] == image[i * 4:i * 4 + 4] for i in outside)
    inside = [i for i in range(r.width * r.height) if mask[i] == 255]
    assert any(out[i * 4:i * 4 + 4] != image[i * 4:i * 4 + 4] for i in inside)


def test_unknown_model_fails_clearly(server_url: str) -> None:
    spec = px.choose_spec("rgb", "u8")
    the_plan = plan_region(IMG2IMG, Rect(0, 0, 16, 16), None, 64)
    with pytest.raises(job.JobFailed, match="model"):
        run(server_url, IMG2IMG, the_plan, spec, bytes(16 * 16 * 4), None, model="no-such-model")


def test_dead_server(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        spec = px.choose_spec("rgb", "u8")
        the_plan = plan_region(IMG2IMG, Rect(0, 0, 8, 8), None, 64)
        with pytest.raises(job.JobFailed, match="Cannot reach the Underpaint server"):
            run(f"ws://127.0.0.1:{port}/v1/ws", IMG2IMG, the_plan, spec, bytes(8 * 8 * 4), None)
