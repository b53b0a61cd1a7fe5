"""The plugin's controller without Krita: a fake document, and a fake or a real `underpaint serve`."""

from __future__ import annotations

import dataclasses
import queue
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_document import FakeDocument
from support.server import running_server
from underpaint.plugin_krita.controller import Controller
from underpaint.plugin_krita.jobs import UserError
from underpaint.plugin_krita.params import GenerationParams
from underpaint.plugin_krita.settings import Settings
from underpaint.protocol import client as pclient
from underpaint.protocol import messages
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.frames import Frame
from underpaint.protocol.geometry import Rect

FAST = {"steps": 2, "strength": 1.0, "prompt": "test"}


class Harness:
    """A controller whose client events are delivered by ``pump`` on the test thread (the 'GUI thread')."""

    def __init__(self, url: str, **settings) -> None:
        self.events: queue.Queue = queue.Queue()
        self.controller = Controller(Settings(server_url=url, **settings), post=self.events.put)
        self.statuses: list = []
        self.controller.listeners.append(self.statuses.append)

    def pump(self, until: Callable[[], bool], timeout: float = 120.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; last status {self.controller.message!r}"
            try:
                self.controller.handle(self.events.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                pass

    def idle(self) -> bool:
        return len(self.controller.jobs) == 0

    def close(self) -> None:
        self.controller.disconnect()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("krita-controller")) as url:
        yield url


@pytest.fixture
def harness(server_url: str):
    h = Harness(server_url, context_padding=8, feather=2)
    yield h
    h.close()


def test_img2img_result_covers_the_layer(harness: Harness) -> None:
    doc = FakeDocument(layer=Rect(8, 4, 40, 24))
    job_id = harness.controller.generate(doc, GenerationParams(seed=21, **FAST))
    assert harness.controller.connection == "connecting"  # the job waits for the connection
    harness.pump(harness.idle)
    (job, images), = doc.results
    assert job.id == job_id and len(images) == 1
    image = images[0]
    assert image.rect == Rect(8, 4, 40, 24) and len(image.pixels) == 40 * 24 * 4
    assert image.seed == 21 and image.name == "test [img2img, seed 21]"
    assert image.record.kind == "img2img" and image.record.region == (8, 4, 40, 24)
    assert harness.controller.last_seed == 21
    assert harness.controller.status().message.startswith("Added 1 layer(s)")
    assert harness.controller.welcome is not None and harness.controller.models()


def test_inpaint_result_is_transparent_outside_the_selection(harness: Harness) -> None:
    width, height = 64, 48
    mask = bytearray(width * height)
    for y in range(16, 32):
        mask[y * width + 20:y * width + 44] = b"\xff" * 24
    doc = FakeDocument(width=width, height=height, mask=bytes(mask))
    harness.controller.generate(doc, GenerationParams(seed=5, **FAST))
    harness.pump(harness.idle)
    (job, (image,)), = doc.results
    assert job.capture.kind == "inpaint"
    assert job.capture.region.contains(image.rect)
    far = Rect(20, 16, 24, 16).expand(6)  # selection + feather 2 and a margin
    changed = 0
    for y in range(image.rect.height):
        for x in range(image.rect.width):
            px = image.pixels[(y * image.rect.width + x) * 4:(y * image.rect.width + x) * 4 + 4]
            if not far.contains_point(image.rect.x + x, image.rect.y + y):
                assert px == bytes(4), f"pixel {x},{y} outside the selection was kept"
            elif px != bytes(4):
                changed += 1
    assert changed >= 24 * 16 * 0.9


def test_sixteen_bit_documents_get_sixteen_bit_results(harness: Harness) -> None:
    doc = FakeDocument(width=32, height=24, fmt="bgra16")
    harness.controller.generate(doc, GenerationParams(seed=3, batch=2, source="visible", **FAST))
    harness.pump(harness.idle)
    (job, images), = doc.results
    assert [i.seed for i in images] == [3, 4]
    assert all(len(i.pixels) == 32 * 24 * 8 and i.rect == Rect(0, 0, 32, 24) for i in images)


def test_several_queued_jobs_from_two_documents_all_finish(harness: Harness) -> None:
    docs = [FakeDocument(key=1), FakeDocument(key=2)]
    ids = [harness.controller.generate(d, GenerationParams(seed=i, **FAST)) for i, d in enumerate(docs * 2)]
    assert len(set(ids)) == 4
    harness.pump(harness.idle)
    assert [len(d.results) for d in docs] == [2, 2]


def test_cancel_mid_job_removes_the_preview_and_adds_nothing(harness: Harness) -> None:
    doc = FakeDocument()
    job_id = harness.controller.generate(doc, GenerationParams(prompt="slow", steps=150, strength=1.0))
    harness.pump(lambda: doc.previews.get(job_id, 0) >= 1)
    harness.controller.cancel(job_id)
    harness.pump(harness.idle)
    assert doc.results == [] and job_id in doc.cleared
    assert harness.controller.message == "Cancelled" and not harness.controller.error


def test_closing_a_document_drops_its_jobs_and_ignores_late_events(harness: Harness) -> None:
    closing, other = FakeDocument(key=7), FakeDocument(key=8)
    harness.controller.generate(closing, GenerationParams(prompt="slow", steps=150, strength=1.0))
    harness.pump(lambda: harness.controller.session.running() is not None)
    harness.controller.generate(other, GenerationParams(seed=1, **FAST))
    closing.open = False
    harness.controller.document_closed(7)
    assert "was closed: cancelled 1 job(s)" in harness.controller.message
    harness.pump(harness.idle)
    assert closing.results == [] and len(other.results) == 1


def test_server_down_is_a_clear_error_and_touches_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    h = Harness(f"ws://127.0.0.1:{port}/v1/ws")
    doc = FakeDocument()
    h.controller.generate(doc, GenerationParams(**FAST))
    h.pump(h.idle, timeout=30)
    assert h.controller.error and "Cannot reach the Underpaint server" in h.controller.message
    assert doc.results == [] and doc.previews == {}
    assert h.controller.connection == "disconnected"


def test_wrong_token_says_so(tmp_path: Path) -> None:
    with running_server(tmp_path, "--token", "right") as url:
        h = Harness(url, token="wrong")
        doc = FakeDocument()
        h.controller.generate(doc, GenerationParams(**FAST))
        h.pump(h.idle, timeout=60)
        assert h.controller.error and "rejected the token" in h.controller.message
        assert doc.results == []
        h.close()


# ------------------------------------------------------------------ fake client: routing and bookkeeping
class FakeClient:
    instances: list[FakeClient] = []

    def __init__(self, url, token=None, client_name="", client_version="", on_event=None, features=None) -> None:
        self.url, self.token, self.on_event, self.features = url, token, on_event, features
        self.submitted: list = []
        self.cancelled: list[str] = []
        self.resumed: list[str] = []
        self.resume_keys: dict[str, str] = {}
        self.closed = False
        FakeClient.instances.append(self)

    def connect(self) -> None:
        pass

    def submit(self, submit, inputs) -> str:
        image, mask = inputs["image"], inputs.get("mask")
        self.submitted.append((submit, image, mask))
        return submit.job

    def cancel(self, job: str) -> None:
        self.cancelled.append(job)

    def resume(self, job: str, key: str | None = None) -> None:
        self.resumed.append(job)

    def close(self) -> None:
        self.closed = True


WELCOME = messages.Welcome(
    protocol=2, server_version="9.9", device="fake", features=("kind:img2img", "kind:inpaint", "encoding:jpeg"),
    models=(messages.ModelInfo(id="m1", name="Model", family="sd15", capabilities=("img2img", "inpaint"),
                               resolution=512, default=True),),
    defaults=messages.Defaults(model="m1"),
    limits=messages.Limits(max_pixels=10**6, max_frame_bytes=10**8, max_queued_jobs=8, max_batch=2, max_steps=50))


POSTED: list = []  # what the fake controller's timers posted (``Retry``)


def fake_controller(connected: bool = False, **settings) -> Controller:
    FakeClient.instances.clear()
    POSTED.clear()
    c = Controller(Settings(**settings), post=POSTED.append, make_client=FakeClient)
    if connected:
        c.connect()
        c.handle(pclient.Connected(WELCOME))
    return c


def test_jobs_wait_for_the_connection_then_go_out_with_the_document_format() -> None:
    c = fake_controller(feather=3, grow=1, context_padding=10, preview=False)
    doc = FakeDocument(fmt="rgbaf16")
    job_id = c.generate(doc, GenerationParams(prompt="p", seed=9, model="m1"))
    client = FakeClient.instances[0]
    assert client.submitted == []
    c.handle(pclient.Connected(WELCOME))
    (submit, image, mask), = client.submitted
    assert submit.job == job_id and submit.result_format == "rgbaf16" and submit.seed == 9
    assert (submit.inpaint.feather, submit.inpaint.grow, submit.inpaint.context) == (3, 1, 10)
    assert submit.preview.enabled is False and mask is None
    assert (image.pixel_format, image.width, image.height, image.encoding) == ("rgbaf16", 64, 48, "raw")
    assert submit.result_encoding == "raw"  # loopback: compressing costs more than it saves
    assert c.status().server == "ws://127.0.0.1:7860/v1/ws · fake · server 9.9 · default model Model"


@pytest.mark.parametrize("url, transfer, image, result", [
    ("ws://192.0.2.7:7860/v1/ws", "auto", "zlib", "zlib"),  # remote: compressed (no Qt here: zlib, not PNG)
    ("ws://192.0.2.7:7860/v1/ws", "raw", "raw", "raw"),  # the painter's override
    ("ws://localhost:7860/v1/ws", "compressed", "zlib", "zlib"),
    ("ws://[::1]:7860/v1/ws", "auto", "raw", "raw"),
])
def test_the_transfer_setting_picks_the_encodings(url: str, transfer: str, image: str, result: str) -> None:
    c = fake_controller(connected=True, server_url=url, transfer=transfer, context_padding=0)
    mask = bytes(255 if 8 <= i % 64 < 24 and 8 <= i // 64 < 24 else 0 for i in range(64 * 48))
    doc = FakeDocument(mask=mask)  # inpaint: the mask travels too
    c.generate(doc, GenerationParams(mode="inpaint"))
    (submit, frame, mask), = FakeClient.instances[0].submitted
    assert (frame.encoding, mask.encoding, submit.result_encoding) == (image, image, result)


def test_limits_and_unknown_models_are_refused_before_sending() -> None:
    c = fake_controller(connected=True)
    with pytest.raises(UserError, match="at most 2 images"):
        c.generate(FakeDocument(), GenerationParams(batch=3))
    with pytest.raises(UserError, match="no model 'm9'"):
        c.generate(FakeDocument(), GenerationParams(model="m9"))
    with pytest.raises(UserError, match="strength"):
        c.generate(FakeDocument(), GenerationParams(strength=2.0))
    assert c.error and len(c.jobs) == 0


def test_disconnect_fails_jobs_and_clears_their_previews() -> None:
    c = fake_controller(connected=True)
    doc = FakeDocument()
    job_id = c.generate(doc, GenerationParams())
    c.handle(messages.Started(job=job_id))
    preview = Frame(job=job_id, role="preview", width=2, height=2, pixel_format="rgb8", payload=b"x",
                    encoding="jpeg")
    from underpaint.protocol.connection import PreviewReceived

    c.handle(PreviewReceived(job_id, preview))
    assert doc.previews == {job_id: 1}
    error = pclient.errors.ProtocolError("connection_lost", "socket closed")
    c.handle(pclient.Disconnected(error))
    assert len(c.jobs) == 0 and doc.cleared == [job_id]
    assert c.error and "connection to the server was lost" in c.message


def test_events_for_unknown_jobs_are_ignored_and_errors_are_explained() -> None:
    c = fake_controller(connected=True)
    c.handle(messages.Progress(job="nobody", step=1, total=2))
    c.handle(ResultReceived("nobody", messages.Result(job="nobody", images=0), ()))
    doc = FakeDocument()
    job_id = c.generate(doc, GenerationParams())
    c.handle(messages.Error(code="out_of_memory", message="CUDA OOM", job=job_id))
    assert "ran out of memory" in c.message and "CUDA OOM" in c.message and c.error
    assert doc.results == [] and len(c.jobs) == 0


def test_result_in_the_wrong_format_or_place_fails_the_job_cleanly() -> None:
    c = fake_controller(connected=True)
    doc = FakeDocument(width=4, height=2)
    job_id = c.generate(doc, GenerationParams(seed=1))
    wrong = Frame(job=job_id, role="result", width=4, height=2, pixel_format="rgba8", payload=bytes(32))
    c.handle(ResultReceived(job_id, messages.Result(job=job_id, images=1, seeds=(1,)), (wrong,)))
    assert c.error and "returned rgba8 pixels but bgra8 was requested" in c.message
    job_id = c.generate(doc, GenerationParams(seed=1))
    outside = Frame(job=job_id, role="result", width=4, height=2, pixel_format="bgra8", payload=bytes(32), x=9)
    c.handle(ResultReceived(job_id, messages.Result(job=job_id, images=1, seeds=(1,)), (outside,)))
    assert c.error and "outside the region" in c.message
    assert doc.results == []


def test_changing_the_server_drops_the_connection() -> None:
    c = fake_controller(connected=True)
    c.apply_settings(Settings(server_url="ws://elsewhere:1/v1/ws"))
    assert FakeClient.instances[0].closed and c.connection == "disconnected"
    c.apply_settings(Settings(server_url="ws://elsewhere:1/v1/ws", preview=False))  # same server: nothing


def test_cancel_of_a_waiting_job_never_reaches_the_server() -> None:
    c = fake_controller()
    job_id = c.generate(FakeDocument(), GenerationParams())
    c.cancel(job_id)
    assert c.message == "Cancelled" and len(c.jobs) == 0
    c.handle(pclient.Connected(WELCOME))
    assert FakeClient.instances[0].submitted == []


def test_late_events_of_a_closed_connection_are_ignored() -> None:
    from underpaint.plugin_krita.controller import Tagged

    posted: list = []
    FakeClient.instances.clear()
    c = Controller(Settings(), post=posted.append, make_client=FakeClient)
    c.connect()
    FakeClient.instances[0].on_event(pclient.Connected(WELCOME))
    c.handle(posted.pop())
    job_id = c.generate(FakeDocument(), GenerationParams())
    old = FakeClient.instances[0]
    c.disconnect()  # e.g. the Connect button: the job in flight fails at once
    assert len(c.jobs) == 0 and "Disconnected" in c.message
    c.connect()
    new = FakeClient.instances[1]
    new.on_event(pclient.Connected(WELCOME))
    old.on_event(messages.Error(code="connection_lost", message="closed", job=job_id))
    old.on_event(pclient.Disconnected(None))
    for event in posted:
        c.handle(event)
    assert c.connection == "connected" and not c.error
    assert [e.generation for e in posted] == [3, 1, 1] and isinstance(posted[0], Tagged)


# ------------------------------------------------------------------ limits, progress, per-document cancel
def test_steps_over_the_server_limit_are_refused_with_a_sentence_before_sending() -> None:
    c = fake_controller(connected=True)
    with pytest.raises(UserError, match="at most 50 steps per job"):
        c.generate(FakeDocument(), GenerationParams(steps=51))
    assert c.error and FakeClient.instances[0].submitted == []
    assert c.status().limits is not None and c.status().limits.max_steps == 50  # for the docker's ranges


def test_remaining_server_errors_read_as_sentences() -> None:
    from underpaint.plugin_krita.jobs import LABELS
    from underpaint.protocol.plugin_core.sentences import explain

    text = explain("out_of_range", "steps must be at most 150", LABELS)
    assert "out_of_range" not in text and not text.startswith("Error")
    assert "does not accept" in text and "Steps must be at most 150" in text
    for code in ("bad_value", "missing_frame", "not_ready", "some_new_code"):
        sentence = explain(code, "")
        assert sentence[0].isupper() and sentence.endswith(".") and "_" not in sentence, sentence


def test_progress_shows_step_of_total_and_is_unknown_before_the_first_step() -> None:
    c = fake_controller(connected=True)
    job_id = c.generate(FakeDocument(), GenerationParams())
    c.handle(messages.Started(job=job_id))
    c.handle(messages.Progress(job=job_id, step=12, total=40))
    assert c.message == "Step 12/40" and c.status().progress == (12, 40)
    c.handle(messages.Progress(job=job_id, step=40, total=40))
    assert c.message == "Step 40/40" and c.status().progress == (40, 40)
    other = c.generate(FakeDocument(key=2), GenerationParams())
    c.cancel(job_id)
    c.handle(messages.Cancelled(job=job_id))
    c.handle(messages.Started(job=other))
    assert c.message == "Generating …" and c.status().progress is None  # busy bar until the first step


def test_cancel_stops_only_the_current_documents_jobs() -> None:
    c = fake_controller(connected=True)
    mine, theirs = FakeDocument(key=1), FakeDocument(key=2)
    first, second = c.generate(mine, GenerationParams()), c.generate(mine, GenerationParams())
    other = c.generate(theirs, GenerationParams())
    c.cancel_document(1, "doc1")
    assert sorted(FakeClient.instances[0].cancelled) == sorted([first, second])
    assert c.jobs.get(other) is not None and not c.jobs.get(other).track.cancel_requested
    c.cancel_document(3, "empty")
    assert len(FakeClient.instances[0].cancelled) == 2
    assert "No jobs to cancel in 'empty'" in c.message and "3 job(s) of other documents keep running" in c.message


# ------------------------------------------------------------------ reconnect and resume
RESUMING = dataclasses.replace(WELCOME, features=WELCOME.features + ("resume", "resume_key"))


def _retry(c: Controller, timeout: float = 3.0) -> None:
    """Deliver the reconnect timer's ``Retry`` once it fires."""
    import time

    deadline = time.monotonic() + timeout
    while not POSTED:
        assert time.monotonic() < deadline, "no reconnect was scheduled"
        time.sleep(0.02)
    c.handle(POSTED.pop(0))


def _drop(c: Controller, *jobs: str) -> None:
    for job_id in jobs:
        c.handle(messages.Error(code="connection_lost", message="socket closed", job=job_id))
    c.handle(pclient.Disconnected(pclient.errors.ProtocolError("connection_lost", "socket closed")))


def test_a_dropped_connection_reconnects_after_a_backoff_and_resumes_the_kept_jobs() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(RESUMING))
    doc = FakeDocument()
    job_id = c.generate(doc, GenerationParams(seed=3))
    (submit, _, _), = FakeClient.instances[0].submitted
    assert submit.keep_result and "resume" in FakeClient.instances[0].features
    FakeClient.instances[0].resume_keys[job_id] = "key-1"
    _drop(c, job_id)
    assert c.jobs.get(job_id) is not None and "reconnecting" in c.message and "keeps 1 job" in c.message
    assert c.status().connection == "connecting" and len(FakeClient.instances) == 1  # waits first (backoff)
    _retry(c)
    assert len(FakeClient.instances) == 2  # a new connection
    c.handle(pclient.Connected(RESUMING))
    assert FakeClient.instances[1].resumed == [job_id] and c.jobs.get(job_id).state == "queued"
    frame = Frame(job=job_id, role="result", width=64, height=48, pixel_format="bgra8", payload=bytes(64 * 48 * 4))
    c.handle(ResultReceived(job_id, messages.Result(job=job_id, images=1, seeds=(3,)), (frame,)))
    assert len(doc.results) == 1 and len(c.jobs) == 0


def test_failed_reconnects_back_off_quietly_then_give_up_with_one_sentence() -> None:
    from underpaint.protocol.plugin_core.reconnect import Backoff

    c = fake_controller()
    now = [0.0]
    c.session.backoff = Backoff(first=0.01, cap=0.02, budget=60.0, clock=lambda: now[0])
    c.connect()
    c.handle(pclient.Connected(RESUMING))
    doc = FakeDocument()
    job_id = c.generate(doc, GenerationParams())
    FakeClient.instances[0].resume_keys[job_id] = "key-1"
    messages_seen: list[str] = []
    c.listeners.append(lambda status: messages_seen.append(status.message))
    _drop(c, job_id)
    for _ in range(4):  # the server is unreachable for a while: every try fails
        _retry(c)
        now[0] += 5
        c.handle(pclient.Disconnected(pclient.errors.ProtocolError("connection_failed", "refused")))
    assert len(FakeClient.instances) == 5 and c.jobs.get(job_id) is not None  # kept while retrying
    assert len(set(messages_seen)) <= 2, messages_seen  # "connection lost … reconnecting", no line per attempt
    _retry(c)
    now[0] += 60  # past the budget
    c.handle(pclient.Disconnected(pclient.errors.ProtocolError("connection_failed", "refused")))
    assert len(c.jobs) == 0 and c.error and "Could not reconnect" in c.message and "unchanged" in c.message
    assert doc.results == [] and not POSTED


def test_the_resume_key_survives_failed_attempts() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(RESUMING))
    job_id = c.generate(FakeDocument(), GenerationParams())
    FakeClient.instances[0].resume_keys[job_id] = "key-1"
    _drop(c, job_id)
    _retry(c)
    c.handle(pclient.Disconnected(pclient.errors.ProtocolError("connection_failed", "refused")))
    _retry(c)
    keys = []
    FakeClient.instances[-1].resume = lambda job, key=None: keys.append((job, key))
    c.handle(pclient.Connected(RESUMING))
    assert keys == [(job_id, "key-1")]


