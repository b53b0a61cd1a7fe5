"""Watching a live-painting source cheaply, for both host plugins: what the painter changed since the last
frame, read at a bounded cost per timer tick, and the loop that feeds a ``LiveSession`` from it.

A host gives ``SourceWatch`` two callables, both run on its main thread:

- ``read(rect) -> bytes``: the source's pixels of ``rect`` (a band of whole rows of the watched region);
- ``probe() -> object``: something cheap that changes when the painter paints (a small thumbnail, an undo
  counter); None when the host has none.

Each ``tick`` reads at most ``idle_bytes`` while the probe stays the same (a background scan that walks the
region band by band, for changes the probe cannot see; a pass takes at least ``scan_ticks`` ticks) and at
most ``busy_bytes`` while a pass started by a changed probe is running. So nothing near the whole source is
read on a tick where nothing changed, and a big canvas is re-read over a few ticks, never in one. Standard
library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..geometry import Rect

IDLE_BYTES = 128 * 1024  # background scan per tick: 512x64 px of 8-bit RGBA
BUSY_BYTES = 4 * 1024 * 1024  # a probe-started pass per tick: a 1024x1024 8-bit RGBA canvas in one tick
SCAN_TICKS = 30  # the background scan takes at least this many ticks per pass (3 s at 100 ms)
MIN_PUSH_INTERVAL_S = 0.15  # debounce: at most this often a new frame goes to the session
_UNSET = object()


@dataclass
class TickStats:
    """Wall-clock milliseconds of ``SourceWatch.tick`` on the host's main thread."""

    idle_ms: list[float] = field(default_factory=list)  # ticks where the probe saw nothing new
    busy_ms: list[float] = field(default_factory=list)  # ticks of a pass started by a change
    keep: int = 2000

    def add(self, busy: bool, ms: float) -> None:
        series = self.busy_ms if busy else self.idle_ms
        series.append(ms)
        if len(series) > self.keep:
            del series[: len(series) - self.keep]

    def summary(self) -> dict[str, Any]:
        def describe(values: list[float]) -> dict[str, float]:
            if not values:
                return {"n": 0}
            ordered = sorted(values)
            return {"n": len(ordered), "p50": round(ordered[len(ordered) // 2], 3),
                    "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 3),
                    "max": round(ordered[-1], 3)}

        return {"idle": describe(self.idle_ms), "busy": describe(self.busy_ms)}


class SourceWatch:
    """The watched region's latest pixels (``buffer``) and whether they changed since they were last taken."""

    def __init__(self, region: Rect, bytes_per_pixel: int, read: Callable[[Rect], bytes],
                 probe: Callable[[], object] | None = None, idle_bytes: int = IDLE_BYTES,
                 busy_bytes: int = BUSY_BYTES, scan_ticks: int = SCAN_TICKS,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if region.is_empty:
            raise ValueError("the live source has no pixels")
        self.region, self.bpp = region, bytes_per_pixel
        self._read, self._probe, self._clock = read, probe, clock
        stride = region.width * bytes_per_pixel
        self._idle_rows = max(1, min(idle_bytes // stride, -(-region.height // max(1, scan_ticks))))
        self._busy_rows = max(1, busy_bytes // stride)
        self.buffer = bytearray(stride * region.height)
        self._last_probe: object = _UNSET  # the first tick starts a full pass
        self._scan_row = 0  # next row of the background scan
        self._pass_row: int | None = None  # next row of the running full pass (None: none runs)
        self._again = False  # the probe changed during a pass: run another one after it
        self._dirty = False
        self.stats = TickStats()
        self.reads = 0  # bytes read so far (for tests and the e2e report)

    def tick(self) -> bool:
        """Read what this tick may; True when the buffer holds a complete new state of the source (take it
        with ``take``)."""
        start = self._clock()
        probe = self._probe() if self._probe is not None else None
        if probe != self._last_probe:
            self._last_probe = probe
            if self._pass_row is None:
                self._pass_row = 0
            else:
                self._again = True
        busy = self._pass_row is not None
        if busy:
            self._pass_step()
        else:
            changed = self._read_rows(self._scan_row, self._idle_rows)
            self._scan_row = (self._scan_row + self._idle_rows) % self.region.height
            if changed:  # the probe missed it (a stroke between its samples): read everything now
                self._pass_row = 0
        self.stats.add(busy, (self._clock() - start) * 1000)
        return self._dirty and self._pass_row is None

    def take(self) -> bytes:
        """The buffer as bytes; marks it seen."""
        self._dirty = False
        return bytes(self.buffer)

    def _pass_step(self) -> None:
        assert self._pass_row is not None
        self._read_rows(self._pass_row, self._busy_rows)
        self._pass_row += self._busy_rows
        if self._pass_row >= self.region.height:
            self._pass_row = 0 if self._again else None
            self._again = False

    def _read_rows(self, top: int, rows: int) -> bool:
        r = self.region
        rows = min(rows, r.height - top)
        data = self._read(Rect(r.x, r.y + top, r.width, rows))
        stride = r.width * self.bpp
        if len(data) != rows * stride:
            raise ValueError(f"the host read {len(data)} bytes for {r.width}x{rows} px, expected {rows * stride}")
        self.reads += len(data)
        start, end = top * stride, (top + rows) * stride
        if self.buffer[start:end] == data:
            return False
        self.buffer[start:end] = data
        self._dirty = True
        return True


class LiveLoop:
    """One host timer tick of live painting: watch the source, hand a changed state to the session (at most
    every ``min_interval`` s; the session keeps one frame in flight and the latest one waiting), and return the
    newest finished frame to show, if any."""

    def __init__(self, session: Any, watch: SourceWatch, pixel_format: str,
                 min_interval: float = MIN_PUSH_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.session, self.watch, self.pixel_format = session, watch, pixel_format
        self.min_interval, self._clock = min_interval, clock
        self._last_push = -1e9
        self._pending = False
        self.pushed = 0  # frames handed to the session that changed something

    def tick(self) -> Any:
        """The newest finished frame (a ``LiveFrame``) not shown yet, or None."""
        if self.session.error:
            return None
        if self.watch.tick():
            self._pending = True
        now = self._clock()
        if self._pending and now - self._last_push >= self.min_interval:
            r = self.watch.region
            if self.session.push(self.watch.take(), r.width, r.height, self.pixel_format, r.x, r.y):
                self.pushed += 1
            self._pending, self._last_push = False, now
        return self.session.poll()
