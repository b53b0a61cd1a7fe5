"""The plugin core's settings, error sentences and naming (shared by the Krita and GIMP plugins)."""

from __future__ import annotations

import pytest
from underpaint.protocol import errors
from underpaint.protocol.plugin_core import naming, sentences, settings


@pytest.mark.parametrize(("text", "url"), [
    ("localhost:7860", "ws://localhost:7860/v1/ws"),
    ("127.0.0.1:7860", "ws://127.0.0.1:7860/v1/ws"),
    ("http://10.0.0.2:9000/", "ws://10.0.0.2:9000/v1/ws"),
    ("https://gpu.example.org", "wss://gpu.example.org/v1/ws"),
    ("ws://h:1/custom/ws", "ws://h:1/custom/ws"),
    ("  WS://h:5  ", "ws://h:5/v1/ws"),
    ("wss://h.example/v1/ws", "wss://h.example/v1/ws"),
])
def test_server_url_forms_become_the_websocket_url(text: str, url: str) -> None:
    assert settings.server_url(text) == url


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "Server URL is empty"), ("ftp://host:1/x", "must start with ws://"), ("ws://:7860", "no host"),
    ("ws://host:99999", "invalid port"), ("ws://host:0", "1-65535"), ("ws://a b:1", "spaces"),
])
def test_server_url_errors_name_the_setting_and_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(settings.SettingsError, match=fragment):
        settings.server_url(text)
    with pytest.raises(settings.SettingsError, match="^server-url"):
        settings.server_url(text, label="server-url")


def test_token_is_one_trimmed_line_or_none() -> None:
    assert settings.token("  s3cret ") == "s3cret" and settings.token("  ") is None and settings.token(None) is None
    with pytest.raises(settings.SettingsError, match="Token must be a single line"):
        settings.token("a\nb")


@pytest.mark.parametrize("code", sorted(errors.ALL_CODES | {"some_new_code"}))
def test_every_error_code_reads_as_a_sentence_without_the_raw_code(code: str) -> None:
    text = sentences.explain(code, "detail here")
    assert text[0].isupper() and "detail here" in text.lower() and f"({code})" not in text
    bare = sentences.explain(code, "")
    assert bare[0].isupper() and bare[-1] in ".?" and "_" not in bare, bare


def test_sentences_use_the_hosts_labels_and_keep_the_upgrade_sentence_as_is() -> None:
    text = sentences.explain("out_of_range", "steps must be at most 150", {"steps": "Steps"})
    assert "does not accept" in text and "(Steps must be at most 150)" in text
    upgrade = "this server speaks Underpaint protocol 2 but the plugin speaks protocol 1: update the plugin"
    assert sentences.explain("incompatible_version", upgrade) == "T" + upgrade[1:]
    assert "rejected the token" in sentences.explain_error(errors.ProtocolError("bad_token", "no"))


def test_result_layer_names() -> None:
    assert naming.result_layer_name("img2img", "a red\n fox  in snow", 12) == "a red fox in snow [img2img, seed 12]"
    assert naming.result_layer_name("inpaint", "  ", None) == "Underpaint [inpaint, seed unknown]"
    long = "a very detailed oil painting of a lighthouse on a cliff at dusk, dramatic clouds"
    short = naming.short_prompt(long)
    assert len(short) <= naming.NAME_PROMPT_CHARS and short.endswith("…") and long.startswith(short[:-1])
    assert naming.short_prompt("x" * 100, 10) == "x" * 9 + "…"
    with pytest.raises(ValueError, match="unknown job kind"):
        naming.result_layer_name("nope", "p", 1)
    with pytest.raises(ValueError, match="at least 2"):
        naming.short_prompt("abc", 1)


def test_records_round_trip_and_refuse_other_versions() -> None:
    data = naming.encode_record({"params": {"prompt": "ü", "seed": 3}, "region": [0, 0, 8, 8]})
    assert naming.decode_record(data)["params"] == {"prompt": "ü", "seed": 3}
    for bad, why in ((b"\xff", "not UTF-8 JSON"), (b"[1]", "not a JSON object"), (b'{"version": 9}', "version 9")):
        with pytest.raises(ValueError, match=why):
            naming.decode_record(bad, "test record")
