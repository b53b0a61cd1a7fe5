"""Shared helpers for the server tests: an in-process server, a controllable engine, event recording."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from underpaint.protocol import vocabulary
from underpaint.protocol.client import Client, new_job_id
from underpaint.protocol.connection import PreviewReceived, ResultReceived
from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import Cancelled, Error, JobInput, Submit
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.vocabulary import PROTOCOL_VERSION, WS_PATH
from underpaint.server.config import ServerConfig
from underpaint.server.engine.interface import CancelToken, Engine, GenerationRequest, JobCancelled, StepInfo

MODEL_PIXELS = 64 * 64  # model-side cap: keeps CPU jobs fast (8x8 latents)
TIMEOUT = 120.0  # generous bound for one CPU job; never a timing assertion


def wait_until(condition: Callable[[], object], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ----------------------------------------------------------------------------------------- engine wrapper
@dataclass
class Gate:
    """Holds a job inside its first denoising step until released (or until the job is cancelled)."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class ControlledEngine(Engine):
    """The real engine plus test hooks: hold a job at step 1, fail the next job, record every call."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.gates: dict[str, Gate] = {}  # prompt -> gate
        self.failures: deque[BaseException] = deque()
        self.log: list[tuple[str, str]] = []  # (prompt, outcome) in run order
        self._lock = threading.Lock()

    def reset(self) -> None:
        for gate in self.gates.values():
            gate.release.set()
        self.gates.clear()
        self.failures.clear()
        self.log.clear()

    def hold(self, prompt: str) -> Gate:
        gate = self.gates[prompt] = Gate()
        return gate

    def fail_next(self, exc: BaseException) -> None:
        self.failures.append(exc)

    def outcome(self, prompt: str) -> str | None:
        with self._lock:
            return next((o for p, o in self.log if p == prompt and o != "running"), None)

    def order(self) -> list[str]:
        with self._lock:
            return [p for p, o in self.log if o == "running"]

    def list_models(self):
        return self.inner.list_models()

    def default_model(self) -> str:
        return self.inner.default_model()

    def device_name(self) -> str:
        return self.inner.device_name()

    def samplers(self) -> tuple[str, ...]:
        return self.inner.samplers()

    def list_loras(self):
        return self.inner.list_loras()

    def generate(self, request: GenerationRequest, on_step: Callable[[StepInfo], None],
                 cancel: CancelToken) -> list[np.ndarray]:
        with self._lock:
            self.log.append((request.prompt, "running"))
        gate = self.gates.get(request.prompt)

        def step(info: StepInfo) -> None:
            on_step(info)
            if gate is not None and info.step == 1:
                gate.reached.set()
                deadline = time.monotonic() + TIMEOUT
                while not (gate.release.is_set() or cancel.cancelled) and time.monotonic() < deadline:
                    time.sleep(0.005)

        outcome = "error"
        try:
            if self.failures:
                raise self.failures.popleft()
            result = self.inner.generate(request, step, cancel)
            outcome = "done"
            return result
        except JobCancelled:
            outcome = "cancelled"
            raise
        finally:
            with self._lock:
                self.log.append((request.prompt, outcome))


# ----------------------------------------------------------------------------------------- in-process server
@dataclass
class Live:
    url: str
    port: int
    engine: ControlledEngine
    config: ServerConfig
    server: Any
    thread: threading.Thread

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self):
        return self.server.config.app.state.service


def start_live(engine: ControlledEngine, **settings: Any) -> Live:
    from underpaint.server.cli.compose import make_server

    config = ServerConfig(**{"port": 0, "log_level": "warning", "max_model_pixels": MODEL_PIXELS, **settings})
    server, sock = make_server(config, engine)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 60, "the server to start")
    assert thread.is_alive(), "the in-process server died while starting"
    port = sock.getsockname()[1]
    return Live(f"ws://127.0.0.1:{port}{WS_PATH}", port, engine, config, server, thread)


def stop_live(live: Live) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=30)


# ----------------------------------------------------------------------------------------- images and jobs
def make_image(width: int, height: int, seed: int = 0, dtype: type = np.uint8, opaque: bool = False) -> np.ndarray:
    """A smooth RGBA image with noise and (unless opaque) varying alpha."""
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), (xx + yy) / max(width + height - 2, 1),
                     0.4 + 0.6 * (1 - xx / max(width - 1, 1))], axis=-1)
    noisy = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    out = np.rint(noisy * top).astype(dtype)
    if opaque:
        out[..., 3] = top
    return out


def disc_mask(width: int, height: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.where((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r, 255, 0).astype(np.uint8)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean square (Chebyshev) dilation, independent of the server's own mask code."""
    sel = mask > 0
    if radius <= 0:
        return sel
    h, w = sel.shape
    padded = np.pad(sel, radius)
    out = np.zeros_like(sel)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def submit(kind: str = "img2img", job: str | None = None, **fields: Any) -> Submit:
    """A small job; ``inputs`` names one frame of each role the kind requires (so it can go over a raw socket)."""
    defaults: dict[str, Any] = {"prompt": "a test", "strength": 0.5, "steps": 2, "seed": 7,
                                "inputs": tuple(JobInput(role=r) for r in vocabulary.KINDS[kind].required)}
    return Submit(job=job or new_job_id("t"), kind=kind, **{**defaults, **fields})


