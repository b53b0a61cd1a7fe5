"""The LoRAs field both plugins share: parsing, checking against the welcome, and the feature it advertises."""

from __future__ import annotations

import pytest
from underpaint.protocol.messages import Defaults, Limits, LoraInfo, ModelInfo, Welcome
from underpaint.protocol.plugin_core import params
from underpaint.protocol.plugin_core.params import ParamsError

WELCOME = Welcome(
    protocol=2, server_version="t", device="cpu", features=("lora", "kind:img2img"),
    models=(ModelInfo(id="sd15", name="sd15", family="sd1", capabilities=("img2img",), resolution=512),
            ModelInfo(id="xl", name="xl", family="sdxl", capabilities=("img2img",), resolution=1024)),
    defaults=Defaults(model="sd15"), limits=Limits(max_pixels=1, max_frame_bytes=1, max_queued_jobs=1, max_batch=1,
                                                    max_steps=10),
    loras=(LoraInfo(id="speed/hyper8", name="hyper8", family="sd1"), LoraInfo(id="ink", name="ink", family="sdxl")),
)


@pytest.mark.parametrize("text, parsed", [
    ("", ()),
    ("speed/hyper8", (("speed/hyper8", 1.0),)),
    (" speed/hyper8 : 0.6 ,ink:-1", (("speed/hyper8", 0.6), ("ink", -1.0))),
    ("odd:name", (("odd:name", 1.0),)),
    ("a:0, , b", (("a", 0.0), ("b", 1.0))),
])
def test_the_field_parses_ids_and_weights(text: str, parsed: tuple) -> None:
    assert params.loras(text) == parsed


@pytest.mark.parametrize("text, says", [
    ("a:5", "LoRAs: the weight of 'a' must be between -4 and 4"),
    ("a, a:0.5", "LoRAs: 'a' is listed twice"),
    (",".join(f"l{i}" for i in range(9)), "at most 8 LoRAs per job"),
])
def test_bad_entries_say_which(text: str, says: str) -> None:
    with pytest.raises(ParamsError, match=says):
        params.loras(text)


def test_problems_name_the_lora_and_the_fix() -> None:
    assert params.lora_problem(WELCOME, [("speed/hyper8", 1.0)], None) is None
    assert params.lora_problem(WELCOME, [("ink", 1.0)], "xl") is None
    assert "is for sdxl models but 'sd15' is sd1" in params.lora_problem(WELCOME, [("ink", 1.0)], None)
    assert "The server has no LoRA 'gone'" in params.lora_problem(WELCOME, [("gone", 1.0)], "sd15")


def test_the_feature_is_advertised_only_when_asked_and_offered_only_when_common() -> None:
    assert "lora" in params.client_features(lora=True) and "lora" not in params.client_features()
    assert params.offer(WELCOME.features, params.client_features(lora=True)).lora
    assert not params.offer(WELCOME.features, params.client_features()).lora
    assert not params.offer(None).lora
