"""Hypothesis strategies for valid protocol values, written from the spec (not from the code's field specs)."""

from __future__ import annotations

import functools
import os
import struct
from collections import Counter
from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import (
    Cancel,
    Cancelled,
    Defaults,
    Error,
    Hello,
    InpaintOptions,
    JobInput,
    Limits,
    ModelInfo,
    PreviewOptions,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
    Welcome,
)
from underpaint.protocol.pixels import make_frame

CI = os.environ.get("CI") == "true"
FUZZ = settings.get_profile("protocol-ci" if CI else "protocol-dev")
ROUNDTRIP = settings.get_profile("protocol-roundtrip")


EXAMPLES_RUN: Counter[str] = Counter()  # test name -> examples its body really ran (this process)


def fuzz(weight: float) -> Callable:
    """The FUZZ profile with ``weight`` times its examples (cheap tests run more of them), and a counter of the
    examples the test body actually ran (``EXAMPLES_RUN``): the budget is checked against what ran, not what
    was configured. Use it above ``@given``."""
    chosen = settings(FUZZ, max_examples=max(1, round(FUZZ.max_examples * weight)))

    def apply(test: Callable) -> Callable:
        test = chosen(test)
        inner = test.hypothesis.inner_test  # hypothesis' documented hook for wrapping the test body

        @functools.wraps(inner)
        def counted(*args, **kwargs):
            EXAMPLES_RUN[test.__name__] += 1
            return inner(*args, **kwargs)

        test.hypothesis.inner_test = counted
        return test

    return apply


JOB_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
KINDS = ("img2img", "inpaint", "outpaint", "upscale")
INPUT_ROLES = ("image", "mask", "control", "reference")
FEATURE_NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789_:.-", min_size=1, max_size=64)
SAMPLERS = ("default", "euler", "euler_a", "dpmpp_2m", "ddim", "lcm", "tcd", "euler_a_sgm")
PIXEL_FORMATS = ("rgba8", "bgra8", "rgb8", "rgba16", "bgra16", "rgbaf16", "rgbaf32", "gray8", "graya8", "gray16",
                 "graya16")
BPP = {"rgba8": 4, "bgra8": 4, "rgb8": 3, "rgba16": 8, "bgra16": 8, "rgbaf16": 8, "rgbaf32": 16, "gray8": 1,
       "graya8": 2, "gray16": 2, "graya16": 4}
PNG_PIXEL_FORMATS = ("gray8", "rgb8", "graya8", "rgba8", "gray16", "graya16", "rgba16")
MASK_FORMATS = ("gray8", "gray16")
MAX_SEED = 2**32 - 1

# Text that can travel in a websocket text frame (UTF-8, so no lone surrogates).
_chars = st.characters(blacklist_categories=("Cs",))


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(_chars, min_size=min_size, max_size=max_size)


def finite(lo: float, hi: float | None = None) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


job_ids = st.text(JOB_CHARS, min_size=1, max_size=64)
seeds = st.integers(0, MAX_SEED)

preview_options = st.builds(
    PreviewOptions, enabled=st.booleans(), max_size=st.integers(16, 2048), every_steps=st.integers(1, 1000),
    min_interval_ms=st.integers(0, 600_000), encoding=st.sampled_from(("jpeg", "webp", "png", "raw")),
)
inpaint_options = st.builds(InpaintOptions, feather=st.integers(0, 512), grow=st.integers(-512, 512),
                            context=st.integers(0, 8192))
model_infos = st.builds(
    ModelInfo, id=text(512), name=text(512), family=text(32),
    capabilities=st.lists(st.sampled_from(KINDS) | FEATURE_NAMES, max_size=8).map(tuple),
    resolution=st.integers(8, 16384),
    default=st.booleans(), note=text(2000),
)
limits = st.builds(
    Limits, max_pixels=st.integers(1, 2**40), max_frame_bytes=st.integers(1, 2**40),
    max_queued_jobs=st.integers(1, 10_000), max_batch=st.integers(1, 64), max_steps=st.integers(1, 1000),
    keep_results_s=st.integers(0, 10**6),
)
defaults = st.builds(Defaults, model=text(512), strength=finite(0.01, 1.0), steps=st.integers(1, 1000),
                     guidance=finite(0.0, 50.0), sampler=st.sampled_from(SAMPLERS))
feature_lists = st.lists(FEATURE_NAMES, max_size=20).map(tuple)

hellos = st.builds(Hello, protocol=st.integers(0, 1_000_000), client=text(64), client_version=text(64),
                   token=st.none() | text(1024), features=feature_lists)
job_inputs = st.lists(st.sampled_from(INPUT_ROLES), unique=True, max_size=4).flatmap(
    lambda roles: st.tuples(*[st.builds(JobInput, role=st.just(r), tiles=st.integers(1, 4096)) for r in roles]))
