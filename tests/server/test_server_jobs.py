"""End to end over the real websocket with the protocol's own Client: img2img, inpaint, formats, previews."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from server_helpers import (
    TIMEOUT,
    connected,
    dilate,
    disc_mask,
    image_frame,
    make_image,
    mask_frame,
    previews_of,
    result_array,
    submit,
)
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.geometry import Rect, context_region
from underpaint.protocol.messages import InpaintOptions, PreviewOptions, Progress, Queued, Started
from underpaint.protocol.pixels import decode_pixels


def run(client, sub, pixels, fmt="rgba8", x=0, y=0, mask=None) -> ResultReceived:
    frame = image_frame(sub, pixels, fmt, x, y)
    mframe = mask_frame(sub, mask, x, y) if mask is not None else None
    return client.run_job(sub, {"image": frame, "mask": mframe}, timeout=TIMEOUT)


# ------------------------------------------------------------------------------------------------ img2img
def test_img2img_result_covers_the_layer_and_is_deterministic_for_a_seed(live):
    pixels = make_image(72, 48, seed=1)
    with connected(live.url) as (client, rec):
        first = run(client, submit(seed=11, steps=4), pixels, x=30, y=-20)
        again = run(client, submit(seed=11, steps=4), pixels, x=30, y=-20)
        other = run(client, submit(seed=12, steps=4), pixels, x=30, y=-20)
        started = rec.for_job(first.job, Started)[0]
    frame = first.frames[0]
    assert (frame.role, frame.pixel_format, frame.index) == ("result", "rgba8", 0)
    assert (frame.x, frame.y, frame.width, frame.height) == (30, -20, 72, 48)
    assert (started.x, started.y, started.width, started.height) == (30, -20, 72, 48)
    assert first.result.seeds == (11,) and first.result.images == 1
    out = result_array(frame)
    assert np.array_equal(out[..., 3], pixels[..., 3])  # img2img keeps the layer's alpha
    assert not np.array_equal(out[..., :3], pixels[..., :3])
    assert decode_pixels(again.frames[0]) == decode_pixels(frame)
    assert decode_pixels(other.frames[0]) != decode_pixels(frame)


def test_events_arrive_in_protocol_order(live):
    with connected(live.url) as (client, rec):
        sub = submit(steps=6, strength=0.5)
        result = run(client, sub, make_image(64, 64))
    kinds = [type(e).__name__ for e in rec.for_job(sub.job)]
    assert kinds[0] == "Queued" and kinds[-1] == "ResultReceived"
    assert kinds.index("Started") < kinds.index("Progress")
    progress = rec.for_job(sub.job, Progress)
    total = progress[-1].total
    assert len(rec.for_job(sub.job, Started)) == 1
    assert [e.step for e in progress] == list(range(1, total + 1))
    assert {e.total for e in progress} == {total} and total >= 3  # int(6 * 0.5) steps, or more for PNDM
    assert rec.for_job(sub.job, Queued)[0].position == 0
    assert set(result.result.timings) >= {"queue_s", "inference_s", "total_s"}


@pytest.mark.parametrize("sampler", ["default", "euler", "euler_a", "dpmpp_2m", "ddim", "lcm"])
def test_progress_total_is_the_number_of_steps_that_run(live, sampler):
    """A painter reading "step 12/N" sees N steps happen: progress.total == the count of progress events, the
    same in every progress of the job, and the last step equals it."""
    with connected(live.url) as (client, rec):
        subs = [submit(steps=steps, strength=strength, sampler=sampler) for steps, strength in ((5, 1.0), (7, 0.3))]
        for sub in subs:
            run(client, sub, make_image(64, 64))
    for sub in subs:
        kinds = [type(e).__name__ for e in rec.for_job(sub.job)]
        assert kinds.count("Started") == 1 and kinds.index("Started") < kinds.index("Progress")
        progress = rec.for_job(sub.job, Progress)
        total = progress[0].total
        assert total >= max(1, int(sub.steps * sub.strength))
        assert [p.step for p in progress] == list(range(1, total + 1)) and progress[-1].step == total
        assert {p.total for p in progress} == {total}


def test_batch_gives_one_frame_per_seed_matching_single_runs(live):
    pixels = make_image(64, 64, seed=2)
    with connected(live.url) as (client, _):
        batch = run(client, submit(seed=40, batch=2), pixels)
        single0 = run(client, submit(seed=40), pixels)
        single1 = run(client, submit(seed=41), pixels)
    assert batch.result.seeds == (40, 41)
    assert [f.index for f in batch.frames] == [0, 1]
    # Image i of a batch is seed + i's image. Batched convolutions round a little differently on CPU,
    # so a handful of pixels may differ by one level.
    for batched, single in ((batch.frames[0], single0.frames[0]), (batch.frames[1], single1.frames[0])):
        diff = np.abs(result_array(batched).astype(np.int16) - result_array(single).astype(np.int16))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert decode_pixels(batch.frames[0]) != decode_pixels(batch.frames[1])


@pytest.fixture(scope="module")
def reference(_shared_live):
    """The rgba8/raw result every other format must be a conversion of."""
    pixels = make_image(40, 32, seed=3)
    with connected(_shared_live.url) as (client, _):
        result = run(client, submit(seed=5, job="ref-rgba8"), pixels)
    return pixels, result_array(result.frames[0])


FORMATS = ["rgba8", "bgra8", "rgba16", "rgbaf32", "graya8"]


def expected_in(fmt: str, ref: np.ndarray) -> np.ndarray:
    if fmt == "rgba8":
        return ref
    if fmt == "bgra8":
        return ref[..., (2, 1, 0, 3)]
    if fmt == "rgba16":
        return ref.astype(np.uint16) * 257
    if fmt == "rgbaf32":
        return ref.astype(np.float32) / np.float32(255)
    rgb = ref[..., :3].astype(np.float64)
    luma = np.rint(0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]).astype(np.uint8)
    return np.stack([luma, ref[..., 3]], axis=-1)


@pytest.mark.parametrize("encoding", ["raw", "zlib", "png"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_result_pixel_formats_and_encodings(live, reference, fmt, encoding):
    pixels, ref = reference
    sub = submit(seed=5, result_format=fmt, result_encoding=encoding)
    with connected(live.url) as (client, _):
        if encoding == "png" and fmt in ("bgra8", "rgbaf32"):
            with pytest.raises(ProtocolError) as info:
                run(client, sub, pixels)
            assert info.value.code == "unsupported" and info.value.field == "result_encoding"
            assert live.engine.order() == []  # refused before spending any compute
            return
        result = run(client, sub, pixels)
    frame = result.frames[0]
    assert (frame.pixel_format, frame.encoding) == (fmt, encoding)
    assert (frame.width, frame.height) == (40, 32)
    if encoding == "zlib":
        assert len(frame.payload) < frame.raw_size
    out = result_array(frame)
    want = expected_in(fmt, ref)
    if fmt == "rgbaf32":
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(out, want)


def test_16bit_and_float_input_keep_alpha_and_depth(live):
    pixels16 = make_image(48, 40, seed=4, dtype=np.uint16)
    pixels16[0, 0, 3] = 12345  # not representable in 8 bits: must survive untouched
    with connected(live.url) as (client, _):
        result = run(client, submit(result_format="rgba16"), pixels16, fmt="rgba16")
    out = result_array(result.frames[0])
    assert out.dtype == np.dtype("<u2")
    assert np.array_equal(out[..., 3], pixels16[..., 3])


# ------------------------------------------------------------------------------------------------ previews
def preview_case(live, **options) -> tuple[list, int]:
    """Previews of an 8-step job and the number of steps it reported."""
    sub = submit(steps=8, strength=1.0, preview=PreviewOptions(**options))
    with connected(live.url) as (client, rec):
        run(client, sub, make_image(64, 64, seed=6), x=8, y=-8)
        total = rec.for_job(sub.job, Progress)[-1].total
        return previews_of(rec, sub.job), total


def test_previews_arrive_as_jpeg_every_n_steps(live):
    previews, total = preview_case(live, every_steps=2, max_size=16)
    assert total >= 8
    # every second step, never the last one (the result follows it)
    assert [p.index for p in previews] == list(range(2, total, 2))
    for p in previews:
        assert (p.role, p.encoding, p.pixel_format, p.x, p.y) == ("preview", "jpeg", "rgb8", 8, -8)
        image = Image.open(io.BytesIO(p.payload))
        assert image.format == "JPEG" and image.size == (p.width, p.height)
        assert max(image.size) <= 16


def test_previews_respect_min_interval_and_can_be_disabled(live):
    previews, _ = preview_case(live, every_steps=1, min_interval_ms=600_000)
    assert [p.index for p in previews] == [1]
    previews, _ = preview_case(live, enabled=False)
    assert previews == []


def test_png_previews_decode_with_the_protocol(live):
    previews, total = preview_case(live, every_steps=4, encoding="png")
    assert [p.index for p in previews] == list(range(4, total, 4))
    p = previews[0]
    assert len(decode_pixels(p)) == p.width * p.height * 3


# ------------------------------------------------------------------------------------------------ inpaint
INPAINT_CASES = [
    pytest.param(np.uint8, "rgba8", InpaintOptions(feather=6, grow=3, context=8), id="8bit-grow"),
    pytest.param(np.uint16, "rgba16", InpaintOptions(feather=4, grow=-2, context=16), id="16bit-shrink"),
    pytest.param(np.uint8, "rgba8", InpaintOptions(feather=0, grow=0, context=0), id="8bit-hard-edge"),
]


@pytest.mark.parametrize(("dtype", "fmt", "options"), INPAINT_CASES)
def test_inpaint_leaves_every_pixel_outside_the_selection_byte_identical(live, dtype, fmt, options):
    width, height, ox, oy = 96, 80, -40, -24  # a layer at negative document offsets
    pixels = make_image(width, height, seed=7, dtype=dtype)
    mask = disc_mask(width, height, 52, 38, 13)
    sub = submit("inpaint", strength=1.0, steps=3, inpaint=options, result_format=fmt)
    with connected(live.url) as (client, rec):
        result = run(client, sub, pixels, fmt, ox, oy, mask)
        started = rec.for_job(sub.job, Started)[0]
    frame = result.frames[0]
    ys, xs = np.nonzero(mask)
    bbox = Rect.from_edges(int(xs.min()) + ox, int(ys.min()) + oy, int(xs.max()) + 1 + ox, int(ys.max()) + 1 + oy)
    layer = Rect(ox, oy, width, height)
    region = context_region(bbox, layer, max(options.context, max(options.grow, 0) + options.feather))
    assert (frame.x, frame.y, frame.width, frame.height) == (region.x, region.y, region.width, region.height)
    assert (started.x, started.y, started.width, started.height) == (frame.x, frame.y, frame.width, frame.height)
    assert frame.width < width and frame.height < height  # only the selection's neighbourhood is sent back

    composed = pixels.copy()
    lx, ly = frame.x - ox, frame.y - oy
    composed[ly:ly + frame.height, lx:lx + frame.width] = result_array(frame)
    touched = dilate(mask, max(options.grow, 0) + options.feather)
    outside = ~touched
    assert np.array_equal(composed[outside], pixels[outside])  # RGB and alpha, byte for byte
    assert np.array_equal(composed[..., 3], pixels[..., 3])  # alpha is never repainted
    core = mask > 0 if options.grow >= 0 else ~dilate(~(mask > 0), -options.grow)
    changed = np.any(composed[..., :3] != pixels[..., :3], axis=-1)
    assert changed[core].mean() > 0.5  # and the selection itself was repainted


def test_inpaint_of_a_whole_layer_crop_matches_the_cropped_request(live):
    """The same selection sent as the whole layer or as a plugin-cropped region gives the same pixels."""
    width = height = 80
    pixels = make_image(width, height, seed=8)
    mask = disc_mask(width, height, 30, 30, 10)
    options = InpaintOptions(feather=4, grow=0, context=8)
    with connected(live.url) as (client, _):
        whole = run(client, submit("inpaint", inpaint=options, seed=3, strength=1.0), pixels, mask=mask)
        f = whole.frames[0]
        crop = (slice(f.y, f.y + f.height), slice(f.x, f.x + f.width))
        cropped = run(client, submit("inpaint", inpaint=options, seed=3, strength=1.0), pixels[crop], x=f.x,
                      y=f.y, mask=mask[crop])
    g = cropped.frames[0]
    assert (g.x, g.y, g.width, g.height) == (f.x, f.y, f.width, f.height)
    assert decode_pixels(g) == decode_pixels(f)


def test_empty_selection_is_a_clear_error(live):
    pixels = make_image(32, 32)
    with connected(live.url) as (client, _):
        with pytest.raises(ProtocolError) as info:
            run(client, submit("inpaint"), pixels, mask=np.zeros((32, 32), np.uint8))
    assert info.value.code == "empty_mask" and info.value.field == "mask"


def test_a_selection_shrunk_to_nothing_is_an_empty_mask(live):
    pixels, mask = make_image(32, 32), np.zeros((32, 32), np.uint8)
    mask[14:18, 14:18] = 255  # 4x4 px, shrunk by 8 px
    with connected(live.url) as (client, _):
        with pytest.raises(ProtocolError) as info:
            run(client, submit("inpaint", inpaint=InpaintOptions(grow=-8)), pixels, mask=mask)
    assert (info.value.code, info.value.field) == ("empty_mask", "mask") and "shrinking" in info.value.message
