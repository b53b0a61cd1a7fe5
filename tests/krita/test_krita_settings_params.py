"""Plugin settings and generation parameters: validation, persistence, the document annotation."""

from __future__ import annotations

import json

import pytest
from underpaint.plugin_krita import params as P
from underpaint.plugin_krita import settings as S


def test_settings_round_trip_through_a_store() -> None:
    store = S.MemoryStore()
    chosen = S.Settings(server_url=" ws://gpu-box:9000/v1/ws ", token="s3cret", preview=False, context_padding=32,
                        feather=0, grow=-4)
    saved = S.save(store, chosen)
    assert saved.server_url == "ws://gpu-box:9000/v1/ws"
    assert store.values["preview"] == "false" and store.values["grow"] == "-4"
    loaded, problems = S.load(store)
    assert loaded == saved and problems == []


def test_load_of_an_empty_store_gives_defaults() -> None:
    assert S.load(S.MemoryStore()) == (S.Settings(), [])


def test_bad_stored_values_fall_back_to_their_defaults_with_a_message() -> None:
    store = S.MemoryStore({"feather": "lots", "context_padding": "-5", "server_url": "ftp://x", "preview": "maybe",
                           "grow": "3"})
    loaded, problems = S.load(store)
    assert loaded == S.Settings(grow=3)
    assert len(problems) == 4
    text = " ".join(problems)
    assert "feather" in text and "Context padding" in text and "ftp://" in text and "preview" in text


@pytest.mark.parametrize(("url", "fragment"), [("", "empty"), ("ftp://host:1/x", "must start with"),
                                              ("ws://host:0", "1-65535")])
def test_server_url_errors_name_the_problem(url: str, fragment: str) -> None:
    with pytest.raises(S.SettingsError, match=fragment):
        S.Settings(server_url=url).validated()


@pytest.mark.parametrize(("url", "clean"), [("127.0.0.1:7860", "ws://127.0.0.1:7860/v1/ws"),
                                            ("https://h", "wss://h/v1/ws")])
def test_server_url_forms_that_work(url: str, clean: str) -> None:
    assert S.Settings(server_url=f"  {url} ").validated().server_url == clean


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("context_padding", 9000, "Context padding must be between 0 and 8192"),
    ("feather", -1, "Feather"),
    ("grow", 513, "Grow"),
    ("feather", 2.5, "whole number"),
    ("token", "a\nb", "single line"),
])
def test_settings_range_errors(field: str, value: object, fragment: str) -> None:
    with pytest.raises(S.SettingsError, match=fragment):
        S.Settings(**{field: value}).validated()


def test_save_writes_nothing_when_invalid() -> None:
    store = S.MemoryStore()
    with pytest.raises(S.SettingsError):
        S.save(store, S.Settings(feather=10_000))
    assert store.values == {}


def test_params_defaults_and_validation_messages() -> None:
    assert P.GenerationParams().validated().strength == 0.5
    for values, fragment in (({"strength": 0.0}, "strength"), ({"steps": 0}, "steps"), ({"mode": "paint"}, "mode"),
                             ({"source": "clipboard"}, "source"), ({"seed": -1}, "seed"),
                             ({"seed": 2**32}, "seed"), ({"batch": 65}, "batch"), ({"steps": 2.5}, "whole"),
                             ({"guidance": float("nan")}, "guidance"), ({"model": ""}, "model"),
                             ({"strength": True}, "number")):
        with pytest.raises(P.ParamsError, match=fragment):
            P.GenerationParams(**values).validated()


def test_resolved_seed_is_fixed_or_random_in_range() -> None:
    assert P.GenerationParams(seed=42).resolved_seed() == 42
    seeds = {P.GenerationParams().resolved_seed() for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= s <= P.MAX_SEED for s in seeds)


def test_params_from_dict_ignores_unknown_keys_and_accepts_integral_floats() -> None:
    params = P.GenerationParams.from_dict({"prompt": "x", "strength": 1, "future_option": True})
    assert params == P.GenerationParams(prompt="x", strength=1.0)
    with pytest.raises(P.ParamsError, match="JSON object"):
        P.GenerationParams.from_dict([1, 2])


def test_annotation_round_trip_and_reuse() -> None:
    params = P.GenerationParams(prompt="fox", seed=None, batch=3, mode="auto", steps=12)
    record = P.ResultRecord(params, "inpaint", 991, (8, 16, 64, 32), "0.1.0", "2025-01-01T00:00:00")
    data = P.encode_annotation({"{layer-1}": record})
    assert json.loads(data)["version"] == 1
    decoded = P.decode_annotation(data)
    assert decoded == {"{layer-1}": record}
    again = decoded["{layer-1}"].reuse()
    assert (again.seed, again.batch, again.mode, again.prompt, again.steps) == (991, 1, "inpaint", "fox", 12)


@pytest.mark.parametrize(("data", "fragment"), [
    (b"{not json", "not UTF-8 JSON"),
    (b"[]", "not a JSON object"),
    (b'{"version": 1}', "no 'layers'"),
    (b'{"version": 9, "layers": {}}', "version 9"),
    (b'{"version": 1, "layers": {"a": {"kind": "img2img"}}}', "needs kind, seed"),
    (b'{"version": 1, "layers": {"a": {"kind": "blend", "seed": 1, "region": [0,0,1,1]}}}', "kind"),
])
def test_corrupt_annotations_raise_clear_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(P.ParamsError, match=fragment):
        P.decode_annotation(data)


def test_missing_annotation_is_empty() -> None:
    assert P.decode_annotation(b"") == {} and P.decode_annotation(None) == {}
