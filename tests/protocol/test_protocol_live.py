"""Live streams, sans-I/O: the delta encoder (only changed grid cells, frame numbers, hashes), the client and
server sides of a stream (frames, tiles on the grid, answers, stop, close)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proto_strategies import make_welcome
from underpaint.protocol import errors
from underpaint.protocol.connection import ClientConnection, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.geometry import Rect
from underpaint.protocol.live import DeltaEncoder, LiveResultReceived, changed_cells, frame_hash, grid
from underpaint.protocol.live_messages import (
    LiveError,
    LiveFrameMessage,
    LiveResult,
    LiveSkipped,
    LiveStart,
    LiveStarted,
    LiveStop,
    LiveStopped,
)
from underpaint.protocol.live_server import LiveFrameReady
from underpaint.protocol.messages import Limits
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.vocabulary import features

LIMITS = Limits(max_pixels=512 * 512, max_frame_bytes=512 * 512 * 16 + 200, max_queued_jobs=2, max_batch=4,
                max_steps=50)


def canvas(width: int, height: int, seed: int = 0, bpp: int = 4) -> bytearray:
    return bytearray(random.Random(seed).randbytes(width * height * bpp))


def paint(pixels: bytearray, width: int, x: int, y: int, w: int, h: int, value: int = 7, bpp: int = 4) -> None:
    for row in range(y, y + h):
        start = (row * width + x) * bpp
        pixels[start:start + w * bpp] = bytes([value]) * (w * bpp)


def pair(client_features: tuple[str, ...] | None = None, server_features: tuple[str, ...] | None = None):
    client = ClientConnection("test", features=client_features)
    server = ServerConnection(LIMITS)
    server.receive_text(client.hello())
    client.receive_text(server.accept(make_welcome(LIMITS, server_features)))
    return client, server


def feed(server: ServerConnection, items: list) -> list:
    events = []
    for item in items:
        events += server.receive_bytes(item) if isinstance(item, bytes) else server.receive_text(item)
    return events


# ----------------------------------------------------------------------------- the delta encoder
def test_first_frame_is_every_cell_then_only_what_changed():
    enc = DeltaEncoder("s", tile=64)
    pixels = canvas(200, 130)
    msg, tiles = enc.encode(bytes(pixels), 200, 130, "rgba8", x=-10, y=20)
    cells = grid(Rect(-10, 20, 200, 130), 64)
    assert (msg.frame, msg.base, msg.base_hash, msg.tiles) == (0, None, None, len(cells)) == (0, None, None, 12)
    assert [Rect(t.x, t.y, t.width, t.height) for t in tiles] == cells
    assert all(t.role == "live" and t.job == "s" and t.index == 0 for t in tiles)
    full_hash = msg.hash

    msg, tiles = enc.encode(bytes(pixels), 200, 130, "rgba8", x=-10, y=20)
    assert (msg.frame, msg.base, msg.base_hash, msg.tiles, tiles) == (1, 0, full_hash, 0, [])
    assert msg.hash == full_hash

    paint(pixels, 200, 60, 60, 10, 10)  # crosses the cell corner at (64, 64): four cells
    msg, tiles = enc.encode(bytes(pixels), 200, 130, "rgba8", x=-10, y=20)
    assert (msg.frame, msg.base, msg.tiles) == (2, 1, 4)
    assert {(t.x + 10, t.y - 20) for t in tiles} == {(0, 0), (64, 0), (0, 64), (64, 64)}
    assert all(t.index == 2 for t in tiles) and msg.hash != full_hash


def test_hash_is_blake2b_of_the_cells_digests_in_grid_order():
    enc = DeltaEncoder("s", tile=16)
    pixels = canvas(20, 18, seed=3)
    msg, tiles = enc.encode(bytes(pixels), 20, 18, "rgba8")
    digests = [hashlib.blake2b(decode_pixels(t), digest_size=16).digest() for t in tiles]
    assert msg.hash == hashlib.blake2b(b"".join(digests), digest_size=16).hexdigest() == frame_hash(digests)


def test_a_stroke_on_a_big_canvas_sends_a_few_percent():
    enc = DeltaEncoder("s", tile=128)
    pixels = canvas(2048, 2048)
    _, full = enc.encode(bytes(pixels), 2048, 2048, "rgba8")
    paint(pixels, 2048, 1100, 1100, 40, 40)  # inside one 128 px cell
    _, delta = enc.encode(bytes(pixels), 2048, 2048, "rgba8")
    assert len(delta) == 1
    paint(pixels, 2048, 1000, 1000, 40, 40)  # across a cell corner: the worst case, four cells
    _, delta = enc.encode(bytes(pixels), 2048, 2048, "rgba8")
    sent = sum(len(t.encode()) for t in delta)
    assert len(delta) == 4 and sent < 0.05 * sum(len(t.encode()) for t in full)


def test_reset_or_a_new_geometry_sends_a_full_frame():
    enc = DeltaEncoder("s", tile=32, encoding="zlib")
    pixels = bytes(canvas(64, 64))
    enc.encode(pixels, 64, 64, "rgba8")
    enc.reset()
    msg, tiles = enc.encode(pixels, 64, 64, "rgba8")
    assert (msg.frame, msg.base, len(tiles)) == (1, None, 4) and tiles[0].encoding == "zlib"
    msg, tiles = enc.encode(pixels, 64, 64, "rgba8", x=1)  # the layer moved
    assert (msg.base, len(tiles)) == (None, 4)
    with pytest.raises(ProtocolError) as info:
        enc.encode(pixels[:-1], 64, 64, "rgba8")
    assert info.value.code == errors.LENGTH_MISMATCH


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 12),
       st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=6))
def test_changed_cells_are_exactly_the_cells_that_differ(width, height, tile, spots):
    old = canvas(width, height, seed=width * 100 + height)
    new = bytearray(old)
    for x, y in spots:
        if x < width and y < height:
            i = (y * width + x) * 4
            new[i] ^= 0xFF
    cells = grid(Rect(0, 0, width, height), tile)
    expected = [i for i, c in enumerate(cells)
                if any(old[(r * width + c.x) * 4:(r * width + c.right) * 4]
                       != new[(r * width + c.x) * 4:(r * width + c.right) * 4] for r in range(c.y, c.bottom))]
    assert changed_cells(bytes(old), bytes(new), width, height, 4, tile) == expected


# ----------------------------------------------------------------------------- the connections
def started(client: ClientConnection, server: ServerConnection, stream: str = "s", tile: int = 32) -> LiveStart:
    [event] = server.receive_text(client.live_start(LiveStart(stream=stream, prompt="p", tile=tile, seed=1)))
    assert isinstance(event, LiveStart) and event.stream == stream
    return event


def test_a_frame_and_its_tiles_make_one_ready_frame():
    client, server = pair()
    started(client, server)
    enc = DeltaEncoder("s", 32)
    pixels = canvas(70, 40)
    msg, tiles = enc.encode(bytes(pixels), 70, 40, "rgba8", 5, 6)
    events = feed(server, client.live_frame(msg, tiles))
    [ready] = events
    assert isinstance(ready, LiveFrameReady) and ready.message == msg and ready.region == Rect(5, 6, 70, 40)
    assert len(ready.tiles) == 6
    paint(pixels, 70, 0, 0, 3, 3)
    msg, tiles = enc.encode(bytes(pixels), 70, 40, "rgba8", 5, 6)
    [ready] = feed(server, client.live_frame(msg, tiles))
    assert (ready.message.frame, ready.message.base, len(ready.tiles)) == (1, 0, 1)
    msg, tiles = enc.encode(bytes(pixels), 70, 40, "rgba8", 5, 6)  # nothing changed: a delta of no tiles
    [ready] = feed(server, client.live_frame(msg, tiles))
    assert ready.tiles == ()


def test_live_needs_the_feature_on_both_sides():
    no_live = tuple(f for f in features() if f != "live")
    for client_features, server_features, who in ((no_live, None, "this client did not advertise"),
                                                  (None, no_live, "the server does not offer")):
        client, server = pair(client_features, server_features)
        with pytest.raises(ProtocolError) as info:
            client.live_start(LiveStart(stream="s"))
        assert info.value.code == errors.UNSUPPORTED and info.value.message.startswith(who)
    client, server = pair(no_live, None)
    with pytest.raises(ProtocolError) as info:
        server.receive_text(LiveStart(stream="s").encode())
    assert info.value.code == errors.UNSUPPORTED


def test_frame_numbers_must_increase_and_a_full_frame_must_be_complete():
    client, server = pair()
    started(client, server)
    msg = LiveFrameMessage(stream="s", frame=3, width=64, height=64, pixel_format="rgba8", tiles=3, hash="0" * 32)
    [error] = server.receive_text(msg.encode())
    assert isinstance(error, LiveError) and (error.frame, error.code, error.ended) == (3, errors.MISSING_FRAME, False)
    enc = DeltaEncoder("s", 32)
    enc.frame = 1  # numbers below what the server saw
    m, tiles = enc.encode(bytes(canvas(64, 64)), 64, 64, "rgba8")
    [error] = feed(server, [client.live_frame(m, tiles)[0]])
    assert (error.frame, error.code) == (2, errors.BAD_VALUE)
    assert feed(server, client.live_frame(m, tiles)[1:]) == []  # that frame's tiles are dropped quietly


def test_a_tile_off_the_grid_ends_its_frame_not_the_stream():
    client, server = pair()
    started(client, server)
    enc = DeltaEncoder("s", 32)
    msg, tiles = enc.encode(bytes(canvas(64, 64)), 64, 64, "rgba8")
    shifted = Frame(job="s", role="live", width=32, height=32, pixel_format="rgba8", payload=tiles[1].payload,
                    x=16, y=0, index=0)
    events = feed(server, [msg.encode(), tiles[0].encode(), shifted.encode(), tiles[2].encode(), tiles[3].encode()])
    [error] = events
    assert (error.frame, error.code) == (0, errors.SIZE_MISMATCH)
    msg, tiles = enc.encode(bytes(canvas(64, 64, seed=1)), 64, 64, "rgba8")
    [ready] = feed(server, client.live_frame(msg, tiles))  # the next frame is fine
    assert isinstance(ready, LiveFrameReady)


def test_a_tile_twice_or_of_another_frame_is_a_frame_error():
    client, server = pair()
    started(client, server)
    enc = DeltaEncoder("s", 32)
    msg, tiles = enc.encode(bytes(canvas(64, 32)), 64, 32, "rgba8")
    [error] = feed(server, [msg.encode(), tiles[0].encode(), tiles[0].encode()])
    assert (error.frame, error.code) == (0, errors.BAD_FRAME)
    msg, tiles = enc.encode(bytes(canvas(64, 32, seed=5)), 64, 32, "rgba8")
    other = make_frame("s", "live", tiles[0].payload, 32, 32, "rgba8", index=9)
    [error] = feed(server, [msg.encode(), other.encode()])
    assert (error.frame, error.code) == (1, errors.BAD_FRAME)


def test_results_pair_with_their_frames_and_stop_ends_everything():
    client, server = pair()
    started(client, server)
    [event] = client.receive_text(server.send(LiveStarted(stream="s", seed=1, model="demo")))
    assert isinstance(event, LiveStarted)
    result = make_frame("s", "result", bytes(16), 2, 2, "rgba8", index=3)
    assert client.receive_bytes(server.send_frame(result.encode())) == []
    [event] = client.receive_text(server.send(LiveResult(stream="s", frame=3, seed=1)))
    assert isinstance(event, LiveResultReceived) and event.frame == result and event.result.frame == 3
    [event] = client.receive_text(server.send(LiveSkipped(stream="s", frame=4, by=5)))
    assert event == LiveSkipped(stream="s", frame=4, by=5)
    [event] = server.receive_text(client.live_stop("s"))
    assert event == LiveStop(stream="s") and client.live_stop("s") is None
    assert client.receive_bytes(server.send_frame(result.encode())) == []  # late: dropped
    assert client.receive_text(server.send(LiveResult(stream="s", frame=6, seed=1))) == []
    [event] = client.receive_text(server.send(LiveStopped(stream="s")))
    assert event == LiveStopped(stream="s")
    assert server.send(LiveResult(stream="s", frame=7, seed=1)) is None  # nothing after the last message
    assert server.send_frame(result.encode()) is None
    assert "s" not in client.live


def test_a_result_message_without_its_frame_is_an_error_event():
    client, server = pair()
    started(client, server)
    [event] = client.receive_text(LiveResult(stream="s", frame=3, seed=1).encode())
    assert isinstance(event, LiveError) and event.code == errors.MISSING_FRAME and not event.ended


def test_an_ended_stream_and_a_closed_connection():
    client, server = pair()
    started(client, server, "a")
    started(client, server, "b")
    [event] = client.receive_text(server.send(LiveError(stream="a", code=errors.UNKNOWN_MODEL, message="no",
                                                        ended=True)))
    assert event.ended and "a" not in client.live
    assert client.live_frame(*DeltaEncoder("a", 32).encode(bytes(16), 2, 2, "rgba8")) == []
    assert feed(server, [LiveFrameMessage(stream="a", frame=0, width=2, height=2, pixel_format="rgba8", tiles=1,
                                          hash="0" * 32).encode()]) == []  # the rest of an ended stream: dropped
    [lost] = client.close()
    assert (lost.stream, lost.code, lost.ended) == ("b", errors.CONNECTION_LOST, True)
    assert server.close() == {"b"}


def test_stream_ids_are_unique_and_limited():
    client, server = pair()
    started(client, server, "s0")
    with pytest.raises(ProtocolError) as info:
        client.live_start(LiveStart(stream="s0"))
    assert info.value.code == errors.DUPLICATE_JOB
    with pytest.raises(ProtocolError) as info:
        server.receive_text(LiveStart(stream="s0").encode())
    assert info.value.code == errors.DUPLICATE_JOB
    for i in range(1, 4):
        started(client, server, f"s{i}")
    with pytest.raises(ProtocolError) as info:
        client.live_start(LiveStart(stream="s9"))
    assert info.value.code == errors.QUEUE_FULL


def test_unknown_streams_are_refused_on_both_sides():
    client, server = pair()
    with pytest.raises(ProtocolError) as info:
        server.receive_text(LiveStop(stream="x").encode()) or server.receive_text(
            LiveFrameMessage(stream="x", frame=0, width=1, height=1, pixel_format="rgba8", tiles=1,
                             hash="0" * 32).encode())
    assert info.value.code == errors.UNKNOWN_JOB
    with pytest.raises(ProtocolError) as info:
        client.receive_text(LiveSkipped(stream="x", frame=1, by=2).encode())
    assert info.value.code == errors.UNKNOWN_JOB


def test_message_rules():
    with pytest.raises(ProtocolError) as info:
        LiveFrameMessage(stream="s", frame=2, width=1, height=1, pixel_format="rgba8", tiles=0, base=2,
                         base_hash="0" * 32, hash="0" * 32)
    assert info.value.code == errors.BAD_VALUE
    with pytest.raises(ProtocolError):
        LiveFrameMessage(stream="s", frame=2, width=1, height=1, pixel_format="rgba8", tiles=0, base=1,
                         hash="0" * 32)
    with pytest.raises(ProtocolError):
        LiveFrameMessage(stream="s", frame=2, width=1, height=1, pixel_format="rgba8", tiles=0, hash="0" * 31)
