"""Tiled frames: split/assemble round trips, coverage errors, and tiles through both session state machines."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proto_strategies import BPP, PIXEL_FORMATS, PNG_PIXEL_FORMATS, ROUNDTRIP, make_welcome
from underpaint.protocol import errors
from underpaint.protocol.connection import ClientConnection, JobRequest, ResultReceived, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import decode_frame
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import CLIENT_MESSAGES, Error, JobInput, Limits, Result, Submit, decode_message
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.tiles import assemble, check_cover, split, tile_count, tile_rects

LIMITS = Limits(max_pixels=300 * 200, max_frame_bytes=64 * 64 * 4 + 200, max_queued_jobs=4, max_batch=4,
                max_steps=50)
WELCOME = make_welcome(LIMITS)


def tiled(role: str, n: int) -> tuple[JobInput, ...]:
    return (JobInput(role=role, tiles=n),)


def noise(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def frame(w=300, h=200, x=-7, y=5, fmt="rgba8", encoding="raw", role="image", job="j1", index=0, seed=0):
    return make_frame(job, role, noise(w * h * BPP[fmt], seed), w, h, fmt, encoding, x, y, index)


def expect(code, call, *args, **kwargs) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# ------------------------------------------------------------------------------------------------ split/assemble
@ROUNDTRIP
@given(st.integers(1, 90), st.integers(1, 70), st.integers(1, 40), st.sampled_from(PIXEL_FORMATS),
       st.sampled_from(("raw", "zlib", "png")), st.integers(-50, 50), st.integers(-50, 50), st.integers(0, 2**16))
def test_split_then_assemble_is_the_identity(w, h, side, fmt, encoding, x, y, seed):
    if encoding == "png" and fmt not in PNG_PIXEL_FORMATS:
        encoding = "zlib"
    whole = frame(w, h, x, y, fmt, encoding, seed=seed)
    tiles = split(whole, side)
    assert len(tiles) == tile_count(w, h, side)
    assert [t.index for t in tiles] == list(range(len(tiles)))
    assert all(t.width <= side and t.height <= side and t.encoding == encoding for t in tiles)
    assert [Rect(t.x, t.y, t.width, t.height) for t in tiles] == tile_rects(Rect(x, y, w, h), side)
    for tile in tiles:  # every tile is an ordinary frame holding exactly its part of the image
        rows = decode_pixels(whole)
        bpp, stride = BPP[fmt], w * BPP[fmt]
        part = b"".join(rows[(tile.y - y + r) * stride + (tile.x - x) * bpp:][:tile.width * bpp]
                        for r in range(tile.height))
        assert decode_pixels(decode_frame(tile.encode())) == part
    random.Random(seed).shuffle(tiles)  # order does not matter to assemble
    out = assemble(tiles, index=3)
    assert (out.x, out.y, out.width, out.height, out.pixel_format, out.encoding, out.index) == (
        x, y, w, h, fmt, "raw", 3)
    assert decode_pixels(out) == decode_pixels(whole)


def test_split_can_change_the_encoding_and_keeps_a_result_index():
    whole = frame(130, 70, encoding="raw", role="result", index=2)
    tiles = split(whole, 64, index=2, encoding="zlib")
    assert len(tiles) == 6 and {t.index for t in tiles} == {2} and {t.encoding for t in tiles} == {"zlib"}
    assert decode_pixels(assemble(tiles)) == whole.payload


def test_a_frame_that_fits_is_its_own_only_tile():
    small = frame(64, 64)
    assert split(small, 64) == [small]
    assert assemble([small]) is small


def test_tile_rects_are_row_major_and_clipped():
    assert tile_rects(Rect(10, 20, 5, 3), 2) == [
        Rect(10, 20, 2, 2), Rect(12, 20, 2, 2), Rect(14, 20, 1, 2),
        Rect(10, 22, 2, 1), Rect(12, 22, 2, 1), Rect(14, 22, 1, 1)]
    expect(errors.OUT_OF_RANGE, tile_rects, Rect(0, 0, 4, 4), 0)


# ------------------------------------------------------------------------------------------------ coverage
def grid(w=8, h=4, side=4, **kw):
    return split(frame(w, h, 0, 0, **kw), side)


def test_check_cover_returns_the_bounding_box_of_a_non_grid_tiling():
    a = frame(6, 2, 0, 0)
    b = frame(2, 3, 0, 2, index=1)
    c = frame(4, 3, 2, 2, index=2)
    assert check_cover([a, b, c]) == Rect(0, 0, 6, 5)


def test_a_gap_is_a_size_mismatch_counting_the_missing_pixels():
    tiles = grid(12, 4, 4)
    exc = expect(errors.SIZE_MISMATCH, check_cover, [tiles[0], tiles[2]], "image", "j1")
    assert "16 pixels" in exc.message and "12x4@0,0" in exc.message and exc.job == "j1"


def test_an_overlap_names_both_tiles():
    tiles = grid(8, 8, 4)
    moved = dataclasses.replace(tiles[3], x=3)  # overlaps tile 2 by one column
    exc = expect(errors.SIZE_MISMATCH, check_cover, [*tiles[:3], moved])
    assert "image tile 3 (4x4@3,4) overlaps image tile 2 (4x4@0,4)" in exc.message
    dup = expect(errors.SIZE_MISMATCH, check_cover, [tiles[0], tiles[1], tiles[0]])
    assert "tile 2" in dup.message and "tile 0" in dup.message


def test_overlap_that_keeps_the_area_right_is_still_found():
    # two 2x2 tiles overlapping by one column, and a gap of the same size below: areas sum to the bbox
    a, b, c = frame(2, 2, 0, 0), frame(2, 2, 1, 0, index=1), frame(2, 2, 0, 2, index=2)
    assert sum(t.width * t.height for t in (a, b, c)) == 3 * 4
    exc = expect(errors.SIZE_MISMATCH, check_cover, [a, b, c])
    assert "image tile 1 (2x2@1,0) overlaps image tile 0 (2x2@0,0)" in exc.message


def test_mixed_formats_or_encodings_are_bad_frames():
    tiles = grid(8, 4, 4)
    other = frame(4, 4, 4, 0, fmt="rgba16", index=1)
    exc = expect(errors.BAD_FRAME, check_cover, [tiles[0], other])
    assert "image tile 1 is rgba16/raw but tile 0 is rgba8/raw" in exc.message
    zipped = split(frame(4, 4, 4, 0, encoding="zlib"), 4, index=1)
    expect(errors.BAD_FRAME, check_cover, [tiles[0], *zipped])


def test_a_row_of_4096_tiles_is_one_cover():
    tiles = split(frame(64 * 64, 1, 0, 0, fmt="gray8"), 1)  # 4096 tiles in one row
    assert len(tiles) == 4096 and check_cover(tiles) == Rect(0, 0, 4096, 1)


# ------------------------------------------------------------------------------------------------ submit fields
def test_submit_tiles_and_result_tile_ranges():
    base = '{"type":"submit","job":"j","kind":"img2img","inputs":[{"role":"image","tiles":%d}],'
    assert decode_message(base % 4096 + '"result_tile":64}', CLIENT_MESSAGES).input("image").tiles == 4096
    base %= 1
    for body, field in (('"result_tile":63}', "result_tile"),
                        ('"result_tile":16385}', "result_tile"), ('"result_tile":1}', "result_tile")):
        exc = expect(errors.OUT_OF_RANGE, decode_message, base + body, CLIENT_MESSAGES)
        assert exc.field == field and exc.job == "j"


# ------------------------------------------------------------------------------------------------ sessions
def pair() -> tuple[ClientConnection, ServerConnection]:
    client, server = ClientConnection("test"), ServerConnection(LIMITS)
    server.receive_text(client.hello())
    client.receive_text(server.accept(WELCOME))
    return client, server


def deliver(server: ServerConnection, out: list) -> list:
    """Feed the server like its transport does: an error is sent at once (which ends the job it names)."""
    events: list = []
    for data in out:
        try:
            events += server.receive_bytes(data) if isinstance(data, bytes) else server.receive_text(data)
        except ProtocolError as exc:
            server.send(Error.from_exception(exc))
            raise
    return events


def test_client_tiles_a_big_inpaint_and_the_server_queues_it_after_the_last_mask_tile():
    client, server = pair()
    image, mask = frame(300, 200), frame(300, 200, fmt="gray8", role="mask", seed=1)
    out = client.submit(Submit(job="j1", kind="inpaint"), {"image": image, "mask": mask}, tile_side=64)
    assert len(out) == 1 + 2 * 20
    sent = decode_message(out[0], CLIENT_MESSAGES)
    assert (sent.input("image").tiles, sent.input("mask").tiles, sent.result_tile) == (20, 20, 64)
    assert deliver(server, out[:-1]) == []  # nothing before the last mask tile
    [request] = server.receive_bytes(out[-1])
    assert isinstance(request, JobRequest) and len(request.tiles("image")) == len(request.tiles("mask")) == 20
    assert request.region == Rect(-7, 5, 300, 200)
    assert request.image() == dataclasses.replace(image, index=0)
    assert request.mask() == mask


def test_client_leaves_small_images_and_explicit_result_tile_alone():
    client, _ = pair()
    out = client.submit(Submit(job="a", kind="img2img"), {"image": frame(64, 64, job="a")}, tile_side=64)
    assert len(out) == 2 and decode_message(out[0], CLIENT_MESSAGES).input("image").tiles == 1
    out = client.submit(Submit(job="b", kind="img2img", result_tile=128), {"image": frame(65, 10, job="b")},
                        tile_side=64)
    assert decode_message(out[0], CLIENT_MESSAGES).result_tile == 128
    expect(errors.TOO_LARGE, client.submit, Submit(job="c", kind="img2img"), {"image": frame(65, 65, job="c")},
           tile_side=0)


def test_client_checks_the_whole_bbox_against_max_pixels():
    client, _ = pair()
    exc = expect(errors.TOO_LARGE, client.submit, Submit(job="j1", kind="img2img"), {"image": frame(301, 200)},
                 tile_side=64)
    assert "301x200" in exc.message


def tiled_out(submit: Submit, image, mask=None, side=64) -> list:
    client, _ = pair()
    return client.submit(submit, {"image": image, "mask": mask}, tile_side=side)


def test_server_names_a_mask_tile_that_does_not_match_its_image_tile():
    _, server = pair()
    out = tiled_out(Submit(job="j1", kind="inpaint"), frame(128, 64), frame(128, 64, fmt="gray8", role="mask"))
    bad = split(frame(64, 64, 0, 0, fmt="gray8", role="mask"), 64)[0]
    bad = dataclasses.replace(bad, index=1)
    exc = expect(errors.SIZE_MISMATCH, deliver, server, [*out[:4], bad.encode()])
    assert "mask tile 1 64x64@0,0 must cover image tile 1 64x64@57,5" in exc.message and exc.job == "j1"
    assert not server.live("j1")


def test_server_rejects_a_wrong_tile_index_twice_or_out_of_range_at_once():
    _, server = pair()
    out = tiled_out(Submit(job="j1", kind="img2img"), frame(128, 64))
    tile1 = decode_frame(out[2])
    exc = expect(errors.BAD_FRAME, deliver, server, [out[0], tile1.encode(), tile1.encode()])
    assert "image tile 1" in exc.message and "twice" in exc.message and not server.live("j1")
    far = dataclasses.replace(tile1, job="j3", index=2)
    exc = expect(errors.BAD_FRAME, deliver, server, [out[0].replace('"j1"', '"j3"'), far.encode()])
    assert "image tile 2" in exc.message and "announced 2" in exc.message and exc.job == "j3"


def test_frames_carry_their_role_so_their_order_does_not_matter():
    _, server = pair()
    out = tiled_out(Submit(job="j2", kind="inpaint"), frame(128, 64, job="j2"),
                    frame(128, 64, fmt="gray8", role="mask", job="j2"))
    assert deliver(server, [out[0], out[4], out[3], out[2]]) == []  # masks first, image tiles backwards
    [request] = deliver(server, [out[1]])
    assert [t.index for t in request.tiles("image")] == [0, 1] == [t.index for t in request.tiles("mask")]
    control = frame(8, 8, role="control", job="j4")
    out = tiled_out(Submit(job="j4", kind="img2img"), frame(8, 8, job="j4"))
    exc = expect(errors.UNEXPECTED_FRAME, deliver, server, [out[0], control.encode()])
    assert "announced no control input" in exc.message


def test_server_rejects_tiles_with_a_gap_and_a_bbox_over_max_pixels():
    _, server = pair()
    submit = Submit(job="j1", kind="img2img", inputs=tiled("image", 2))
    a, b = frame(64, 64, 0, 0), frame(64, 64, 65, 0, index=1)  # one column missing between them
    exc = expect(errors.SIZE_MISMATCH, deliver, server, [submit.encode(), a.encode(), b.encode()])
    assert "64 pixels" in exc.message
    far = frame(64, 64, 300, 0, index=1)
    exc = expect(errors.SIZE_MISMATCH, deliver, server, [submit.encode(), a.encode(), far.encode()])
    assert "364x64@0,0" in exc.message
    rows = Submit(job="j2", kind="img2img", inputs=tiled("image", 4))
    tiles = [frame(64, 64, 0, 64 * i, index=i, job="j2") for i in range(4)]
    [request] = deliver(server, [rows.encode(), *(t.encode() for t in tiles)])
    assert request.region == Rect(0, 0, 64, 256) and request.tiles("image") == tuple(tiles)


def test_tiles_over_the_bbox_limit_are_too_large():
    limits = dataclasses.replace(LIMITS, max_pixels=128 * 64)
    server = ServerConnection(limits)
    server.receive_text(ClientConnection("t").hello())
    server.accept(WELCOME)
    submit = Submit(job="j1", kind="img2img", inputs=tiled("image", 4))
    tiles = [frame(64, 64, 64 * i, 0, index=i) for i in range(4)]
    assert deliver(server, [submit.encode(), tiles[0].encode(), tiles[1].encode()]) == []
    # the third tile passes the limit: refused as it arrives, not after the last tile, and nothing is held
    exc = expect(errors.TOO_LARGE, server.receive_bytes, tiles[2].encode())
    assert "12288 pixels" in exc.message and exc.job == "j1"
    assert server.buffered == 0
    assert server.receive_bytes(tiles[3].encode()) == []  # the rest of the refused job is dropped


def test_client_assembles_result_tiles_per_image():
    client, _ = pair()
    client.submit(Submit(job="j1", kind="img2img", batch=2), {"image": frame(300, 200)}, tile_side=64)
    images = [frame(300, 200, role="result", index=i, seed=10 + i, encoding="zlib") for i in range(2)]
    for image in images:
        for tile in split(image, 128, index=image.index):
            assert client.receive_bytes(tile.encode()) == []
    [done] = client.receive_text(Result(job="j1", images=2, seeds=(1, 2)).encode())
    assert isinstance(done, ResultReceived) and [f.index for f in done.frames] == [0, 1]
    for got, want in zip(done.frames, images, strict=True):
        assert (got.x, got.y, got.width, got.height, got.encoding) == (-7, 5, 300, 200, "raw")
        assert decode_pixels(got) == decode_pixels(want)


def test_client_reports_result_tiles_that_do_not_cover_their_image():
    client, _ = pair()
    client.submit(Submit(job="j1", kind="img2img"), {"image": frame(300, 200)}, tile_side=64)
    tiles = split(frame(300, 200, role="result"), 128, index=0)
    for tile in tiles[1:]:
        client.receive_bytes(tile.encode())
    expect(errors.SIZE_MISMATCH, client.receive_text, Result(job="j1", images=1).encode())
    assert "j1" not in client.jobs
