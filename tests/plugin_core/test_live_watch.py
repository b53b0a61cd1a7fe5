"""The host-independent live-painting watch: bounded reads per tick, change detection with and without the
cheap probe, debounced pushes into a session, frames handed back."""

from __future__ import annotations

from underpaint.protocol.geometry import Rect
from underpaint.protocol.plugin_core.live_watch import LiveLoop, SourceWatch

W, H, BPP = 64, 32, 4


class Canvas:
    """A host's source layer: pixels the painter changes, reads counted."""

    def __init__(self) -> None:
        self.pixels = bytearray(bytes(range(256)) * (W * H * BPP // 256))
        self.version = 0
        self.reads: list[Rect] = []

    def paint(self, x: int, y: int, value: int = 7) -> None:
        at = (y * W + x) * BPP
        self.pixels[at:at + BPP] = bytes((value,)) * BPP
        self.version += 1

    def read(self, rect: Rect) -> bytes:
        self.reads.append(rect)
        out = b"".join(self.pixels[((rect.y + r) * W + rect.x) * BPP:((rect.y + r) * W + rect.x + rect.width) * BPP]
                       for r in range(rect.height))
        return out


def make(canvas: Canvas, probe: bool = True, idle_rows: int = 4, busy_rows: int = 16) -> SourceWatch:
    return SourceWatch(Rect(0, 0, W, H), BPP, canvas.read, (lambda: canvas.version) if probe else None,
                       idle_bytes=idle_rows * W * BPP, busy_bytes=busy_rows * W * BPP, scan_ticks=1)


def test_the_first_state_is_read_in_bounded_steps_then_reported_once() -> None:
    canvas = Canvas()
    watch = make(canvas)
    assert watch.tick() is False  # 16 of 32 rows read
    assert watch.tick() is True
    assert watch.take() == bytes(canvas.pixels)
    assert all(r.height <= 16 for r in canvas.reads)
    assert watch.tick() is False  # nothing changed: nothing new to take


def test_idle_ticks_read_only_a_small_band() -> None:
    canvas = Canvas()
    watch = make(canvas)
    while not watch.tick():
        pass
    watch.take()
    canvas.reads.clear()
    for _ in range(20):
        assert watch.tick() is False
    assert canvas.reads and all(r.height == 4 for r in canvas.reads)  # never the whole source on an idle tick
    stats = watch.stats.summary()
    assert stats["idle"]["n"] == 20 and stats["busy"]["n"] == 2


def test_a_change_seen_by_the_probe_is_read_in_the_next_ticks() -> None:
    canvas = Canvas()
    watch = make(canvas)
    while not watch.tick():
        pass
    watch.take()
    canvas.paint(10, 30)
    results = [watch.tick() for _ in range(2)]
    assert results == [False, True]
    assert watch.take() == bytes(canvas.pixels)


def test_without_a_probe_the_background_scan_finds_the_change() -> None:
    canvas = Canvas()
    watch = make(canvas, probe=False)
    while not watch.tick():
        pass
    watch.take()
    canvas.paint(3, 20)
    for _ in range(H // 4 + 3):
        if watch.tick():
            break
    else:
        raise AssertionError("the change was never found")
    assert watch.take() == bytes(canvas.pixels)


def test_a_probe_change_during_a_pass_runs_another_pass() -> None:
    canvas = Canvas()
    watch = make(canvas)
    while not watch.tick():
        pass
    watch.take()
    canvas.paint(1, 1)
    assert watch.tick() is False  # rows 0-15 read (holds the change)
    canvas.paint(2, 2)  # in rows already read this pass
    assert watch.tick() is False  # rows 16-31; another pass is due
    assert watch.tick() is False
    assert watch.tick() is True
    assert watch.take() == bytes(canvas.pixels)


class FakeSession:
    def __init__(self) -> None:
        self.pushes: list[tuple] = []
        self.frames: list[object] = []
        self.error = None

    def push(self, pixels, width, height, pixel_format, x=0, y=0) -> bool:
        changed = not self.pushes or self.pushes[-1][0] != pixels
        self.pushes.append((pixels, width, height, pixel_format, x, y))
        return changed

    def poll(self):
        return self.frames.pop(0) if self.frames else None


def test_the_loop_pushes_changes_debounced_and_returns_frames() -> None:
    canvas, session, now = Canvas(), FakeSession(), [0.0]
    loop = LiveLoop(session, make(canvas, busy_rows=64), "bgra8", min_interval=0.5, clock=lambda: now[0])
    assert loop.tick() is None
    assert len(session.pushes) == 1 and session.pushes[0][1:] == (W, H, "bgra8", 0, 0)
    canvas.paint(5, 5)
    now[0] = 0.1
    loop.tick()
    assert len(session.pushes) == 1  # too soon after the last push: waits
    now[0] = 0.6
    session.frames.append("frame 1")
    assert loop.tick() == "frame 1"
    assert len(session.pushes) == 2 and session.pushes[-1][0] == bytes(canvas.pixels)
    for _ in range(5):
        now[0] += 1
        loop.tick()
    assert len(session.pushes) == 2  # nothing changed: nothing sent
    assert loop.pushed == 2


def test_the_loop_stops_pushing_after_a_session_error() -> None:
    canvas, session = Canvas(), FakeSession()
    loop = LiveLoop(session, make(canvas, busy_rows=64), "bgra8", min_interval=0)
    loop.tick()
    session.error = "Cannot reach the Underpaint server"
    canvas.paint(1, 1)
    for _ in range(3):
        assert loop.tick() is None
    assert len(session.pushes) == 1


def test_the_background_scan_of_a_small_source_is_spread_over_scan_ticks() -> None:
    canvas = Canvas()
    watch = SourceWatch(Rect(0, 0, W, H), BPP, canvas.read, lambda: canvas.version, idle_bytes=1 << 20,
                        busy_bytes=1 << 20, scan_ticks=8)
    assert watch.tick() is True
    watch.take()
    canvas.reads.clear()
    for _ in range(8):
        watch.tick()
    assert [r.height for r in canvas.reads] == [4] * 8  # one pass over 8 ticks, though the budget allows all
