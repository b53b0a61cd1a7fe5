"""Procedure arguments, URL handling, layer naming and the parasite payload of the GIMP plug-in."""

from __future__ import annotations

import json

import pytest
from underpaint.plugin_gimp import naming, params
from underpaint.plugin_gimp.params import IMG2IMG, INPAINT, ParamError, normalize_url, parse_params


def test_defaults_follow_the_spec() -> None:
    p = parse_params(IMG2IMG, {})
    assert (p.strength, p.steps, p.guidance, p.seed, p.model, p.sampler) == (0.5, 20, 7.0, None, None, "default")
    assert p.server_url == "" and p.token is None


def test_only_inpaint_takes_mask_arguments() -> None:
    names = {a.name for a in params.arguments_for(IMG2IMG)}
    assert "context" not in names
    assert "context" in {a.name for a in params.arguments_for(INPAINT)}
    with pytest.raises(ParamError, match="unknown argument.*context"):
        parse_params(IMG2IMG, {"context": 10})


def test_values_are_converted() -> None:
    p = parse_params(INPAINT, {"prompt": "a cat", "seed": 42, "steps": 3.0, "model": "  sd15 ", "cfg": 3,
                               "token": " secret ", "context": 0})
    assert p.seed == 42 and p.steps == 3 and isinstance(p.steps, int) and p.model == "sd15"
    assert p.guidance == 3.0 and p.token == "secret" and p.context == 0
    assert p.submit_fields()["guidance"] == 3.0
    assert "token" not in p.record() and p.record()["context"] == 0


@pytest.mark.parametrize(("values", "message"), [
    ({"strength": 0.0}, "strength must be between 0.01 and 1"),
    ({"strength": 1.5}, "strength must be between"),
    ({"steps": 0}, "steps must be between 1 and 1000"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"seed": -2}, "seed must be between -1"),
    ({"cfg": float("nan")}, "cfg must be between"),
    ({"cfg": "7"}, "cfg must be a number"),
    ({"steps": True}, "steps must be a number"),
    ({"prompt": 5}, "prompt must be text"),
    ({"sampler": "heun"}, "sampler must be one of"),
    ({"server-url": "ftp://x"}, "server-url must start with"),
])
def test_bad_values_name_the_argument(values: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        parse_params(IMG2IMG, values)


def test_unknown_kind() -> None:
    with pytest.raises(ParamError, match="unknown job kind 'txt2img'"):
        parse_params("txt2img", {})


@pytest.mark.parametrize(("text", "url"), [
    ("localhost:7860", "ws://localhost:7860/v1/ws"),
    ("http://10.0.0.2:9000/", "ws://10.0.0.2:9000/v1/ws"),
    ("https://gpu.example.org", "wss://gpu.example.org/v1/ws"),
    ("ws://h:1/custom/ws", "ws://h:1/custom/ws"),
    ("  WS://h:5  ", "ws://h:5/v1/ws"),
])
def test_normalize_url(text: str, url: str) -> None:
    assert normalize_url(text) == url


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("ws://:80", "no host"), ("ws://h:99999", "invalid port"), ("ws://a b:1", "spaces"),
])
def test_normalize_url_rejects(text: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        normalize_url(text)


def test_layer_names_come_from_the_core() -> None:
    assert naming.result_layer_name(IMG2IMG, "a red\n barn  at dusk", 1234) == "a red barn at dusk [img2img, seed 1234]"
    assert naming.result_layer_name(INPAINT, "", None) == "Underpaint [inpaint, seed unknown]"


def test_parasite_round_trip_has_no_token() -> None:
    p = parse_params(INPAINT, {"prompt": "sky", "token": "hunter2", "seed": -1})
    data = naming.parasite_payload(p.record(), 99, "demo", "ws://h:1/v1/ws", (1, 2, 3, 4))
    assert b"hunter2" not in data
    value = naming.read_parasite_payload(data)
    assert value["params"]["seed"] == 99 and value["requested_seed"] is None
    assert value["params"]["prompt"] == "sky" and value["model"] == "demo" and value["region"] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        naming.read_parasite_payload(b"\xff")
    with pytest.raises(ValueError, match="version 99"):
        naming.read_parasite_payload(json.dumps({"version": 99}).encode())


def test_expand_canvas_and_upscale_arguments() -> None:
    out = params.parse_params(params.OUTPAINT, {"expand-right": 128, "expand-bottom": 128, "resolution": "full"})
    assert (out.expand.right, out.expand.bottom, out.expand.left, out.expand.top) == (128, 128, 0, 0)
    assert out.submit_fields()["resolution"] == "full" and out.record()["expand"] == [0, 0, 128, 128]
    assert "batch" not in {a.name for a in params.arguments_for(params.OUTPAINT)}
    with pytest.raises(params.ParamError, match="at least one side"):
        params.parse_params(params.OUTPAINT, {"expand-right": 0})
    with pytest.raises(params.ParamError, match="expand-left must be between 0 and"):
        params.parse_params(params.OUTPAINT, {"expand-left": -4})
    up = params.parse_params(params.UPSCALE, {"factor": "x4", "upscaler": " esrgan ", "refine": False})
    assert up.option_values() == {"factor": 4, "upscaler": "esrgan", "refine": False}
    assert "resolution" not in up.submit_fields() and not up.grow_canvas
    assert params.parse_params(params.UPSCALE, {}).option_values() == {"factor": 2, "upscaler": None,
                                                                        "refine": True}
    with pytest.raises(params.ParamError, match="refine must be true or false"):
        params.parse_params(params.UPSCALE, {"refine": "yes"})
    with pytest.raises(params.ParamError, match="factor must be one of x2, x4"):
        params.parse_params(params.UPSCALE, {"factor": "x3"})


def test_canvas_jobs_parameters_come_back_from_their_record() -> None:
    out = params.parse_params(params.OUTPAINT, {"expand-left": 8, "expand-bottom": 64, "resolution": "fit"})
    values = params.values_from_record(params.OUTPAINT, json.loads(json.dumps(out.record())))
    assert (values["expand-left"], values["expand-bottom"], values["expand-right"]) == (8, 64, 128)
    assert values["resolution"] == "fit"
    up = params.parse_params(params.UPSCALE, {"factor": "x4", "grow-canvas": True, "refine": False})
    values = params.values_from_record(params.UPSCALE, json.loads(json.dumps(up.record())))
    assert (values["factor"], values["grow-canvas"], values["refine"]) == ("x4", True, False)