def test_a_job_the_restarted_server_no_longer_knows_is_lost_with_one_sentence() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(RESUMING))
    doc = FakeDocument()
    job_id = c.generate(doc, GenerationParams())
    c.handle(messages.Started(job=job_id))
    preview = Frame(job=job_id, role="preview", width=2, height=2, pixel_format="rgb8", payload=b"x",
                    encoding="jpeg")
    from underpaint.protocol.connection import PreviewReceived

    c.handle(PreviewReceived(job_id, preview))
    _drop(c, job_id)
    _retry(c)
    c.handle(pclient.Connected(RESUMING))
    c.handle(messages.Error(code="unknown_job", message="no such job", job=job_id))
    assert len(c.jobs) == 0 and doc.results == [] and doc.cleared == [job_id]
    assert c.error and c.message.startswith("The server no longer has this job") and "unchanged" in c.message


def test_disconnect_during_the_backoff_stops_reconnecting() -> None:
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(RESUMING))
    job_id = c.generate(FakeDocument(), GenerationParams())
    _drop(c, job_id)
    c.disconnect()
    _retry(c)  # the timer's event arrives late: ignored
    assert len(FakeClient.instances) == 1 and len(c.jobs) == 0 and c.status().connection == "disconnected"


def test_without_resume_on_both_sides_jobs_are_not_kept() -> None:
    c = fake_controller(connected=True)
    c.generate(FakeDocument(), GenerationParams())
    (submit, _, _), = FakeClient.instances[0].submitted
    assert not submit.keep_result


