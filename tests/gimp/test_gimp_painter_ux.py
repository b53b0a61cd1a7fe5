"""Issue #9, GIMP side, parts with no host involved: step/total, limits, error sentences, batch, mnemonics,
reusing recorded parameters and the remembered dialog values."""

from __future__ import annotations

import json
import re

import pytest
from test_gimp_job import drive, happy, make_runner, result_frame
from underpaint.plugin_gimp import job, naming, params, settings
from underpaint.protocol import connection, errors, messages


def statuses(sink) -> list[str]:
    return [c[1] for c in sink.calls if c[0] == "status"]


def test_progress_total_is_the_steps_that_run() -> None:
    def after(j):
        return [messages.Started(job=j), messages.Progress(job=j, step=1, total=3),
                messages.Progress(job=j, step=3, total=3),
                connection.ResultReceived(j, messages.Result(job=j, images=1), (result_frame(j),))]

    runner, sink, _ = make_runner(happy(after), steps=6, strength=0.5)
    drive(runner)
    shown = [s for s in statuses(sink) if s.startswith("Step")]
    assert shown == ["Step 1/3", "Step 3/3"]
    fractions = [c[1] for c in sink.calls if c[0] == "progress"]
    assert fractions == [0.0, pytest.approx(1 / 3), 1.0]


def test_before_the_first_step_the_job_shows_generating_without_a_total() -> None:
    def after(j):
        return [messages.Started(job=j), connection.ResultReceived(j, messages.Result(job=j, images=1),
                                                                    (result_frame(j),))]

    runner, sink, _ = make_runner(happy(after))
    drive(runner)
    assert "Generating …" in statuses(sink) and not any(s.startswith("Step") for s in statuses(sink))


@pytest.mark.parametrize("values, sentence", [
    ({"steps": 101}, "This server allows at most 100 steps per job, but Steps is 101"),
    ({"batch": 5}, "This server makes at most 4 images per job, but Images is 5"),
])
def test_values_over_the_servers_limits_are_refused_before_sending(values, sentence) -> None:
    runner, _, holder = make_runner(happy(lambda j: []), **values)
    drive(runner)
    with pytest.raises(job.JobFailed, match=re.escape(sentence)):
        runner.result()
    assert holder["client"].submitted == []  # nothing was sent


@pytest.mark.parametrize("code", sorted((errors.ALL_CODES | {"some_new_code"}) - {"incompatible_version"}))
def test_server_errors_are_sentences_without_raw_codes(code) -> None:
    text = job.describe_error(code, "detail here")
    assert text[0].isupper() and text.endswith("(detail here)")
    sentence = text.removesuffix("(detail here)")
    assert ("_" not in code or code not in sentence) and f"({code})" not in sentence, text


def test_every_image_of_a_batch_comes_back_with_its_seed() -> None:
    def after(j):
        return [connection.ResultReceived(j, messages.Result(job=j, images=3, seeds=(5, 6, 7)),
                                          tuple(result_frame(j, fill=n) for n in (1, 2, 3)))]

    runner, _, holder = make_runner(happy(after), batch=3)
    drive(runner)
    outcome = runner.result()
    assert holder["client"].submitted[0][0].batch == 3
    assert [i.seed for i in outcome.images] == [5, 6, 7]
    assert [i.pixels[0] for i in outcome.images] == [1, 2, 3]


@pytest.mark.parametrize("kind", params.KINDS)
def test_mnemonics_are_unique_and_clear_of_the_dialog_buttons(kind) -> None:
    keys = [params.mnemonic(spec) for spec in params.arguments_for(kind)]
    assert all(keys), keys
    assert len(set(keys)) == len(keys), keys
    assert not set(keys) & params.DIALOG_BUTTON_KEYS


def test_recorded_parameters_become_argument_values() -> None:
    p = params.parse_params(params.INPAINT, {"prompt": "fox", "negative-prompt": "blur", "steps": 9, "cfg": 3.5,
                                             "seed": 4, "sampler": "euler", "model": "demo", "context": 12,
                                             "batch": 2, "strength": 0.7})
    payload = naming.parasite_payload(p.record(), 1234, "demo", "ws://h:1/v1/ws", (0, 0, 8, 8))
    record = naming.read_parasite_payload(payload)["params"]
    values = params.values_from_record(params.INPAINT, record)
    assert values == {"prompt": "fox", "negative-prompt": "blur", "strength": 0.7, "steps": 9, "cfg": 3.5,
                      "seed": 1234, "sampler": "euler", "model": "demo", "context": 12, "batch": 2,
                      "resolution": "auto"}
    again = params.parse_params(params.INPAINT, values)
    assert again.record() == dict(p.record(), seed=1234)
    assert "context" not in params.values_from_record(params.IMG2IMG, record)
    assert params.values_from_record(params.IMG2IMG, {"steps": 0, "sampler": "bogus", "seed": None}) == {
        "seed": params.RANDOM_SEED}


def test_last_dialog_values_are_remembered_per_kind(tmp_path) -> None:
    settings.save_values(tmp_path, params.IMG2IMG, {"prompt": "kept", "steps": 7, "token": "secret"})
    assert settings.load_values(tmp_path, params.IMG2IMG) == {"prompt": "kept", "steps": 7}
    assert settings.load_values(tmp_path, params.INPAINT) == {}
    assert settings.load(tmp_path) == settings.ServerSettings()  # the server settings are a separate matter
    assert "secret" not in (tmp_path / settings.VALUES_FILE).read_text()
    (tmp_path / settings.VALUES_FILE).write_text(json.dumps({"img2img": {"steps": "many", "prompt": "x"}}))
    assert settings.load_values(tmp_path, params.IMG2IMG) == {"prompt": "x"}  # bad values dropped


def test_preview_upscale_fills_the_region_with_nearest_pixels() -> None:
    from underpaint.plugin_gimp import pixels as px

    data = bytes([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])  # 2x2 RGB
    out = px.upscale_nearest(data, 2, 2, 3, 4, 3)
    rows = [out[i * 12:(i + 1) * 12] for i in range(3)]
    assert rows[0] == bytes([1] * 6 + [2] * 6) and rows[1] == rows[0]
    assert rows[2] == bytes([3] * 6 + [4] * 6)
    with pytest.raises(ValueError):
        px.upscale_nearest(data, 3, 2, 3, 4, 4)


def test_the_dialog_gets_no_server_facts_when_the_server_is_down() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{s.getsockname()[1]}/v1/ws"
    assert job.fetch_welcome(url, None, timeout=2.0) is None
