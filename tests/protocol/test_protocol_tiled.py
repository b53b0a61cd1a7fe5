"""Issue 14 on the wire: submit.resolution (feature tiled), upscale options and welcome.upscalers, the auto rule."""

from __future__ import annotations

import json

import pytest
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.jobs import check_features, needed_features
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Defaults,
    JobInput,
    Limits,
    Submit,
    UpscaleOptions,
    UpscalerInfo,
    Welcome,
    decode_message,
)
from underpaint.protocol.vocabulary import FLAGS, RESOLUTIONS, UPSCALE_FACTORS, features, pick_resolution

IMAGE = (JobInput(role="image"),)


def _submit_json(**fields) -> str:
    base = {"type": "submit", "job": "j1", "kind": "img2img", "inputs": [{"role": "image"}]}
    return json.dumps({**base, **fields})


def _decode_error(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_message(text, CLIENT_MESSAGES)
    return info.value


# ----------------------------------------------------------------------------- the auto rule
@pytest.mark.parametrize("width, height, side, strength, expected", [
    (4000, 3000, 512, 0.3, "full"),  # a painting, a refine: tiles pay off
    (4000, 3000, 512, 0.6, "fit"),  # 0.6 is not below the threshold
    (4000, 3000, 512, 0.95, "fit"),  # high strength: composition across tiles breaks down
    (725, 725, 512, 0.2, "full"),  # 525,625 > 2 x 262,144
    (725, 723, 512, 0.2, "fit"),  # 524,175: not more than twice the area
    (512, 512, 512, 0.01, "fit"),
    (1536, 1024, 1024, 0.3, "fit"),  # SDXL: 1.5x its area
    (2048, 2048, 1024, 0.3, "full"),
])
def test_pick_resolution(width, height, side, strength, expected):
    assert pick_resolution(width, height, side, strength) == expected


def test_resolution_names_and_the_tiled_flag_live_in_the_vocabulary():
    assert RESOLUTIONS == ("auto", "fit", "full") and UPSCALE_FACTORS == (2, 4)
    assert "tiled" in FLAGS and "tiled" in features()


# ----------------------------------------------------------------------------- submit.resolution
@pytest.mark.parametrize("value", RESOLUTIONS)
def test_resolution_round_trips(value):
    msg = Submit(job="j1", kind="img2img", inputs=IMAGE, resolution=value)
    data = json.loads(msg.encode())
    assert ("resolution" in data) == (value != "auto")  # feature-guarded: left out at its default
    assert decode_message(msg.encode(), CLIENT_MESSAGES) == msg


def test_missing_resolution_is_auto():
    assert decode_message(_submit_json(), CLIENT_MESSAGES).resolution == "auto"


@pytest.mark.parametrize("value, code", [("huge", errors.BAD_VALUE), ("", errors.BAD_VALUE), ("FULL", errors.BAD_VALUE),
                                         (2, errors.BAD_TYPE), (None, errors.BAD_TYPE)])
def test_bad_resolution_is_refused_naming_the_field(value, code):
    exc = _decode_error(_submit_json(resolution=value))
    assert exc.code == code and exc.field == "resolution" and exc.job == "j1"


def test_full_or_fit_needs_the_tiled_feature_on_both_sides():
    plain = frozenset(features(flags=()))
    full = Submit(job="j1", kind="img2img", inputs=IMAGE, resolution="full")
    assert ("tiled", "resolution") in needed_features(full)
    assert all(f != "tiled" for f, _ in needed_features(Submit(job="j1", kind="img2img", inputs=IMAGE)))
    with pytest.raises(ProtocolError) as info:
        check_features(full, plain | {"tiled"}, plain)
    assert info.value.code == errors.UNSUPPORTED and info.value.field == "resolution"
    assert "server" in info.value.message
    with pytest.raises(ProtocolError) as info:
        check_features(full, plain, plain | {"tiled"})
    assert info.value.code == errors.UNSUPPORTED and "client" in info.value.message
    check_features(full, plain | {"tiled"}, plain | {"tiled"})


# ----------------------------------------------------------------------------- submit.upscale
def test_upscale_options_round_trip():
    msg = Submit(job="u1", kind="upscale", inputs=IMAGE, strength=0.2,
                 upscale=UpscaleOptions(factor=4, upscaler="4x-foo", refine=False))
    data = json.loads(msg.encode())
    assert data["upscale"] == {"factor": 4, "upscaler": "4x-foo", "refine": False}
    assert decode_message(msg.encode(), CLIENT_MESSAGES) == msg


def test_upscale_defaults():
    msg = decode_message(_submit_json(kind="upscale"), CLIENT_MESSAGES)
    assert msg.upscale == UpscaleOptions(factor=2, upscaler=None, refine=True)
    assert "upscale" not in json.loads(msg.encode())  # all defaults: left out like any guarded field


@pytest.mark.parametrize("upscale, code, field", [
    ({"factor": 3}, errors.OUT_OF_RANGE, "upscale.factor"),
    ({"factor": 8}, errors.OUT_OF_RANGE, "upscale.factor"),
    ({"factor": 2.0}, errors.BAD_TYPE, "upscale.factor"),
    ({"upscaler": 4}, errors.BAD_TYPE, "upscale.upscaler"),
    ({"upscaler": "x" * 513}, errors.TOO_LONG, "upscale.upscaler"),
    ({"refine": "yes"}, errors.BAD_TYPE, "upscale.refine"),
    ({"scale": 2}, errors.UNKNOWN_FIELD, "upscale.scale"),
    ([2], errors.BAD_TYPE, "upscale"),
])
def test_bad_upscale_options(upscale, code, field):
    exc = _decode_error(_submit_json(kind="upscale", upscale=upscale))
    assert (exc.code, exc.field) == (code, field)


def test_upscale_options_on_another_kind_are_refused():
    exc = _decode_error(_submit_json(kind="img2img", upscale={"factor": 4}))
    assert exc.code == errors.BAD_VALUE and exc.field == "upscale" and "upscale jobs" in exc.message
    with pytest.raises(ProtocolError):
        Submit(job="j1", kind="outpaint", inputs=IMAGE, upscale=UpscaleOptions(refine=False))


# ----------------------------------------------------------------------------- welcome.upscalers
def _welcome(**fields) -> Welcome:
    return Welcome(protocol=2, server_version="0.3", device="cpu", features=("kind:upscale",),
                   defaults=Defaults(model="demo"), limits=Limits(max_pixels=1, max_frame_bytes=1, max_queued_jobs=1,
                                                                  max_batch=1, max_steps=1), **fields)


def test_welcome_upscalers_round_trip_and_are_left_out_when_empty():
    msg = _welcome(upscalers=(UpscalerInfo(id="ESRGAN/4x", name="4x", scale=4),))
    assert decode_message(msg.encode(), SERVER_MESSAGES) == msg
    assert "upscalers" not in json.loads(_welcome().encode())


@pytest.mark.parametrize("item, code, field", [
    ({"id": "a", "name": "a"}, errors.MISSING_FIELD, "upscalers[0].scale"),
    ({"id": "a", "name": "a", "scale": 0}, errors.OUT_OF_RANGE, "upscalers[0].scale"),
    ({"id": "a", "name": "a", "scale": 4, "arch": "x"}, errors.UNKNOWN_FIELD, "upscalers[0].arch"),
])
def test_bad_upscaler_info(item, code, field):
    data = json.loads(_welcome().encode())
    data["upscalers"] = [item]
    with pytest.raises(ProtocolError) as info:
        decode_message(json.dumps(data), SERVER_MESSAGES)
    assert (info.value.code, info.value.field) == (code, field)
