"""The threaded Client against a tiny websocket server (port 0) that speaks through ServerConnection."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable

import pytest
from proto_strategies import make_welcome
from underpaint.protocol import errors
from underpaint.protocol.client import Client, Connected, Disconnected, new_job_id, websocket_url
from underpaint.protocol.connection import JobRequest, PreviewReceived, ResultReceived, ServerConnection
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import (
    Cancel,
    Cancelled,
    Error,
    Hello,
    Limits,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
    Welcome,
)
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.vocabulary import PROTOCOL_VERSION, features
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

LIMITS = Limits(max_pixels=2048 * 2048, max_frame_bytes=2048 * 2048 * 4 + 4096, max_queued_jobs=4, max_batch=4,
                max_steps=100, keep_results_s=60)
SERVER_FEATURES = features(kinds=("img2img", "inpaint"), flags=("resume",))
WELCOME = make_welcome(LIMITS, server_version="fake", features=SERVER_FEATURES)
INVERT = bytes(range(255, -1, -1))
WAIT = 30  # seconds: a liveness bound for queue reads, never a performance assertion


class FakeServer:
    """Runs ``on_job(server, send, request)`` for every JobRequest; answers hello, cancel and resume itself."""

    def __init__(self, on_job: Callable | None = None, welcome: Welcome = WELCOME, token: str | None = None) -> None:
        self.on_job = on_job or echo
        self.welcome = welcome
        self.token = token
        self.requests: list[JobRequest] = []
        self.paths: list[str] = []
        self.held: set[str] = set()
        self.kept: dict[str, list] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.server = serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None)
        self.url = f"127.0.0.1:{self.server.socket.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.thread.join(timeout=10)

    def _handle(self, ws) -> None:
        self.paths.append(ws.request.path)
        conn = ServerConnection(LIMITS)
        lock = threading.Lock()

        def send(item) -> None:
            with lock:
                data = conn.send_frame(item.encode()) if isinstance(item, Frame) else conn.send(item)
                if data is not None:
                    ws.send(data)

        try:
            for data in ws:
                self.gate.wait()
                try:
                    events = conn.receive_bytes(data) if isinstance(data, bytes) else conn.receive_text(data)
                except ProtocolError as exc:
                    send(Error.from_exception(exc))
                    if exc.code in errors.FATAL_CODES:
                        return
                    continue
                for event in events:
                    if isinstance(event, Hello):
                        if self.token and event.token != self.token:
                            send(Error(code=errors.BAD_TOKEN, message="wrong token", field="token"))
                            return
                        with lock:
                            future = self.welcome.protocol != PROTOCOL_VERSION  # a later server's own welcome
                            ws.send(self.welcome.encode() if future else conn.accept(self.welcome))
                    elif isinstance(event, JobRequest):
                        self.requests.append(event)
                        self.on_job(self, send, event)
                    elif isinstance(event, Cancel) and event.job in self.held:
                        self.held.discard(event.job)
                        send(Cancelled(job=event.job))
                    elif isinstance(event, Resume):
                        if event.job not in self.kept:
                            send(Error(code=errors.UNKNOWN_JOB, message="no kept job", job=event.job))
                        for item in self.kept.pop(event.job, []):
                            send(item)
                    elif isinstance(event, Cancelled):
                        send(event)
        except ConnectionClosed:
            pass


def outputs(request: JobRequest) -> list:
    """Everything a job sends after it starts: progress, a preview, inverted result frames, the result."""
    job, image = request.submit.job, request.image()
    pixels = decode_pixels(image).translate(INVERT)
    frames = [make_frame(job, "result", pixels, image.width, image.height, image.pixel_format, x=image.x, y=image.y,
                         index=i) for i in range(request.submit.batch)]
    preview = Frame(job=job, role="preview", width=4, height=4, pixel_format="rgb8", payload=b"\xff\xd8\xff\xd9",
                    encoding="jpeg")
    return [Progress(job=job, step=1, total=2), preview, Progress(job=job, step=2, total=2), *frames,
            Result(job=job, images=len(frames), seeds=tuple(range(len(frames))), timings={"total": 0.01})]


def echo(server: FakeServer, send, request: JobRequest) -> None:
    send(Queued(job=request.submit.job, position=0))
    send(Started(job=request.submit.job))
    for item in outputs(request):
        send(item)


def hold(server: FakeServer, send, request: JobRequest) -> None:
    server.held.add(request.submit.job)
    send(Queued(job=request.submit.job, position=0))


def drop(server: FakeServer, send, request: JobRequest) -> None:
    if request.submit.keep_result:
        server.kept[request.submit.job] = outputs(request)
    send(Started(job=request.submit.job))
    raise ConnectionClosed(None, None)  # leaves the handler: the server closes the socket mid-job


def fail(server: FakeServer, send, request: JobRequest) -> None:
    send(Error(code=errors.UNKNOWN_MODEL, message="no model 'x'", job=request.submit.job, field="model"))


@pytest.fixture
def make_server():
    servers: list[FakeServer] = []

    def make(**kwargs) -> FakeServer:
        servers.append(FakeServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def make_client():
    clients: list[Client] = []

    def make(url: str, **kwargs) -> Client:
        clients.append(Client(url, client_name="test", **kwargs))
        return clients[-1]

    yield make
    for client in clients:
        client.close(wait=True)


def image(job: str, width: int = 8, height: int = 4) -> Frame:
    return make_frame(job, "image", bytes(width * height * 4), width, height, "rgba8", x=5, y=-3)


def events_until(client: Client, done: Callable[[object], bool]) -> list:
    seen = []
    while True:
        event = client.events.get(timeout=WAIT)
        seen.append(event)
        if done(event):
            return seen


def connected(make_client, server: FakeServer, **kwargs) -> Client:
    client = make_client(server.url, **kwargs)
    client.connect()
    assert client.wait_connected(WAIT) == server.welcome
    return client


# --------------------------------------------------------------------------------------------- tests
def test_connect_and_welcome(make_server, make_client):
    server = make_server()
    client = connected(make_client, server)
    assert isinstance(client.events.get(timeout=WAIT), Connected)
    assert client.connected and server.paths == ["/v1/ws"]
    client.close(wait=True)
    assert client.events.get(timeout=WAIT) == Disconnected(None)
    assert not client.connected


def test_events_arrive_on_the_queue_in_order(make_server, make_client):
    server = make_server()
    client = connected(make_client, server)
    client.events.get(timeout=WAIT)  # Connected
    job = client.submit(Submit(job="j1", kind="img2img", batch=2), {"image": image("j1")})
    assert job == "j1"
    seen = events_until(client, lambda e: isinstance(e, ResultReceived))
    assert [type(e) for e in seen] == [Queued, Started, Progress, PreviewReceived, Progress, ResultReceived]
    result = seen[-1]
    assert [f.index for f in result.frames] == [0, 1] and result.result.seeds == (0, 1)
    assert decode_pixels(result.frames[0]) == bytes([255]) * (8 * 4 * 4)
    assert (result.frames[0].x, result.frames[0].y) == (5, -3)
    assert server.requests[0].image() == image("j1")


def test_events_reach_the_callback_on_another_thread(make_server, make_client):
    server = make_server()
    seen, threads, done = [], set(), threading.Event()

    def on_event(event):
        seen.append(event)
        threads.add(threading.current_thread())
        if isinstance(event, ResultReceived):
            done.set()

    client = make_client(server.url, on_event=on_event)
    client.connect()
    client.wait_connected(WAIT)
    client.submit(Submit(job="cb", kind="inpaint"), {"image": image("cb"), "mask": make_frame(
        "cb", "mask", bytes([255]) * 32, 8, 4, "gray8", x=5, y=-3)})
    assert done.wait(WAIT)
    assert isinstance(seen[0], Connected) and isinstance(seen[-1], ResultReceived)
    assert threading.current_thread() not in threads and client.events.empty()
    assert server.requests[0].mask() is not None


def test_run_job_returns_the_result(make_server, make_client):
    server = make_server()
    client = connected(make_client, server)
    progress = []
    job = new_job_id()
    done = client.run_job(Submit(job=job, kind="img2img"), {"image": image(job)}, timeout=WAIT,
                          on_event=progress.append)
    assert isinstance(done, ResultReceived) and len(done.frames) == 1
    assert [type(e) for e in progress][-1] is ResultReceived and any(isinstance(e, Progress) for e in progress)
    again = client.run_job(Submit(job="second", kind="img2img"), {"image": image("second")}, timeout=WAIT)
    assert again.job == "second" and len(server.requests) == 2


def test_run_job_raises_the_servers_error(make_server, make_client):
    client = connected(make_client, make_server(on_job=fail))
    with pytest.raises(ProtocolError) as info:
        client.run_job(Submit(job="j1", kind="img2img", model="x"), {"image": image("j1")}, timeout=WAIT)
    assert (info.value.code, info.value.job, info.value.field) == (errors.UNKNOWN_MODEL, "j1", "model")


def test_cancel_a_held_job(make_server, make_client):
    server = make_server(on_job=hold)
    client = connected(make_client, server)
    client.events.get(timeout=WAIT)
    client.submit(Submit(job="j1", kind="img2img"), {"image": image("j1")})
    assert isinstance(client.events.get(timeout=WAIT), Queued)
    client.cancel("j1")
    assert client.events.get(timeout=WAIT) == Cancelled(job="j1")
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_run_and_catch(client, "j2")))
    worker.start()
    while "j2" not in server.held:
        threading.Event().wait(0.01)
    client.cancel("j2")
    worker.join(WAIT)
    assert outcome and outcome[0].code == errors.CANCELLED


def _run_and_catch(client: Client, job: str) -> ProtocolError | None:
    try:
        client.run_job(Submit(job=job, kind="img2img"), {"image": image(job)}, timeout=WAIT)
    except ProtocolError as exc:
        return exc
    return None


def test_server_closing_mid_job_ends_it_with_connection_lost(make_server, make_client):
    client = connected(make_client, make_server(on_job=drop))
    client.events.get(timeout=WAIT)
    client.submit(Submit(job="j1", kind="img2img"), {"image": image("j1")})
    seen = events_until(client, lambda e: isinstance(e, Disconnected))
    assert isinstance(seen[0], Started)
    [lost] = [e for e in seen if isinstance(e, Error)]
    assert (lost.code, lost.job) == (errors.CONNECTION_LOST, "j1")
    assert seen[-1].error.code == errors.CONNECTION_LOST and not client.connected
    with pytest.raises(ProtocolError) as info:
        client.submit(Submit(job="j2", kind="img2img"), {"image": image("j2")})
    assert info.value.code == errors.NOT_READY


def test_run_job_sees_the_lost_connection(make_server, make_client):
    client = connected(make_client, make_server(on_job=drop))
    with pytest.raises(ProtocolError) as info:
        client.run_job(Submit(job="j1", kind="img2img"), {"image": image("j1")}, timeout=WAIT)
    assert info.value.code == errors.CONNECTION_LOST and info.value.job == "j1"


def test_resume_after_reconnect_collects_a_kept_result(make_server, make_client):
    server = make_server(on_job=drop)
    client = connected(make_client, server)
    client.submit(Submit(job="kept", kind="img2img", keep_result=True), {"image": image("kept")})
    events_until(client, lambda e: isinstance(e, Disconnected))
    client.reconnect()
    client.wait_connected(WAIT)
    client.resume("kept")
    seen = events_until(client, lambda e: isinstance(e, ResultReceived))
    assert seen[-1].job == "kept" and decode_pixels(seen[-1].frames[0]) == bytes([255]) * 128


def test_connection_refused_fails_fast(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    client = make_client(f"127.0.0.1:{port}", open_timeout=120)
    client.connect()
    event = client.events.get(timeout=WAIT)  # far less than open_timeout: a refusal is not a timeout
    assert isinstance(event, Disconnected) and event.error.code == errors.CONNECTION_FAILED
    with pytest.raises(ProtocolError) as info:
        client.wait_connected(timeout=WAIT)
    assert info.value.code == errors.CONNECTION_FAILED


def test_submit_never_blocks_the_caller(make_server, make_client):
    server = make_server()
    client = connected(make_client, server)
    big = make_frame("big", "image", bytes(2048 * 2048 * 4), 2048, 2048, "rgba8")
    assert len(big.payload) == 16 << 20
    server.gate.clear()  # the server stops handling messages until the gate opens
    returned = []

    def caller():
        client.submit(Submit(job="big", kind="img2img"), {"image": big})
        client.submit(Submit(job="small", kind="img2img"), {"image": image("small")})
        client.cancel("nothing")
        returned.append(True)

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(WAIT)
    assert returned == [True], "submit blocked the calling thread"
    assert server.requests == []  # submit returned before the server could have handled the frame
    server.gate.set()
    done = events_until(client, lambda e: isinstance(e, ResultReceived) and e.job == "small")
    assert any(isinstance(e, ResultReceived) and e.job == "big" for e in done)


def test_invalid_submits_raise_at_once(make_server, make_client):
    server = make_server(on_job=hold)
    client = make_client(server.url)
    with pytest.raises(ProtocolError) as info:
        client.submit(Submit(job="j1", kind="img2img"), {"image": image("j1")})
    assert info.value.code == errors.NOT_READY
    client.connect()
    client.wait_connected(WAIT)
    bad_mask = make_frame("j1", "mask", bytes(8), 4, 2, "gray8")
    for args, code in [((Submit(job="j1", kind="inpaint"), {"image": image("j1"), "mask": bad_mask}),
                        errors.SIZE_MISMATCH),
                       ((Submit(job="j1", kind="img2img", steps=101), {"image": image("j1")}), errors.OUT_OF_RANGE),
                       ((Submit(job="j1", kind="inpaint"), {"image": image("j1")}), errors.MISSING_INPUT),
                       ((Submit(job="j1", kind="img2img"), {"image": image("j1"), "mask": bad_mask}),
                        errors.UNEXPECTED_INPUT),
                       ((Submit(job="j1", kind="upscale"), {"image": image("j1")}), errors.UNSUPPORTED)]:
        with pytest.raises(ProtocolError) as info:
            client.submit(*args)
        assert info.value.code == code
    client.submit(Submit(job="j1", kind="img2img"), {"image": image("j1")})
    with pytest.raises(ProtocolError) as info:
        client.submit(Submit(job="j1", kind="img2img"), {"image": image("j1")})
    assert info.value.code == errors.DUPLICATE_JOB


def test_incompatible_server_version_disconnects(make_server, make_client):
    welcome = make_welcome(LIMITS, protocol=3, server_version="future")
    client = make_client(make_server(welcome=welcome).url)
    client.connect()
    seen = events_until(client, lambda e: isinstance(e, Disconnected))
    assert seen[-1].error.code == errors.INCOMPATIBLE_VERSION
    assert [e.code for e in seen if isinstance(e, Error)] == [errors.INCOMPATIBLE_VERSION]
    assert "update this plugin to a release for protocol 3" in seen[-1].error.message
    with pytest.raises(ProtocolError) as info:
        client.wait_connected(WAIT)
    assert info.value.code == errors.INCOMPATIBLE_VERSION


@pytest.mark.parametrize("token, code", [(None, errors.BAD_TOKEN), ("wrong", errors.BAD_TOKEN)])
def test_bad_token_disconnects(make_server, make_client, token, code):
    client = make_client(make_server(token="right").url, token=token)
    client.connect()
    seen = events_until(client, lambda e: isinstance(e, Disconnected))
    assert seen[-1].error.code == code


def test_right_token_connects(make_server, make_client):
    connected(make_client, make_server(token="right"), token="right")


@pytest.mark.parametrize("given, expected", [
    ("localhost:7860", "ws://localhost:7860/v1/ws"),
    ("http://10.0.0.2:7860/", "ws://10.0.0.2:7860/v1/ws"),
    ("https://gpu.example.org", "wss://gpu.example.org/v1/ws"),
    ("ws://host:1/custom/path", "ws://host:1/custom/path"),
    (" wss://host/v1/ws ", "wss://host/v1/ws"),
])
def test_websocket_url(given, expected):
    assert websocket_url(given) == expected


def test_new_job_ids_are_valid_and_unique():
    ids = {new_job_id("krita") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("krita-") and len(i) <= 64 for i in ids)
    Submit(job=ids.pop(), kind="img2img").encode()


def test_queue_module_is_the_event_queue():
    assert isinstance(Client("localhost:1").events, queue.Queue)
