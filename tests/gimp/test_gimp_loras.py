"""The GIMP plug-in's loras argument: parsed, sent as submit.loras, recorded, and checked against the server."""

from __future__ import annotations

import dataclasses

import pytest
from underpaint.plugin_gimp import job
from underpaint.plugin_gimp import pixels as px
from underpaint.plugin_gimp.params import IMG2IMG, ParamError, arguments_for, mnemonic, parse_params, values_from_record
from underpaint.protocol import messages
from underpaint.protocol.geometry import Rect
from underpaint.protocol.plugin_core import params as core_params
from underpaint.protocol.plugin_core import request as core_request
from underpaint.protocol.plugin_core.regions import plan_region

SPEC = px.choose_spec("rgb", "u8")
WELCOME = messages.Welcome(
    protocol=2, server_version="t", device="cpu", features=("kind:img2img", "kind:inpaint", "lora"),
    models=(messages.ModelInfo(id="demo", name="demo", family="sd1", capabilities=("img2img",), resolution=512),),
    defaults=messages.Defaults(model="demo"),
    limits=messages.Limits(max_pixels=10**6, max_frame_bytes=10**7, max_queued_jobs=4, max_batch=4, max_steps=100),
    loras=(messages.LoraInfo(id="speed/hyper8", name="hyper8", family="sd1"),
           messages.LoraInfo(id="xl/ink", name="ink", family="sdxl")))


PLAN = plan_region(IMG2IMG, Rect(0, 0, 8, 8), None, 0)


def request_of(values: dict) -> core_request.JobRequest:
    return job.plan_request(parse_params(IMG2IMG, values), PLAN, PLAN, SPEC, bytes(8 * 8 * 4), None)


def problem(loras: str, welcome: messages.Welcome = WELCOME) -> str | None:
    offer = core_params.offer(welcome.features, job.FEATURES)
    return core_request.problem(request_of({"loras": loras}), welcome, offer)


def submit_of(values: dict) -> messages.Submit:
    offer = core_params.offer(WELCOME.features, job.FEATURES)
    return core_request.wire(request_of(values), "j", offer, "ws://127.0.0.1:1/v1/ws", "auto", 1024, False)[0]


def test_the_argument_exists_with_a_free_access_key() -> None:
    specs = arguments_for(IMG2IMG)
    assert "loras" in [s.name for s in specs]
    keys = [mnemonic(s) for s in specs if mnemonic(s)]
    assert len(keys) == len(set(keys))


def test_loras_go_out_with_their_weights_and_are_recorded() -> None:
    p = parse_params(IMG2IMG, {"prompt": "p", "loras": " speed/hyper8:0.7 "})
    assert submit_of({"prompt": "p", "loras": " speed/hyper8:0.7 "}).loras == (
        messages.LoraChoice(id="speed/hyper8", weight=0.7),)
    assert problem(" speed/hyper8:0.7 ") is None
    assert values_from_record(IMG2IMG, p.record())["loras"] == "speed/hyper8:0.7"
    assert submit_of({"prompt": "p"}).loras == ()


def test_a_bad_entry_is_a_param_error_naming_it() -> None:
    with pytest.raises(ParamError, match="loras: the weight of 'a' must be between -4 and 4"):
        parse_params(IMG2IMG, {"loras": "a:7"})


def test_loras_the_server_cannot_apply_are_problems_before_sending() -> None:
    assert "'xl/ink' is for sdxl models" in problem("xl/ink")
    assert "no LoRA 'gone'" in problem("gone")
    without = dataclasses.replace(WELCOME, features=("kind:img2img",))
    assert "This server offers no LoRAs" in problem("speed/hyper8", without)
