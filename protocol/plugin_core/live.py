"""Live painting for the host plugins: push the canvas whenever it may have changed, poll for the newest frame.

Poll-based because host APIs are main-thread only: the host calls ``push`` from its timer with the pixels it
read, and ``poll`` from the same timer to get the newest generated frame. Everything else (delta tiles,
hashing, sending, decoding) happens on this session's thread and the client's threads; nothing here blocks.

    session = LiveSession(client, params)         # a connected protocol Client; the params of a job
    session.push(pixels, width, height, "bgra8", x, y)   # False: nothing changed since the last push
    frame = session.poll()                         # LiveFrame | None: never older than one returned before
    label.setText(session.status); session.stop()

At most two frames are unanswered at the server (one generating, one waiting there; the server keeps the
newest); a push beyond that waits here, replaced by newer pushes (latest wins on both sides).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors, vocabulary
from ..client import new_job_id
from ..errors import ProtocolError
from ..live import DeltaEncoder, LiveResultReceived
from ..live_messages import LiveError, LiveSkipped, LiveStart, LiveStarted, LiveStopped
from ..pixels import decode_pixels
from .sentences import explain

PARAM_FIELDS = ("model", "prompt", "negative_prompt", "strength", "steps", "guidance", "seed", "sampler", "loras")
MAX_UNANSWERED = 2  # frames at the server without their answer: one running, one waiting
MAX_FAILURES = 3  # frame errors in a row (each answered by a full frame) before live stops


@dataclass(frozen=True)
class LiveFrame:
    """A generated live frame: ``pixels`` (raw, ``pixel_format``) cover ``width`` x ``height`` at ``x, y``."""

    number: int
    x: int
    y: int
    width: int
    height: int
    pixel_format: str
    pixels: bytes
    params: dict = field(default_factory=dict)  # what produced it (seed included): for Apply
    seed: int = 0
    pushed_at: float = 0.0  # time.monotonic() of the push whose pixels it was made from
    timings: dict = field(default_factory=dict)  # the server's seconds (live_result.timings)


def live_params(params: Any) -> dict[str, Any]:
    """The generation fields of a host's job params (an object with ``submit_fields()``, a mapping, or an
    object with the attributes) that a live stream takes; ``None`` values are left out."""
    if hasattr(params, "submit_fields"):
        data = dict(params.submit_fields())
    elif isinstance(params, Mapping):
        data = dict(params)
    else:
        data = {name: getattr(params, name) for name in PARAM_FIELDS if hasattr(params, name)}
    known = {f for f in PARAM_FIELDS if f in LiveStart.__dataclass_fields__}
    return {k: v for k, v in data.items() if k in known and v is not None}


class LiveSession:
    """One live stream on a connected ``Client`` (see the module docstring)."""

    def __init__(self, client: Any, params: Any, tile: int = int(vocabulary.LIVE_TILE.default),
                 encoding: str = "raw", result_encoding: str = "raw") -> None:
        self.client = client
        self.params = live_params(params)
        self.stream = new_job_id("live")
        self.result_encoding = result_encoding
        self.error: str | None = None
        self._encoder = DeltaEncoder(self.stream, tile, encoding)
        self._cv = threading.Condition()
        self._pending: tuple | None = None  # (pixels, width, height, format, x, y, pushed_at)
        self._last: tuple | None = None  # the last accepted push, as _pending
        self._started = False
        self._seed: int | None = None
        self._unanswered: dict[int, float] = {}  # frame -> push time
        self._failures = 0
        self._full_from = 0  # frames from this number on were sent after the last full frame was asked for
        self._send_full = False
        self._newest: LiveFrame | None = None
        self._returned = -1
        self._done: deque[float] = deque(maxlen=8)  # arrival times of results, for fps
        self.latencies: deque[float] = deque(maxlen=256)  # push -> result received, seconds
        self._stopped = False
        self._thread = threading.Thread(target=self._pump, name="underpaint-live", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ host API (main thread)
    def push(self, pixels: bytes, width: int, height: int, pixel_format: str, x: int = 0, y: int = 0) -> bool:
        """Offer the canvas; False when it equals the last push (or live stopped). Never blocks on I/O."""
        size = width * height * vocabulary.BYTES_PER_PIXEL[pixel_format]
        if len(pixels) != size:
            raise ValueError(f"{pixel_format} pixels of {width}x{height} must be {size} bytes (got {len(pixels)})")
        pixels = pixels if isinstance(pixels, bytes) else bytes(pixels)
        with self._cv:
            if self._stopped or self.error:
                return False
            last = self._last
            if last is not None and last[1:6] == (width, height, pixel_format, x, y) and last[0] == pixels:
                return False
            self._last = self._pending = (pixels, width, height, pixel_format, x, y, time.monotonic())
            self._cv.notify_all()
        return True

    def poll(self) -> LiveFrame | None:
        """The newest finished frame not yet returned (older ones are dropped), or None."""
        with self._cv:
            frame = self._newest
            if frame is None or frame.number <= self._returned:
                return None
            self._returned = frame.number
            return frame

    @property
    def status(self) -> str:
        with self._cv:
            if self.error:
                return self.error
            if self._stopped:
                return "live: stopped"
            if not self._started:
                return "live: starting …"
            if not self._done:
                return "live: waiting for the first frame …" if self._unanswered else "live: paint to start"
            now, times = time.monotonic(), list(self._done)
            if now - times[-1] > 2.0 and not self._unanswered and self._pending is None:
                return "live: up to date"
            if len(times) < 2:
                return "live: 1 frame"
            return f"live: {(len(times) - 1) / max(times[-1] - times[0], 1e-6):.1f} fps"

    @property
    def sent(self) -> int:
        """The number of the last frame sent (-1 before the first); ``poll`` ends at it once live is idle."""
        return self._encoder.frame

    @property
    def idle(self) -> bool:
        """Every push was sent and every sent frame answered."""
        with self._cv:
            return self._pending is None and not self._unanswered

    @property
    def stopped(self) -> bool:
        return self._stopped or self.error is not None

    def stop(self) -> None:
        """End the stream: no more traffic from this session."""
        with self._cv:
            if self._stopped:
                return
            self._stopped, self._pending = True, None
            self._cv.notify_all()
        try:
            self.client.live_stop(self.stream)
        except Exception:  # noqa: BLE001 - a gone connection has nothing to stop
            pass

    # ------------------------------------------------------------------ this session's thread
    def _fail(self, text: str) -> None:
        """Set the one fatal error (no spam): live stops, nothing more is sent."""
        with self._cv:
            if self.error is None and not self._stopped:
                self.error = text
            self._pending = None
            self._cv.notify_all()

    def _pump(self) -> None:
        while True:
            with self._cv:
                while not (self._stopped or self.error) and (
                        self._pending is None or len(self._unanswered) >= MAX_UNANSWERED):
                    self._cv.wait()
                if self._stopped or self.error:
                    return
                pixels, width, height, fmt, x, y, pushed = self._pending  # type: ignore[misc]
                self._pending = None
                start = not self._started
                self._started = True
                if self._send_full:
                    self._send_full = False
                    self._encoder.reset()
            try:
                if start:
                    self.client.live_start(LiveStart(stream=self.stream, **self.params, result_format=fmt,
                                                     result_encoding=self.result_encoding), self._on_event)
                msg, tiles = self._encoder.encode(pixels, width, height, fmt, x, y)
                if msg.base is not None and not tiles:
                    continue  # back to exactly the last frame sent: nothing to send
                with self._cv:
                    self._unanswered[msg.frame] = pushed
                if not self.client.live_frame(msg, tiles):
                    with self._cv:
                        self._unanswered.pop(msg.frame, None)
            except ProtocolError as exc:
                self._fail(_sentence(exc.code, exc.message))
                return

    def _on_event(self, event: object) -> None:
        """Events of this stream (the client's receiver thread)."""
        if isinstance(event, LiveResultReceived):
            self._result(event)
        elif isinstance(event, LiveStarted):
            with self._cv:
                self._seed = event.seed
        elif isinstance(event, LiveSkipped):
            self._answered(event.frame)
        elif isinstance(event, LiveError):
            self._error(event)
        elif isinstance(event, LiveStopped):
            with self._cv:
                self._stopped = True
                self._cv.notify_all()

    def _answered(self, number: int | None) -> float | None:
        with self._cv:
            pushed = self._unanswered.pop(number, None) if number is not None else None
            self._cv.notify_all()
            return pushed

    def _result(self, event: LiveResultReceived) -> None:
        number, frame = event.result.frame, event.frame
        try:
            pixels = decode_pixels(frame)
        except ProtocolError as exc:
            self._answered(number)
            self._fail(_sentence(exc.code, exc.message))
            return
        seed = event.result.seed
        pushed = self._answered(number)
        live = LiveFrame(number, frame.x, frame.y, frame.width, frame.height, frame.pixel_format, pixels,
                         {**self.params, "seed": seed}, seed, pushed or 0.0, dict(event.result.timings))
        now = time.monotonic()
        with self._cv:
            self._failures = 0
            self._done.append(now)
            if pushed is not None:
                self.latencies.append(now - pushed)
            if self._newest is None or number > self._newest.number:
                self._newest = live

    def _error(self, event: LiveError) -> None:
        self._answered(event.frame)
        if event.ended:
            self._fail(_sentence(event.code, event.message))
            return
        with self._cv:
            if event.frame is not None and event.frame < self._full_from:
                return  # a delta sent before the full frame that already answers this
            self._failures += 1
            failures = self._failures
            self._send_full = True  # the server's base is unknown now: the next frame goes whole
            self._full_from = self._encoder.frame + 1
            if self._pending is None and self._last is not None:
                self._pending = self._last  # resend even if the painter has stopped painting
            self._cv.notify_all()
        if failures > MAX_FAILURES:
            self._fail(_sentence(event.code, event.message))


def _sentence(code: str, message: str) -> str:
    """One short sentence for the host's live label: what happened, and that live stopped."""
    if code in (errors.CONNECTION_FAILED, errors.CONNECTION_LOST, errors.NOT_READY):
        return "Server unavailable — live stopped."
    if code == errors.UNSUPPORTED and "did not advertise" in message and "'live'" in message:
        return "This plugin's connection was opened without live painting (reconnect) — live stopped."
    if code == errors.UNSUPPORTED and "'live'" in message:
        return "This server has no live painting (update the server) — live stopped."
    return f"{explain(code, message)} Live stopped."
