"""Krita's expand canvas and upscale jobs without Krita: capture, the request (submit fields, limits), results,
parameters."""

from __future__ import annotations

import dataclasses

import pytest
from underpaint.plugin_krita import canvas_jobs
from underpaint.plugin_krita.jobs import Job, UserError
from underpaint.plugin_krita.params import GenerationParams, ParamsError
from underpaint.plugin_krita.results import result_images
from underpaint.plugin_krita.settings import Settings
from underpaint.plugin_krita.transfer import job_request
from underpaint.protocol import messages, pixels
from underpaint.protocol.geometry import Rect
from underpaint.protocol.plugin_core import jobs as core_jobs
from underpaint.protocol.plugin_core import params as core_params
from underpaint.protocol.plugin_core import request as core_request


class QRect:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self):
        return self._r[0]

    def y(self):
        return self._r[1]

    def width(self):
        return self._r[2]

    def height(self):
        return self._r[3]


class Node:
    def __init__(self, rect: Rect):
        self.rect = rect

    def projectionPixelData(self, x, y, w, h):  # noqa: N802 - Krita's name
        return bytes((1 + (x + i % w + y + i // w) % 250) for i in range(w * h) for _ in range(4))

    def bounds(self):
        return QRect(self.rect.x, self.rect.y, self.rect.width, self.rect.height)

    def uniqueId(self):  # noqa: N802
        class Id:
            def toString(self):  # noqa: N802
                return "layer-1"
        return Id()

    def name(self):
        return "source"


class Doc:
    def __init__(self, width=32, height=24, layer=None):
        self.w, self.h = width, height
        self.node = Node(layer or Rect(0, 0, width, height))

    def width(self):
        return self.w

    def height(self):
        return self.h

    def activeNode(self):  # noqa: N802
        return self.node


class KDoc:
    def __init__(self, **kw):
        self.doc = Doc(**kw)

    def selection(self, canvas):
        return None, None


def test_expand_sends_the_canvas_padded_to_the_expanded_region() -> None:
    params = GenerationParams(mode="outpaint", expand=(8, 0, 16, 4))
    cap = canvas_jobs.capture(KDoc(), params, "bgra8")
    assert cap.kind == "outpaint" and cap.region == Rect(-8, 0, 56, 28)
    assert cap.expand is not None and cap.expand.shift == (8, 0)
    row = 56 * 4
    assert cap.pixels[:8 * 4] == bytes(32) and cap.pixels[8 * 4:9 * 4] != bytes(4)  # new area transparent
    assert cap.pixels[24 * row:] == bytes(4 * row)  # the 4 new rows at the bottom
    assert cap.pixels[row - 16 * 4:row] == bytes(64)


def test_expand_without_pixels_to_add_is_refused() -> None:
    with pytest.raises(UserError, match="at least one side"):
        canvas_jobs.capture(KDoc(), GenerationParams(mode="outpaint"), "bgra8")


def test_upscale_sends_the_layer_and_expects_it_scaled() -> None:
    cap = canvas_jobs.capture(KDoc(layer=Rect(4, 2, 20, 10)), GenerationParams(mode="upscale", upscale_factor=4),
                              "bgra8")
    assert cap.kind == "upscale" and cap.region == Rect(4, 2, 20, 10) and len(cap.pixels) == 20 * 10 * 4
    assert cap.result_region == Rect(16, 8, 80, 40)
    limits = messages.Limits(max_pixels=3000, max_frame_bytes=1 << 20, max_queued_jobs=1, max_batch=1,
                             max_steps=10)
    request = job_request(Job("j", 1, "doc", cap, GenerationParams(mode="upscale", upscale_factor=4)), Settings())
    assert "gives 80x40" in core_request.canvas_problem(request, limits.max_pixels)
    assert core_request.canvas_problem(request, 3200) is None


def test_submit_fields_follow_the_servers_offer() -> None:
    p = GenerationParams(resolution="full", upscale_factor=4, upscaler="esrgan", refine=False, seed=1)
    tiled = core_params.offer(("tiled", "kind:img2img", "kind:upscale"))

    def submit(mode: str, offer: core_params.Offer) -> messages.Submit:
        params = dataclasses.replace(p, mode=mode)
        cap = canvas_jobs.capture(KDoc(layer=Rect(4, 2, 8, 6)), dataclasses.replace(params, mode="upscale"), "bgra8")
        if mode != "upscale":  # the same pixels as an img2img job
            cap = dataclasses.replace(cap, plan=dataclasses.replace(cap.plan, kind=mode), result_region=None)
        request = job_request(Job("j", 1, "doc", cap, params), Settings())
        return core_request.wire(request, "j", offer, "ws://127.0.0.1:1/v1/ws", "auto", 1024, keep=False)[0]

    assert submit("img2img", tiled).resolution == "full" and "upscale" not in submit("img2img", tiled).to_dict()
    assert "resolution" not in submit("img2img", core_params.offer(("kind:img2img",))).to_dict()
    assert submit("upscale", tiled).upscale == messages.UpscaleOptions(factor=4, upscaler="esrgan", refine=False)


def test_upscale_results_are_checked_against_the_scaled_region() -> None:
    cap = canvas_jobs.capture(KDoc(layer=Rect(4, 2, 8, 6)), GenerationParams(mode="upscale"), "bgra8")
    job = Job("j1", 1, "doc", cap, GenerationParams(mode="upscale", seed=5))
    frame = pixels.make_frame("j1", "result", bytes(16 * 12 * 4), 16, 12, "bgra8", "raw", 8, 4)
    results = job_request(job, Settings()).results  # what the session checks results against

    def decode(result: messages.Result, frames: tuple) -> list:
        return core_jobs.decode_results(results, "bgra8", result, frames, 5)

    (image,) = result_images(job, decode(messages.Result(job="j1", images=1, seeds=[5]), (frame,)))
    assert image.rect == Rect(8, 4, 16, 12) and image.name == "Underpaint [upscale, seed 5]"
    wrong = pixels.make_frame("j1", "result", bytes(8 * 6 * 4), 8, 6, "bgra8", "raw", 4, 2)
    with pytest.raises(ValueError, match="outside the region"):
        decode(messages.Result(job="j1", images=1), (wrong,))


def test_canvas_parameters_round_trip_and_are_checked() -> None:
    p = GenerationParams(mode="outpaint", resolution="fit", expand=(0, 0, 128, 128), grow_canvas=True)
    assert GenerationParams.from_dict(p.to_dict()) == p
    assert GenerationParams.from_dict({"prompt": "old record"}).expand == (0, 0, 0, 0)
    for bad, words in (({"resolution": "huge"}, "resolution must be one of"),
                       ({"upscale_factor": 3}, "upscale_factor must be one of"),
                       ({"expand": (1, 2)}, "expand must be 4 pixel counts"),
                       ({"expand": (0, 0, -1, 0)}, "between 0 and"),
                       ({"refine": "yes"}, "refine must be true or false")):
        with pytest.raises(ParamsError, match=words):
            GenerationParams(**bad).validated()
