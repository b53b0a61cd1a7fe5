"""The GIMP plug-in's job runner against a scripted fake client (event order, errors, timeouts)."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from underpaint.plugin_gimp import job
from underpaint.plugin_gimp import pixels as px
from underpaint.plugin_gimp.params import IMG2IMG, INPAINT, parse_params
from underpaint.protocol import client as pclient
from underpaint.protocol import connection, errors, messages
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.geometry import Rect
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.plugin_core import params as core_params
from underpaint.protocol.plugin_core import request as core_request
from underpaint.protocol.plugin_core.regions import plan_region

SPEC = px.choose_spec("rgb", "u8")
PLAN = plan_region(IMG2IMG, Rect(4, 6, 8, 4), None, 64)
WELCOME = messages.Welcome(protocol=2, server_version="t", device="cpu",
                           features=("kind:img2img", "kind:inpaint", "encoding:jpeg"),
                           defaults=messages.Defaults(model="demo"),
                           limits=messages.Limits(max_pixels=10**6, max_frame_bytes=10**7, max_queued_jobs=4,
                                                  max_batch=4, max_steps=100))


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def status(self, text: str) -> None:
        self.calls.append(("status", text))

    def progress(self, fraction: float) -> None:
        self.calls.append(("progress", fraction))

    def preview(self, frame, data: bytes) -> None:
        self.calls.append(("preview", frame.width, frame.height, len(data)))


class FakeClient:
    """Plays ``script(client)`` -> events on its own thread once connected, like the real client."""

    def __init__(self, script, url, token=None, client_name="", client_version="", on_event=None,
                 features=None) -> None:
        self.script, self.url, self.token, self.on_event = script, url, token, on_event
        self.submitted: list = []
        self.cancelled: list[str] = []
        self.closed = False
        self.submit_error: ProtocolError | None = None

    def connect(self) -> None:
        threading.Thread(target=lambda: [self.on_event(e) for e in self.script(self, "connect")]).start()

    def submit(self, submit, inputs) -> str:
        image, mask = inputs["image"], inputs.get("mask")
        if self.submit_error:
            raise self.submit_error
        self.submitted.append((submit, image, mask))
        for event in self.script(self, "submit"):
            self.on_event(event)
        return submit.job

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    def close(self) -> None:
        self.closed = True


def result_frame(job_id: str, region: Rect = PLAN.region, fmt: str = "rgba8", fill: int = 7):
    data = bytes([fill]) * (region.width * region.height * 4)
    return make_frame(job_id, "result", data, region.width, region.height, fmt, "zlib", region.x, region.y)


def happy(events_after_submit):
    def script(client, stage):
        if stage == "connect":
            return [pclient.Connected(WELCOME)]
        return events_after_submit(client.submitted[-1][0].job)
    return script


def make_runner(script, kind=IMG2IMG, the_plan=PLAN, clock=None, client_factory=None, **values):
    p = parse_params(kind, {"prompt": "p", "seed": 5, **values})
    image = bytes(the_plan.region.width * the_plan.region.height * 4)
    mask = bytes(the_plan.region.width * the_plan.region.height) if kind == INPAINT else None
    request = job.plan_request(p, the_plan, the_plan, SPEC, image, mask)
    sink = Sink()
    holder: dict = {}

    def factory(url, **kw):
        holder["client"] = FakeClient(script, url, **kw)
        return holder["client"]

    extra = {"clock": clock} if clock else {}
    runner = job.JobRunner("ws://x:1/v1/ws", "tok", request, sink, idle_timeout=30,
                           client_factory=client_factory or factory, **extra)
    return runner, sink, holder


def drive(runner, limit: int = 200) -> None:
    runner.start()
    for _ in range(limit):
        if runner.step(wait=0.05):
            return
    raise AssertionError("runner did not finish")


def test_happy_path_events_reach_the_sink_in_order() -> None:
    def after(job_id):
        preview = make_frame(job_id, "preview", bytes(4 * 4 * 4), 4, 4, "rgba8", "raw")
        return [messages.Queued(job=job_id, position=0), messages.Started(job=job_id),
                messages.Progress(job=job_id, step=1, total=2), connection.PreviewReceived(job_id, preview),
                messages.Progress(job=job_id, step=2, total=2),
                connection.ResultReceived(job_id, messages.Result(job=job_id, images=1, seeds=(77,)),
                                          (result_frame(job_id),))]

    runner, sink, holder = make_runner(happy(after))
    drive(runner)
    outcome = runner.result()
    assert outcome.seed == 77 and outcome.model == "demo" and outcome.pixels == bytes([7]) * (8 * 4 * 4)
    assert holder["client"].token == "tok" and holder["client"].closed
    kinds = [c[0] for c in sink.calls]
    # connecting, connected, sent, queued, started (a busy bar), two steps with a preview between them
    assert kinds == ["status", "status", "status", "status", "status", "progress", "status", "progress", "preview",
                     "status", "progress"]
    assert ("preview", 4, 4, 64) in sink.calls and ("progress", 1.0) in sink.calls
    submit, image, mask = holder["client"].submitted[0]
    assert submit.result_format == "rgba8" and submit.seed == 5 and submit.preview.encoding == "zlib"  # remote
    assert (image.x, image.y, image.width, image.height, image.encoding) == (4, 6, 8, 4, "zlib") and mask is None


def test_inpaint_sends_mask_and_options() -> None:
    the_plan = plan_region(INPAINT, Rect(0, 0, 32, 32), Rect(8, 8, 4, 4), 4)

    def after(job_id):
        return [connection.ResultReceived(job_id, messages.Result(job=job_id, images=1),
                                          (result_frame(job_id, the_plan.region),))]

    runner, _, holder = make_runner(happy(after), INPAINT, the_plan, context=4)
    drive(runner)
    submit, image, mask = holder["client"].submitted[0]
    assert submit.kind == "inpaint" and submit.inpaint.context == 4
    assert (submit.inpaint.feather, submit.inpaint.grow) == (0, 0)  # the GIMP selection is the feathering
    assert mask.pixel_format == "gray8" and (mask.x, mask.y, mask.width) == (image.x, image.y, image.width)
    assert runner.result().seed == 5  # no seeds reported: the requested one


def test_unreachable_server_is_a_clear_failure() -> None:
    def script(client, stage):
        return [pclient.Disconnected(ProtocolError(errors.CONNECTION_FAILED, "cannot connect: refused"))]

    runner, _, _ = make_runner(script)
    drive(runner)
    with pytest.raises(job.JobFailed, match="Cannot reach the Underpaint server.*refused"):
        runner.result()


@pytest.mark.parametrize(("event", "message"), [
    (lambda j: messages.Error(code="out_of_memory", message="GPU full", job=j),
     r"^The server ran out of memory: .* \(GPU full\)$"),
    (lambda j: messages.Error(code="bad_token", message="nope"), "rejected the token"),
    (lambda j: messages.Cancelled(job=j), "server cancelled"),
    (lambda j: connection.ResultReceived(j, messages.Result(job=j, images=1),
                                         (result_frame(j, Rect(0, 0, 8, 4)),)), "returned a result for 8x4"),
    (lambda j: connection.ResultReceived(j, messages.Result(job=j, images=1), (result_frame(j, fmt="bgra8"),)),
     "returned bgra8 pixels but rgba8"),
    (lambda j: connection.ResultReceived(j, messages.Result(job=j, images=0), ()), "without a result"),
])
def test_server_side_failures(event, message: str) -> None:
    runner, _, _ = make_runner(happy(lambda j: [event(j)]))
    drive(runner)
    with pytest.raises(job.JobFailed, match=message):
        runner.result()


def test_events_of_other_jobs_are_ignored() -> None:
    def after(job_id):
        return [messages.Error(code="internal", message="x", job="other"),
                messages.Progress(job="other", step=1, total=2),
                connection.ResultReceived(job_id, messages.Result(job=job_id, images=1), (result_frame(job_id),))]

    runner, sink, _ = make_runner(happy(after))
    drive(runner)
    assert runner.result().pixels and not [c for c in sink.calls if c[0] == "progress"]


def test_undecodable_preview_is_skipped() -> None:
    def after(job_id):
        jpeg = make_frame(job_id, "preview", bytes(16 * 3), 4, 4, "rgb8", "raw")
        jpeg = type(jpeg)(**{**jpeg.__dict__, "encoding": "jpeg", "payload": b"\xff\xd8junk"})
        return [connection.PreviewReceived(job_id, jpeg),
                connection.ResultReceived(job_id, messages.Result(job=job_id, images=1), (result_frame(job_id),))]

    runner, sink, _ = make_runner(happy(after))
    drive(runner)
    assert runner.result() and not [c for c in sink.calls if c[0] == "preview"]


def test_submit_rejected_locally() -> None:
    def script(client, stage):
        client.submit_error = ProtocolError(errors.TOO_LARGE, "image exceeds the server's limit")
        return [pclient.Connected(WELCOME)]

    runner, _, _ = make_runner(script)
    drive(runner)
    with pytest.raises(job.JobFailed, match=r"^The image is too large for the server: .* \(image exceeds"):
        runner.result()


def test_silent_server_times_out() -> None:
    now = [0.0]
    runner, _, holder = make_runner(happy(lambda j: []), clock=lambda: now[0])
    runner.start()
    assert not runner.step(wait=0.2)  # connected and submitted, then silence
    now[0] = 31.0
    assert runner.step()
    with pytest.raises(job.JobFailed, match="sent nothing for 30 s"):
        runner.result()
    assert holder["client"].closed


def test_cancel_sends_cancel_for_a_submitted_job() -> None:
    runner, _, holder = make_runner(happy(lambda j: []))
    runner.start()
    runner.step(wait=0.2)
    runner.cancel()
    client = holder["client"]
    assert client.cancelled == [runner.job.id] and client.closed
    with pytest.raises(job.JobFailed, match="Cancelled"):
        runner.result()


def test_result_before_finish() -> None:
    runner, _, _ = make_runner(happy(lambda j: []))
    with pytest.raises(job.JobFailed, match="not finished"):
        runner.result()


def test_inpaint_frames_need_a_mask() -> None:
    the_plan = plan_region(INPAINT, Rect(0, 0, 16, 16), Rect(2, 2, 4, 4), 0)
    with pytest.raises(ValueError, match="needs the selection mask"):
        job.plan_request(parse_params(INPAINT, {}), the_plan, the_plan, SPEC, bytes(the_plan.region.area * 4), None)


def submit_of(kind: str, values: dict, welcome_features: tuple[str, ...] = ("tiled",)) -> messages.Submit:
    """The Submit the session would send for ``kind`` with ``values`` to a (remote) server with these features."""
    the_plan = dataclasses.replace(PLAN, kind=kind)
    request = job.plan_request(parse_params(kind, values), the_plan, the_plan, SPEC, bytes(PLAN.region.area * 4),
                               None, previews=False)
    offer = core_params.offer((f"kind:{kind}", *welcome_features), job.FEATURES)
    return core_request.wire(request, "j", offer, "ws://x:1/v1/ws", "auto", 1024, keep=False)[0]


def test_canvas_jobs_submit_their_options() -> None:
    out = submit_of("outpaint", {"expand-right": 64, "resolution": "full"})
    assert out.kind == "outpaint" and out.resolution == "full" and out.inpaint.feather > 0  # a soft seam
    up = submit_of("upscale", {"factor": "x4", "refine": False})
    assert up.upscale == messages.UpscaleOptions(factor=4, upscaler=None, refine=False)
    assert "resolution" not in up.to_dict()


def problem_of(welcome: messages.Welcome, values: dict) -> str | None:
    request = job.plan_request(parse_params(IMG2IMG, values), PLAN, PLAN, SPEC, bytes(PLAN.region.area * 4), None)
    return core_request.problem(request, welcome, core_params.offer(welcome.features, job.FEATURES))


def test_full_resolution_on_a_server_without_tiles_is_refused_with_a_sentence() -> None:
    welcome = messages.Welcome(protocol=2, server_version="t", device="cpu", features=("kind:img2img",),
                               defaults=messages.Defaults(model="m"),
                               limits=messages.Limits(max_pixels=10**6, max_frame_bytes=10**7, max_queued_jobs=2,
                                                      max_batch=2, max_steps=50))
    assert "cannot refine at full resolution" in problem_of(welcome, {"resolution": "full"})
    tiled = messages.Welcome(**{**welcome.__dict__, "features": ("kind:img2img", "tiled")})
    assert problem_of(tiled, {"resolution": "full"}) is None
    assert "does not offer the sampler 'lcm'" in problem_of(tiled, {"sampler": "lcm"})


# ------------------------------------------------------------------ dropped links: reconnect and resume
RESUMING = messages.Welcome(protocol=2, server_version="t", device="cpu",
                            features=("kind:img2img", "kind:inpaint", "resume", "resume_key"),
                            defaults=messages.Defaults(model="demo"), limits=WELCOME.limits)
LOST = ProtocolError(errors.CONNECTION_LOST, "socket closed")


class Link:
    """Scripts for the clients a runner makes: the first drops the link mid-job, later ones ``answers``."""

    def __init__(self, answers, reachable=lambda attempt: True) -> None:
        self.clients: list = []
        self.answers, self.reachable = answers, reachable

    def factory(self, url, **kw):
        attempt = len(self.clients)
        client = FakeClient(self.script(attempt), url, **kw)
        client.resumed = []

        def resume(job_id, key=None):
            client.resumed.append((job_id, key))
            for event in self.answers(job_id):
                client.on_event(event)
        client.resume = resume
        client.resume_keys = {}
        self.clients.append(client)
        return client

    def script(self, attempt):
        def play(client, stage):
            if stage == "connect":
                if attempt and not self.reachable(attempt):
                    return [pclient.Disconnected(ProtocolError(errors.CONNECTION_FAILED, "refused"))]
                return [pclient.Connected(RESUMING)]
            job_id = client.submitted[-1][0].job
            client.resume_keys[job_id] = "secret"
            return [messages.Queued(job=job_id, position=0), messages.Started(job=job_id),
                    messages.Error(code=errors.CONNECTION_LOST, message="socket closed", job=job_id),
                    pclient.Disconnected(LOST)]
        return play


def link_runner(link, clock=None):
    runner, sink, _ = make_runner(lambda c, s: [], clock=clock, client_factory=link.factory)
    return runner, sink


def test_a_dropped_link_reconnects_and_resumes_the_kept_job_with_its_key() -> None:
    link = Link(lambda j: [connection.ResultReceived(j, messages.Result(job=j, images=1, seeds=(9,)),
                                                     (result_frame(j),))])
    runner, sink = link_runner(link)
    drive(runner)
    assert runner.result().seed == 9
    first, second = link.clients
    assert first.submitted[0][0].keep_result and second.resumed == [(first.submitted[0][0].job, "secret")]
    texts = [c[1] for c in sink.calls if c[0] == "status"]
    assert sum("reconnecting" in t for t in texts) <= 2 and any("Resuming" in t for t in texts)


def test_a_job_the_restarted_server_no_longer_knows_is_lost_with_one_sentence() -> None:
    link = Link(lambda j: [messages.Error(code=errors.UNKNOWN_JOB, message="no such job", job=j)])
    runner, _ = link_runner(link)
    drive(runner)
    with pytest.raises(job.JobFailed, match="The server no longer has this job .* unchanged"):
        runner.result()


def test_reconnects_back_off_then_give_up_with_one_sentence() -> None:
    now = [0.0]

    def clock():
        now[0] += 1.0  # every look at the clock is a second later: the backoff waits pass quickly
        return now[0]

    link = Link(lambda j: [], reachable=lambda attempt: False)
    runner, sink = link_runner(link, clock=clock)
    drive(runner, limit=2000)
    with pytest.raises(job.JobFailed, match="Could not reconnect to ws://x:1/v1/ws within 120 s"):
        runner.result()
    assert 5 <= len(link.clients) <= 40  # several tries with growing delays, not one and not a busy loop
    texts = [c[1] for c in sink.calls if c[0] == "status"]
    assert sum("reconnecting" in t for t in texts) <= 2


def test_without_resume_a_dropped_link_fails_the_job() -> None:
    def script(client, stage):
        if stage == "connect":
            return [pclient.Connected(WELCOME)]
        job_id = client.submitted[-1][0].job
        return [messages.Error(code=errors.CONNECTION_LOST, message="socket closed", job=job_id),
                pclient.Disconnected(LOST)]

    runner, _, holder = make_runner(script)
    drive(runner)
    assert not holder["client"].submitted[0][0].keep_result
    with pytest.raises(job.JobFailed, match="connection to the server was lost"):
        runner.result()


@pytest.mark.parametrize("url, transfer, image, result", [
    ("ws://127.0.0.1:7860/v1/ws", "auto", "raw", "raw"), ("ws://10.0.0.2:7860/v1/ws", "auto", "zlib", "zlib"),
    ("ws://10.0.0.2:7860/v1/ws", "raw", "raw", "raw"), ("ws://localhost:7860/v1/ws", "compressed", "zlib", "zlib"),
])
def test_the_transfer_setting_picks_the_encodings(url, transfer, image, result) -> None:
    p = parse_params(INPAINT, {"prompt": "p", "seed": 5})
    area = PLAN_MASKED.region.width * PLAN_MASKED.region.height
    request = job.plan_request(p, PLAN_MASKED, PLAN_MASKED, SPEC, bytes(area * 4), bytes(area))
    offer = core_params.offer(("kind:inpaint",), job.FEATURES)
    submit, inputs = core_request.wire(request, "j", offer, url, transfer, 1024, keep=False)
    assert (inputs["image"].encoding, inputs["mask"].encoding, submit.result_encoding) == (image, image, result)


PLAN_MASKED = plan_region(INPAINT, Rect(0, 0, 32, 32), Rect(4, 4, 8, 8), 4)


def test_the_transfer_setting_is_remembered(tmp_path) -> None:
    from underpaint.plugin_gimp import settings

    (tmp_path / settings.FILE_NAME).write_text('{"url": "ws://10.0.0.2:7860", "transfer": "raw"}')
    assert settings.load(tmp_path).transfer == "raw"
    (tmp_path / settings.FILE_NAME).write_text('{"url": "ws://10.0.0.2:7860", "transfer": "fast"}')
    assert settings.load(tmp_path).transfer == "auto"  # a bad value falls back to the default
    assert settings.resolve("ws://10.0.0.3:7860", None, settings.ServerSettings(transfer="raw")).transfer == "raw"