def image_frame(sub: Submit, pixels: np.ndarray, fmt: str = "rgba8", x: int = 0, y: int = 0,
                encoding: str = "raw") -> Frame:
    h, w = pixels.shape[:2]
    return make_frame(sub.job, "image", np.ascontiguousarray(pixels).tobytes(), w, h, fmt, encoding, x, y)


def mask_frame(sub: Submit, mask: np.ndarray, x: int = 0, y: int = 0) -> Frame:
    h, w = mask.shape
    return make_frame(sub.job, "mask", np.ascontiguousarray(mask).tobytes(), w, h, "gray8", x=x, y=y)


def result_array(frame: Frame) -> np.ndarray:
    """A result frame as a numpy array (H, W, channels) of its wire dtype."""
    dtypes = {"rgba8": ("u1", 4), "bgra8": ("u1", 4), "rgba16": ("<u2", 4), "rgbaf32": ("<f4", 4),
              "graya8": ("u1", 2), "rgb8": ("u1", 3)}
    dtype, channels = dtypes[frame.pixel_format]
    data = np.frombuffer(decode_pixels(frame), dtype)
    return data.reshape(frame.height, frame.width, channels)


def quick_job(url: str, token: str | None = None) -> ResultReceived:
    """Run one tiny img2img job on a fresh client: proves the server still serves."""
    client = Client(url, token=token)
    client.connect()
    try:
        client.wait_connected(timeout=30)
        sub = submit(prompt="still serving")
        result = client.run_job(sub, {"image": image_frame(sub, make_image(64, 64))}, timeout=TIMEOUT)
        assert result.result.images == 1 and len(result.frames) == 1
        return result
    finally:
        client.close(wait=True)


# ----------------------------------------------------------------------------------------- clients
class Recorder:
    """An ``on_event`` callback that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._cv = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._cv:
            self.events.append(event)
            self._cv.notify_all()

    def wait(self, predicate: Callable[[object], bool], timeout: float = TIMEOUT) -> Any:
        with self._cv:
            found: list[object] = []

            def hit() -> bool:
                found[:] = [e for e in self.events if predicate(e)]
                return bool(found)

            if not self._cv.wait_for(hit, timeout):
                raise AssertionError(f"event not seen; got {[type(e).__name__ for e in self.events]}")
            return found[0]

    def for_job(self, job: str, kind: type | None = None) -> list[Any]:
        with self._cv:
            return [e for e in self.events if getattr(e, "job", None) == job and (kind is None or isinstance(e, kind))]

    def finished(self, job: str) -> Any:
        return self.wait(lambda e: getattr(e, "job", None) == job
                         and isinstance(e, (ResultReceived, Cancelled, Error)))


@contextmanager
def connected(url: str, token: str | None = None) -> Iterator[tuple[Client, Recorder]]:
    recorder = Recorder()
    client = Client(url, token=token, client_name="tests", on_event=recorder)
    client.connect()
    try:
        client.wait_connected(timeout=30)
        yield client, recorder
    finally:
        client.close(wait=True)


def previews_of(recorder: Recorder, job: str) -> list[Frame]:
    return [e.frame for e in recorder.for_job(job, PreviewReceived)]


# ----------------------------------------------------------------------------------------- raw websocket
class Raw:
    """A bare websocket for sending malformed input the real client would refuse to send."""

    def __init__(self, url: str, **connect_args: Any) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, compression=None, open_timeout=10, close_timeout=2,
                          **connect_args)

    def hello(self, token: str | None = None, protocol: int = PROTOCOL_VERSION,
              features: tuple[str, ...] | None = None) -> dict:
        """A hello advertising ``features`` (default: every feature of the vocabulary); a v1 hello has none."""
        message = {"type": "hello", "protocol": protocol, "client": "raw", "token": token}
        if protocol >= 2:
            message["features"] = list(vocabulary.features() if features is None else features)
        self.send(message)
        return self.recv()

    def send(self, message: dict | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def send_frame(self, frame: Frame | bytes) -> None:
        self.ws.send(frame if isinstance(frame, bytes) else frame.encode())

    def recv(self, timeout: float = 30) -> dict:
        """The next JSON message, skipping binary frames."""
        while True:
            data = self.ws.recv(timeout=timeout)
            if isinstance(data, str):
                return json.loads(data)

    def recv_error(self, timeout: float = 30) -> dict:
        while True:
            message = self.recv(timeout)
            if message["type"] == "error":
                return message

    def close_code(self, timeout: float = 10) -> int | None:
        """Wait for the server to close the socket; its close code."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    def close(self) -> None:
        self.ws.close()


def with_job(sub: Submit, **changes: Any) -> Submit:
    return replace(sub, **changes)
