"""Feature ``lora``: welcome.loras reaches only clients that advertised it; submit.loras needs it on both sides."""

from __future__ import annotations

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors, vocabulary
from underpaint.protocol.connection import ClientConnection, JobRequest, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import (
    SERVER_MESSAGES,
    Limits,
    LoraChoice,
    LoraInfo,
    PreviewOptions,
    Submit,
    decode_message,
)
from underpaint.protocol.pixels import make_frame

LIMITS = Limits(max_pixels=64 * 64, max_frame_bytes=64 * 64 * 8 + 200, max_queued_jobs=4, max_batch=4, max_steps=50)
LORAS = (LoraInfo(id="speed/hyper8", name="hyper8", family="sd1"),)
WITH_LORA = vocabulary.features(kinds=("img2img",), roles=(), samplers=(), encodings=(), flags=("lora",))
IMAGE = make_frame("j1", "image", bytes(8 * 8 * 4), 8, 8, "rgba8")


def pair(client_features, server_features=WITH_LORA) -> tuple[ClientConnection, ServerConnection]:
    client, server = ClientConnection("t", features=client_features), ServerConnection(LIMITS)
    server.receive_text(client.hello())
    text = server.accept(make_welcome(LIMITS, features=server_features, loras=LORAS))
    client.receive_text(text)
    return client, server


def test_a_client_with_the_feature_gets_the_loras():
    client, server = pair(WITH_LORA)
    assert server.welcome is not None and server.welcome.loras == LORAS
    assert client.welcome is not None and client.welcome.loras == LORAS


def test_a_client_without_the_feature_never_sees_the_field():
    client, server = pair(("kind:img2img",))
    assert server.welcome is not None and server.welcome.loras == ()
    assert "loras" not in server.welcome.encode()


def test_a_job_with_loras_goes_through_when_both_advertised():
    client, server = pair(WITH_LORA)
    submit = Submit(job="j1", kind="img2img", loras=(LoraChoice(id="speed/hyper8", weight=0.5),),
                    preview=PreviewOptions(encoding="png"))
    events = []
    for item in client.submit(submit, {"image": IMAGE}):
        events += server.receive_text(item) if isinstance(item, str) else server.receive_bytes(item)
    [request] = [e for e in events if isinstance(e, JobRequest)]
    assert request.submit.loras == submit.loras


@pytest.mark.parametrize("client_features, server_features, says", [
    (("kind:img2img",), WITH_LORA, "the client did not advertise the 'lora' feature"),
    (WITH_LORA, ("kind:img2img",), "the server does not offer the 'lora' feature"),
])
def test_loras_need_the_feature_on_both_sides(client_features, server_features, says):
    client, _ = pair(client_features, server_features)
    submit = Submit(job="j1", kind="img2img", loras=(LoraChoice(id="speed/hyper8"),),
                    preview=PreviewOptions(encoding="png"))
    with pytest.raises(ProtocolError) as info:
        client.submit(submit, {"image": IMAGE})
    assert (info.value.code, info.value.field) == (errors.UNSUPPORTED, "loras")
    assert says in info.value.message


@pytest.mark.parametrize("loras, code, field", [
    ('[{"id":"a","weight":4.5}]', errors.OUT_OF_RANGE, "loras[0].weight"),
    ('[{"weight":1}]', errors.MISSING_FIELD, "loras[0].id"),
    ('[{"id":"a"},{"id":"a"}]', errors.BAD_VALUE, "loras[1].id"),
    ("[" + ",".join(f'{{"id":"l{i}"}}' for i in range(vocabulary.MAX_LORAS + 1)) + "]", errors.TOO_LONG, "loras"),
])
def test_bad_lora_lists_are_specific_errors(loras, code, field):
    from underpaint.protocol.messages import CLIENT_MESSAGES

    text = '{"type":"submit","job":"j1","kind":"img2img","inputs":[{"role":"image"}],"loras":' + loras + "}"
    with pytest.raises(ProtocolError) as info:
        decode_message(text, CLIENT_MESSAGES)
    assert (info.value.code, info.value.field) == (code, field)


def test_a_weight_defaults_to_one_and_an_empty_list_is_not_written():
    from underpaint.protocol.messages import CLIENT_MESSAGES

    submit = decode_message('{"type":"submit","job":"j1","kind":"img2img","inputs":[{"role":"image"}],'
                            '"loras":[{"id":"a"}]}', CLIENT_MESSAGES)
    assert submit.loras == (LoraChoice(id="a", weight=1.0),)
    assert "loras" not in Submit(job="j1", kind="img2img").encode()
    assert decode_message(make_welcome(LIMITS, loras=LORAS).encode(), SERVER_MESSAGES).loras == LORAS
