"""Live streams through the real websocket with the demo model: results carry their frame numbers, latest wins,
a running frame is abandoned only early, delta bases are checked, streams take turns with jobs, and a stream
ends with its connection."""

from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager

import numpy as np
from server_helpers import TIMEOUT, connected, image_frame, make_image, quick_job, submit, wait_until
from underpaint.protocol import errors
from underpaint.protocol.frames import Frame
from underpaint.protocol.live import DeltaEncoder, LiveResultReceived
from underpaint.protocol.live_messages import LiveError, LiveSkipped, LiveStart, LiveStarted, LiveStopped
from underpaint.protocol.pixels import decode_pixels


class Listener:
    """A stream's events, in order, with a wait."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._cv = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._cv:
            self.events.append(event)
            self._cv.notify_all()

    def wait(self, predicate, timeout: float = TIMEOUT):
        with self._cv:
            if not self._cv.wait_for(lambda: any(predicate(e) for e in self.events), timeout):
                raise AssertionError(f"not seen; got {self.events}")
            return next(e for e in self.events if predicate(e))

    def answers(self) -> list[tuple[str, int]]:
        """(kind, frame) of every frame answer, in arrival order."""
        out = []
        for e in list(self.events):
            if isinstance(e, LiveResultReceived):
                out.append(("result", e.result.frame))
            elif isinstance(e, LiveSkipped):
                out.append(("skipped", e.frame))
            elif isinstance(e, LiveError) and e.frame is not None:
                out.append((e.code, e.frame))
        return out


def canvas(width: int = 64, height: int = 64, seed: int = 0) -> bytearray:
    return bytearray(make_image(width, height, seed=seed, opaque=True).tobytes())


@contextmanager
def stream(url: str, prompt: str = "live", steps: int = 2, tile: int = 32, **fields):
    with connected(url) as (client, _):
        listener = Listener()
        client.live_start(LiveStart(stream="s1", prompt=prompt, steps=steps, strength=0.5, seed=11, tile=tile,
                                    **fields), listener)
        yield client, listener, DeltaEncoder("s1", tile)


def send(client, encoder: DeltaEncoder, pixels: bytearray, width: int = 64, height: int = 64, x: int = 0,
         y: int = 0) -> int:
    msg, tiles = encoder.encode(bytes(pixels), width, height, "rgba8", x, y)
    assert client.live_frame(msg, tiles)
    return msg.frame


def test_frames_come_back_with_their_number_region_and_seed(live):
    with stream(live.url) as (client, events, enc):
        started = events.wait(lambda e: isinstance(e, LiveStarted))
        assert started.seed == 11 and started.model == live.engine.default_model()
        pixels = canvas(72, 40)
        send(client, enc, pixels, 72, 40, x=-8, y=16)
        first = events.wait(lambda e: isinstance(e, LiveResultReceived))
        frame = first.frame
        assert (first.result.frame, first.result.seed) == (0, 11)
        assert (frame.x, frame.y, frame.width, frame.height, frame.pixel_format) == (-8, 16, 72, 40, "rgba8")
        assert frame.index == 0 and len(decode_pixels(frame)) == 72 * 40 * 4
        assert {"apply_s", "prepare_s", "inference_s", "encode_s", "total_s"} <= set(first.result.timings)
        pixels[0:400] = bytes(400)  # a stroke in the top-left cell
        send(client, enc, pixels, 72, 40, x=-8, y=16)
        second = events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 1)
        again = np.frombuffer(decode_pixels(second.frame), np.uint8)
        assert not np.array_equal(again, np.frombuffer(decode_pixels(frame), np.uint8))
        client.live_stop("s1")
        events.wait(lambda e: isinstance(e, LiveStopped))


def test_latest_wins_while_a_frame_runs_and_results_keep_frame_order(live):
    gate = live.engine.hold("held")
    with stream(live.url, prompt="held") as (client, events, enc):
        pixels = canvas()
        send(client, enc, pixels)
        assert gate.reached.wait(TIMEOUT)
        for n in (1, 2, 3):
            pixels[n * 300:n * 300 + 8] = bytes(8)
            send(client, enc, pixels)
        events.wait(lambda e: isinstance(e, LiveSkipped) and e.frame == 2)
        gate.release.set()
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 3)
        # frame 0 had done its only step when newer frames came: it finishes; 1 and 2 were replaced
        assert events.answers() == [("skipped", 1), ("skipped", 2), ("result", 0), ("result", 3)]
        skipped = [e for e in events.events if isinstance(e, LiveSkipped)]
        assert [(e.frame, e.by) for e in skipped] == [(1, 2), (2, 3)]


def test_a_running_frame_is_abandoned_early_for_a_newer_one_when_enabled(live, monkeypatch):
    monkeypatch.setattr(live.service.live, "abandon_before", 0.5)  # off by default (docs/performance.md)
    gate = live.engine.hold("abandon")
    with stream(live.url, prompt="abandon", steps=16) as (client, events, enc):  # 8 steps to run at 0.5
        pixels = canvas()
        send(client, enc, pixels)
        assert gate.reached.wait(TIMEOUT)  # at step 1 of 8
        pixels[:8] = bytes(8)
        send(client, enc, pixels)
        events.wait(lambda e: isinstance(e, LiveSkipped))
        gate.release.set()
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 1)
        assert events.answers() == [("skipped", 0), ("result", 1)]
        assert live.engine.outcome("abandon") == "cancelled"


def test_by_default_the_running_frame_finishes(live):
    gate = live.engine.hold("finish")
    with stream(live.url, prompt="finish", steps=16) as (client, events, enc):
        pixels = canvas()
        send(client, enc, pixels)
        assert gate.reached.wait(TIMEOUT)  # at step 1 of 8
        pixels[:8] = bytes(8)
        send(client, enc, pixels)
        gate.release.set()
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 1)
        assert events.answers() == [("result", 0), ("result", 1)]


def test_a_delta_without_its_base_or_with_a_corrupted_tile_asks_for_a_full_frame(live):
    with stream(live.url) as (client, events, enc):
        pixels = canvas()
        enc.encode(bytes(pixels), 64, 64, "rgba8")  # the client thinks frame 0 went out: the server has no base
        pixels[:4] = bytes(4)
        assert send(client, enc, pixels) == 1
        error = events.wait(lambda e: isinstance(e, LiveError))
        assert (error.frame, error.code, error.ended, error.field) == (1, errors.STALE_BASE, False, "base")
        enc.reset()
        send(client, enc, pixels)  # frame 2, whole
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 2)

        pixels[-4:] = bytes(4)
        msg, [tile] = enc.encode(bytes(pixels), 64, 64, "rgba8")  # frame 3: one tile, corrupted on the way
        bad = bytearray(tile.payload)
        bad[0] ^= 0xFF
        corrupted = Frame(job=tile.job, role=tile.role, width=tile.width, height=tile.height,
                          pixel_format=tile.pixel_format, payload=bytes(bad), x=tile.x, y=tile.y, index=tile.index)
        client.live_frame(msg, [corrupted])
        error = events.wait(lambda e: isinstance(e, LiveError) and e.frame == 3)
        assert (error.code, error.field) == (errors.STALE_BASE, "hash")
        assert events.answers()[-1] == (errors.STALE_BASE, 3)


def test_after_a_corrupted_frame_the_kept_input_is_the_last_good_one(live):
    with stream(live.url) as (client, events, enc):
        good = canvas(seed=1)
        send(client, enc, good)  # frame 0
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 0)
        shadow = DeltaEncoder("s1", 32)  # a copy of the encoder at frame 0
        shadow.encode(bytes(good), 64, 64, "rgba8")
        changed = bytearray(good)
        changed[:4] = bytes(4)
        msg, [tile] = enc.encode(bytes(changed), 64, 64, "rgba8")
        client.live_frame(msg, [Frame(job="s1", role="live", width=tile.width, height=tile.height,
                                      pixel_format="rgba8", payload=bytes(len(tile.payload)), x=tile.x, y=tile.y,
                                      index=tile.index)])
        events.wait(lambda e: isinstance(e, LiveError) and e.frame == 1)
        changed[8:12] = bytes(4)
        msg, tiles = shadow.encode(bytes(changed), 64, 64, "rgba8")  # a delta on frame 0 ...
        msg = dataclasses.replace(msg, frame=2)  # ... numbered after the failed frame
        tiles = [dataclasses.replace(t, index=2) for t in tiles]
        client.live_frame(msg, tiles)
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 2)
        assert events.answers() == [("result", 0), (errors.STALE_BASE, 1), ("result", 2)]


def test_a_stream_takes_turns_with_other_clients_jobs(live):
    gate = live.engine.hold("turns")
    with stream(live.url, prompt="turns") as (client, events, enc), connected(live.url) as (other, rec):
        pixels = canvas()
        send(client, enc, pixels)
        assert gate.reached.wait(TIMEOUT)
        jobs = []
        for n in range(3):
            sub = submit(prompt=f"job-{n}")
            other.submit(sub, {"image": image_frame(sub, make_image(64, 64))})
            jobs.append(sub.job)
        wait_until(lambda: sum(type(e).__name__ == "Queued" for e in rec.events) >= 3, what="the jobs to queue")
        pixels[:8] = bytes(8)
        send(client, enc, pixels)
        gate.release.set()
        for job in jobs:
            rec.finished(job)
        events.wait(lambda e: isinstance(e, LiveResultReceived) and e.result.frame == 1)
        order = live.engine.order()
        assert order[:5] == ["turns", "job-0", "turns", "job-1", "job-2"], order


def test_unknown_model_ends_the_stream_with_one_error(live):
    with stream(live.url, model="no-such-model") as (client, events, enc):
        error = events.wait(lambda e: isinstance(e, LiveError))
        assert (error.code, error.ended, error.frame) == (errors.UNKNOWN_MODEL, True, None)
        assert not client.live_frame(*enc.encode(bytes(canvas()), 64, 64, "rgba8"))  # nothing more goes out


def test_a_dropped_connection_ends_its_streams_and_the_worker_goes_on(live):
    gate = live.engine.hold("dropped-live")
    with stream(live.url, prompt="dropped-live") as (client, events, enc):
        send(client, enc, canvas())
        assert gate.reached.wait(TIMEOUT)
        assert live.service.live.count() == 1
    wait_until(lambda: live.service.live.count() == 0, what="the stream to end")
    wait_until(lambda: live.engine.outcome("dropped-live"), what="the running frame to end")
    assert live.engine.outcome("dropped-live") == "cancelled"
    quick_job(live.url)
