"""Live painting streams on the server: the kept input of each stream, delta tiles checked by hash, and latest
wins, run on the engine through the job worker.

Per stream the server keeps the last input (the canvas as wire bytes and one digest per grid cell). A frame is
applied on arrival, in order: a full frame replaces the canvas, a delta must name the kept frame and its hash
(``stale_base`` otherwise: the client resends a full frame), and the result must hash to ``live_frame.hash``.

Scheduling: a stream has at most one frame running and one waiting. A newer frame replaces the waiting one
(``live_skipped``); the running one finishes. (``ABANDON_BEFORE`` > 0 abandons a running frame still in that
share of its steps for a newer one, never twice in a row; bench/live.py measured it worse while painting
continuously — fewer frames shown, a longer p90 — so it is off.) A stream waits for its turn like a client
in the job queue's round robin (``queue.Task``): a live frame never waits behind more than one job of each other
client and a client's live stream never keeps another client's job from its turn; a running job is not
preempted.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.geometry import Rect
from underpaint.protocol.live import cell_of, frame_hash, grid, tile_digest
from underpaint.protocol.live_messages import LiveError, LiveResult, LiveSkipped, LiveStart, LiveStarted, LiveStopped
from underpaint.protocol.live_server import LiveFrameReady
from underpaint.protocol.messages import Limits
from underpaint.protocol.pixels import decode_pixels as decode_payload
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.vocabulary import BYTES_PER_PIXEL, MAX_SEED, PNG_FORMATS

from ..engine.families import FAMILIES
from ..engine.interface import Engine, EngineError, GenerationRequest, JobCancelled, StepInfo, denoising_steps
from .cancel import CancelFlag
from .handlers import Model
from .live_frames import cut, paste
from .queue import JobManager, Task

log = logging.getLogger("underpaint.live")
Sink = Callable[[object], None]
ABANDON_BEFORE = 0.0  # > 0: abandon a running frame for a newer one while it has done less than this share of steps
_REQUEST_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


@dataclass
class _Run:
    frame: int
    cancel: CancelFlag = field(default_factory=CancelFlag)
    step: int = 0
    total: int = 0


@dataclass(eq=False)
class Stream:
    client: str
    start: LiveStart
    sink: Sink
    seed: int
    model: str
    resolution: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: tuple | None = None  # (x, y, width, height, pixel_format) of the kept input
    canvas: bytearray | None = None
    digests: list[bytes] = field(default_factory=list)
    latest: int = -1  # the frame the canvas holds
    waiting: int | None = None  # a frame not yet generated
    running: _Run | None = None
    queued: bool = False  # a Task for this stream is in the job queue
    closed: bool = False
    stopping: bool = False  # live_stop received: live_stopped follows the running frame
    applied_s: float = 0.0  # time to apply the latest frame's tiles (its server time before the queue)
    applied_cpu_s: float = 0.0  # the same in CPU time of the thread that applied them
    abandoned: bool = False  # the last frame that ended was abandoned: the running one finishes, whatever comes

    @property
    def name(self) -> str:
        return self.start.stream


class LiveStreams:
    """Every live stream of the server, keyed by (connection, stream)."""

    def __init__(self, engine: Engine, jobs: JobManager, limits: Limits, max_model_pixels: int | None = None,
                 abandon_before: float | None = None) -> None:
        self.engine, self.jobs, self.limits = engine, jobs, limits
        self.max_model_pixels = max_model_pixels
        self.abandon_before = ABANDON_BEFORE if abandon_before is None else abandon_before  # 0: never
        self._streams: dict[tuple[str, str], Stream] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ called by the transport (event loop)
    def start(self, client: str, msg: LiveStart, sink: Sink) -> None:
        try:
            model, resolution = self._check(msg)
        except ProtocolError as exc:
            sink(LiveError.of(msg.stream, exc, ended=True))
            return
        seed = msg.seed if msg.seed is not None else random.randint(0, MAX_SEED)
        with self._lock:
            self._streams[(client, msg.stream)] = Stream(client, msg, sink, seed, model, resolution)
        sink(LiveStarted(stream=msg.stream, seed=seed, model=model))

    def frame(self, client: str, ready: LiveFrameReady) -> None:
        stream = self._streams.get((client, ready.stream))
        if stream is None:
            return  # the stream's start was refused: its live_error(ended) is on its way
        number, t0, c0 = ready.message.frame, time.perf_counter(), time.thread_time()
        with stream.lock:
            if stream.closed or stream.stopping:
                return
            try:
                self._apply(stream, ready)
            except ProtocolError as exc:
                stream.sink(LiveError.of(stream.name, exc, number))
                return
            if stream.waiting is not None:
                stream.sink(LiveSkipped(stream=stream.name, frame=stream.waiting, by=number))
            stream.waiting, stream.latest = number, number
            stream.applied_s, stream.applied_cpu_s = time.perf_counter() - t0, time.thread_time() - c0
            run = stream.running
            if run is not None and run.total and run.step < self.abandon_before * run.total and not stream.abandoned:
                run.cancel.set()  # the painter moved on early in this frame: make the newer one
            if not stream.queued:
                stream.queued = True
                self.jobs.submit_task(Task(client=f"live:{client}:{stream.name}", run=lambda: self._run(stream)))

    def stop(self, client: str, name: str) -> None:
        with self._lock:
            stream = self._streams.pop((client, name), None)
        if stream is None:
            return
        with stream.lock:
            stream.stopping, stream.waiting = True, None
            if stream.running is not None:
                stream.running.cancel.set()  # its end sends live_stopped
                return
            stream.closed = True
        self.jobs.withdraw(f"live:{client}:{name}")
        stream.sink(LiveStopped(stream=name))

    def disconnect(self, client: str) -> None:
        """The connection is gone: its streams end quietly, their canvases are freed."""
        with self._lock:
            mine = [k for k in self._streams if k[0] == client]
            streams = [self._streams.pop(k) for k in mine]
        for stream in streams:
            with stream.lock:
                stream.closed, stream.waiting, stream.canvas = True, None, None
                if stream.running is not None:
                    stream.running.cancel.set()
            self.jobs.withdraw(f"live:{client}:{stream.name}")

    def count(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------------ the kept input
    def _check(self, msg: LiveStart) -> tuple[str, int]:
        if msg.steps > self.limits.max_steps:
            raise EngineError(errors.OUT_OF_RANGE, f"steps must be at most {self.limits.max_steps}", "steps")
        if denoising_steps(msg.steps, msg.strength) < 1:
            raise EngineError(errors.OUT_OF_RANGE, f"strength {msg.strength} x {msg.steps} steps gives no denoising "
                              "step; raise steps or strength", "strength")
        if msg.result_encoding == "png" and msg.result_format not in PNG_FORMATS:
            raise EngineError(errors.UNSUPPORTED, f"PNG cannot carry {msg.result_format}; use raw or zlib",
                              "result_encoding")
        model_id = msg.model or self.engine.default_model()
        spec = next((m for m in self.engine.list_models() if m.id == model_id), None)
        if spec is None:
            raise EngineError(errors.UNKNOWN_MODEL, f"unknown model {model_id!r}", "model")
        if "img2img" not in spec.capabilities:
            raise EngineError(errors.UNSUPPORTED, f"model {model_id!r} cannot do img2img", "kind")
        row = FAMILIES.get(spec.family)
        if row is not None and not row.live:
            raise EngineError(errors.UNSUPPORTED, f"{row.label} models cannot run live frames on this server", "model")
        return spec.id, spec.resolution

    def _apply(self, stream: Stream, ready: LiveFrameReady) -> None:
        """Put the frame's tiles into the kept input, all or nothing: every tile is decoded and the frame's hash
        checked before one byte of the kept input changes (``stale_base``/``too_large`` otherwise)."""
        msg, region = ready.message, ready.region
        key = (msg.x, msg.y, msg.width, msg.height, msg.pixel_format)
        bpp, tile = BYTES_PER_PIXEL[msg.pixel_format], stream.start.tile
        if msg.width * msg.height > self.limits.max_pixels:
            raise ProtocolError(errors.TOO_LARGE, f"a live frame of {msg.width}x{msg.height} exceeds the server's "
                                f"limit of {self.limits.max_pixels} pixels", "width")
        if msg.base is None:
            digests = [b""] * len(grid(region, tile))
        else:
            why = self._stale(stream, msg, key)
            if why:
                raise ProtocolError(errors.STALE_BASE, f"frame {msg.frame} is a delta on frame {msg.base}, but {why}; "
                                    "send a full frame", "base")
            digests = list(stream.digests)
        decoded = []
        for frame in ready.tiles:
            try:
                data = decode_payload(frame)
            except ProtocolError as exc:
                raise ProtocolError(errors.STALE_BASE, f"a tile of frame {msg.frame} does not decode ({exc.message}); "
                                    "send a full frame", "tiles") from None
            index = cell_of(region, tile, Rect(frame.x, frame.y, frame.width, frame.height))
            assert index is not None  # the connection checked every tile against the grid
            digests[index] = tile_digest(data)
            decoded.append((frame, data))
        if frame_hash(digests) != msg.hash:
            raise ProtocolError(errors.STALE_BASE, f"frame {msg.frame} does not match its hash once its tiles are "
                                "applied (a tile was corrupted, or the base differs); send a full frame", "hash")
        canvas = stream.canvas
        if canvas is None or stream.key != key:  # a full frame of another size: a new buffer
            canvas = bytearray(msg.width * msg.height * bpp)
        rows = np.frombuffer(canvas, np.uint8).reshape(msg.height, msg.width * bpp)
        for frame, data in decoded:
            x, y = (frame.x - msg.x) * bpp, frame.y - msg.y
            rows[y:y + frame.height, x:x + frame.width * bpp] = np.frombuffer(data, np.uint8).reshape(
                frame.height, frame.width * bpp)
        stream.canvas, stream.key, stream.digests = canvas, key, digests

    @staticmethod
    def _stale(stream: Stream, msg, key: tuple) -> str | None:
        if stream.canvas is None or stream.key is None:
            return "the server keeps no input for this stream"
        if stream.key != key:
            x, y, w, h, fmt = stream.key
            return f"the kept input is {w}x{h}@{x},{y} {fmt}"
        if stream.latest != msg.base:
            return f"the kept input is frame {stream.latest}"
        if frame_hash(stream.digests) != msg.base_hash:
            return "the kept input's hash differs"
        return None

    # ------------------------------------------------------------------ worker thread
    def _run(self, stream: Stream) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        with stream.lock:
            stream.queued = False
            if stream.closed or stream.stopping or stream.waiting is None or stream.key is None:
                return
            number, stream.waiting = stream.waiting, None
            assert stream.canvas is not None
            snapshot, key = bytearray(stream.canvas), stream.key  # the frame to run, as it is now (a copy)
            run = stream.running = _Run(number)
            applied, applied_cpu = stream.applied_s, stream.applied_cpu_s
        try:
            frame, timings = self._generate(stream, run, snapshot, key)
        except JobCancelled:
            frame = None
        except ProtocolError as exc:  # EngineError included
            stream.sink(LiveError.of(stream.name, exc, number))
            frame = None
        except MemoryError:
            stream.sink(LiveError(stream=stream.name, frame=number, code=errors.OUT_OF_MEMORY,
                                  message="the server ran out of memory for this live frame"))
            frame = None
        with stream.lock:
            stream.running = None
            stream.abandoned = frame is None and run.cancel.cancelled
            if stream.stopping:
                stream.closed = True
                stream.sink(LiveStopped(stream=stream.name))
                return
            if stream.closed:
                return
            if frame is None:
                if run.cancel.cancelled:
                    stream.sink(LiveSkipped(stream=stream.name, frame=number, by=stream.latest))
                return
            stream.sink(frame)
            # beyond_model_cpu_s: CPU time of the server's threads for this frame outside the model (load-proof)
            cpu = time.thread_time() - c0 - timings.pop("inference_cpu_s") + applied_cpu
            timings = {"apply_s": applied, **timings, "total_s": time.perf_counter() - t0 + applied,
                       "beyond_model_cpu_s": cpu}
            stream.sink(LiveResult(stream=stream.name, frame=number, seed=stream.seed,
                                   timings={k: round(max(v, 0.0), 6) for k, v in timings.items()}))

    def _generate(self, stream: Stream, run: _Run, snapshot: bytearray, key: tuple):
        start = stream.start
        t0 = time.perf_counter()
        piece = cut(snapshot, key, start.result_format, Model(stream.resolution, self.max_model_pixels))
        extra = {}
        if "tiny_vae" in _REQUEST_FIELDS:
            extra["tiny_vae"] = True  # live frames take the fast autoencoder when the engine has one
        if "loras" in _REQUEST_FIELDS and getattr(start, "loras", None):
            extra["loras"] = start.loras  # type: ignore[attr-defined]
        request = GenerationRequest(kind="img2img", model=stream.model, prompt=start.prompt,
                                    negative_prompt=start.negative_prompt, strength=start.strength, steps=start.steps,
                                    guidance=start.guidance, seed=stream.seed, batch=1, sampler=start.sampler,
                                    image=piece.model_image, **extra)

        def on_step(info: StepInfo) -> None:
            run.step, run.total = info.step, info.total

        t_run, c_run = time.perf_counter(), time.thread_time()
        [generated] = self.engine.generate(request, on_step, run.cancel)
        t_done, c_done = time.perf_counter(), time.thread_time()
        pixels, region = paste(piece, generated, start.result_format), piece.region
        if start.result_encoding == "raw":  # no copy: the frame's payload is the pasted pixels
            frame = Frame(job=start.stream, role="result", width=region.width, height=region.height,
                          pixel_format=start.result_format, payload=pixels, x=region.x, y=region.y,  # type: ignore
                          index=run.frame & 0xFFFF)
        else:
            frame = make_frame(start.stream, "result", bytes(pixels), region.width, region.height,
                               start.result_format, start.result_encoding, region.x, region.y, run.frame & 0xFFFF)
        t_end = time.perf_counter()
        return frame, {"prepare_s": t_run - t0, "inference_s": t_done - t_run, "encode_s": t_end - t_done,
                       "inference_cpu_s": c_done - c_run}

