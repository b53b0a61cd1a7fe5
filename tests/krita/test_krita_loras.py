"""The docker's LoRAs field through the controller: sent when the server offers LoRAs, refused with a sentence
otherwise (no Krita needed: a fake client and document)."""

from __future__ import annotations

import dataclasses

import pytest
from fake_document import FakeDocument
from test_krita_controller import WELCOME, FakeClient, fake_controller
from underpaint.plugin_krita.jobs import UserError
from underpaint.plugin_krita.params import GenerationParams, ParamsError
from underpaint.protocol import client as pclient
from underpaint.protocol import messages

WITH_LORAS = dataclasses.replace(
    WELCOME, features=WELCOME.features + ("lora",),
    loras=(messages.LoraInfo(id="speed/hyper8", name="hyper8", family="sd15"),
           messages.LoraInfo(id="xl/ink", name="ink", family="sdxl")))


def test_the_plugin_advertises_loras() -> None:
    fake_controller(connected=True)
    assert "lora" in FakeClient.instances[0].features


def test_chosen_loras_go_out_with_their_weights() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(WITH_LORAS))
    c.generate(FakeDocument(), GenerationParams(prompt="p", loras="speed/hyper8:0.7"))
    (submit, _, _), = FakeClient.instances[0].submitted
    assert submit.loras == (messages.LoraChoice(id="speed/hyper8", weight=0.7),)
    c.generate(FakeDocument(), GenerationParams(prompt="p"))
    assert FakeClient.instances[0].submitted[1][0].loras == ()


def test_loras_the_server_cannot_apply_are_refused_before_sending() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(WITH_LORAS))
    with pytest.raises(UserError, match="'xl/ink' is for sdxl models"):
        c.generate(FakeDocument(), GenerationParams(loras="xl/ink"))
    with pytest.raises(UserError, match="no LoRA 'gone'"):
        c.generate(FakeDocument(), GenerationParams(loras="gone:0.5"))
    plain = fake_controller(connected=True)  # a server without the lora feature
    with pytest.raises(UserError, match="This server offers no LoRAs"):
        plain.generate(FakeDocument(), GenerationParams(loras="speed/hyper8"))
    assert FakeClient.instances[0].submitted == []


def test_a_bad_weight_is_a_parameter_error() -> None:
    with pytest.raises(ParamsError, match="the weight of 'a' must be between -4 and 4"):
        GenerationParams(loras="a:9").validated()
    assert GenerationParams.from_dict(GenerationParams(loras="a:0.5").to_dict()).loras == "a:0.5"