submits = st.builds(
    Submit, job=job_ids, kind=st.sampled_from(KINDS), inputs=job_inputs, model=st.none() | text(512), prompt=text(8000),
    negative_prompt=text(8000), strength=finite(0.01, 1.0), steps=st.integers(1, 1000),
    guidance=finite(0.0, 50.0), seed=st.none() | seeds, batch=st.integers(1, 64),
    sampler=st.sampled_from(SAMPLERS), preview=preview_options, inpaint=inpaint_options,
    result_format=st.sampled_from(PIXEL_FORMATS), result_encoding=st.sampled_from(("raw", "zlib", "png")),
    keep_result=st.booleans(), result_tile=st.just(0) | st.integers(64, 16384),
)
cancels = st.builds(Cancel, job=job_ids)
resumes = st.builds(Resume, job=job_ids)

welcomes = st.builds(Welcome, protocol=st.integers(0, 1_000_000), server_version=text(64), device=text(256),
                     features=feature_lists,
                     models=st.lists(model_infos, max_size=3).map(tuple), defaults=defaults, limits=limits)
queueds = st.builds(Queued, job=job_ids, position=st.integers(0, 2**53))
I32 = st.integers(-(2**31), 2**31 - 1)
starteds = st.builds(Started, job=job_ids, x=I32, y=I32, width=st.integers(0, 2**31 - 1),
                     height=st.integers(0, 2**31 - 1))
progresses = st.integers(1, 2**53).flatmap(
    lambda total: st.builds(Progress, job=job_ids, step=st.integers(1, total), total=st.just(total)))
results = st.builds(
    Result, job=job_ids, images=st.integers(0, 64), seeds=st.lists(seeds, max_size=64).map(tuple),
    timings=st.dictionaries(text(40), finite(0.0), max_size=32),
)
errors_ = st.builds(Error, code=text(64), message=text(4000), job=st.none() | text(64), field=st.none() | text(256))
cancelleds = st.builds(Cancelled, job=job_ids)

client_messages = st.one_of(hellos, submits, cancels, resumes)
server_messages = st.one_of(welcomes, queueds, starteds, progresses, results, errors_, cancelleds)
all_messages = st.one_of(client_messages, server_messages)

# Any JSON value, NaN and huge numbers included.
json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(10**400), 10**400)
                | st.floats() | text(30))
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text(12), inner, max_size=4),
    max_leaves=8,
)


@st.composite
def frame_shapes(draw, roles=("image", "mask", "preview", "result", "control", "reference")) -> dict:
    """Header fields of a valid frame (no payload): role, format and encoding always go together."""
    role = draw(st.sampled_from(roles))
    fmt = draw(st.sampled_from(MASK_FORMATS if role == "mask" else PIXEL_FORMATS))
    encodings = ["raw", "zlib"] + (["png"] if fmt in PNG_PIXEL_FORMATS else [])
    if role == "preview":
        encodings += ["jpeg", "webp"]
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return {  # a valid frame ends at or before 2^31-1
        "job": draw(job_ids), "role": role, "pixel_format": fmt, "encoding": draw(st.sampled_from(encodings)),
        "width": width, "height": height,
        "x": draw(st.integers(-(2**31), 2**31 - width)), "y": draw(st.integers(-(2**31), 2**31 - height)),
        "index": draw(st.integers(0, 0xFFFF)),
    }


@st.composite
def frames(draw, roles=("image", "mask", "preview", "result", "control", "reference")) -> tuple[Frame, bytes | None]:
    """A valid frame and its raw pixels (None for jpeg/webp previews, whose payload is opaque bytes)."""
    shape = draw(frame_shapes(roles))
    if shape["encoding"] in ("jpeg", "webp"):
        payload = draw(st.binary(max_size=64))
        return Frame(payload=payload, **shape), None
    size = shape["width"] * shape["height"] * BPP[shape["pixel_format"]]
    pixels = draw(st.binary(min_size=size, max_size=size))
    return make_frame(pixels=pixels, **shape), pixels


def header(frame_bytes: bytes) -> list:
    """The 12 header fields of an encoded frame, for mutation."""
    return list(struct.unpack_from(">4sBBBBHHIIiiI", frame_bytes))


def make_welcome(limits: Limits, features: tuple[str, ...] | None = None, **kw) -> Welcome:
    """A v2 welcome offering ``features`` (default: every feature of the vocabulary but the reserved ones)."""
    from underpaint.protocol.vocabulary import PROTOCOL_VERSION
    from underpaint.protocol.vocabulary import features as all_features

    fields = {"protocol": PROTOCOL_VERSION, "server_version": "test", "device": "cpu",
              "defaults": Defaults(model="demo"), **kw}
    return Welcome(features=all_features() if features is None else features, limits=limits, **fields)