def test_a_job_survives_a_dropped_connection_on_a_real_server(harness: Harness) -> None:
    doc = FakeDocument(layer=Rect(0, 0, 32, 32))
    job_id = harness.controller.generate(doc, GenerationParams(seed=5, steps=30, strength=1.0, prompt="long"))
    harness.pump(lambda: (harness.controller.status().progress or (0, 0))[0] >= 1)
    harness.controller.client._ws.close()  # the network drops: no close() by the plugin
    harness.pump(lambda: "Reconnecting" in harness.controller.message or harness.idle())
    harness.pump(harness.idle)
    (job, images), = doc.results
    assert job.id == job_id and job.track.resumed and images[0].seed == 5, harness.controller.message


def test_the_sampler_goes_out_and_one_the_server_lacks_is_refused_before_sending() -> None:
    c = fake_controller(connected=True)
    with pytest.raises(UserError, match="does not offer the sampler 'lcm'"):
        c.generate(FakeDocument(), GenerationParams(sampler="lcm"))
    c = fake_controller()
    c.connect()
    c.handle(pclient.Connected(dataclasses.replace(WELCOME, features=WELCOME.features + ("sampler:lcm",))))
    c.generate(FakeDocument(), GenerationParams(sampler="lcm"))
    (submit, _, _), = FakeClient.instances[0].submitted
    assert submit.sampler == "lcm" and c.offer().samplers == ("default", "lcm")
