"""The shared JobSession driven by a fake client: checks, submit, events, results, reconnect and resume."""

from __future__ import annotations

import dataclasses

import pytest
from underpaint.protocol import client as pclient
from underpaint.protocol import errors, messages
from underpaint.protocol.connection import PreviewReceived, ResultReceived
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.geometry import Rect
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.plugin_core import jobs, params, reconnect, regions, session
from underpaint.protocol.plugin_core.request import JobRequest, kind_options

URL = "ws://127.0.0.1:7860/v1/ws"
FEATURES = params.client_features(resume=True, lora=True)
IDENTITY = session.Identity("underpaint-test", "1", FEATURES)
PLAN = regions.plan_region("img2img", Rect(0, 0, 8, 4), None, 0)
WELCOME = messages.Welcome(
    protocol=2, server_version="9", device="fake", features=("kind:img2img", "kind:upscale", "sampler:lcm"),
    models=(messages.ModelInfo(id="m1", name="M", family="sd15", capabilities=("img2img",), resolution=512),),
    defaults=messages.Defaults(model="m1"),
    limits=messages.Limits(max_pixels=1000, max_frame_bytes=10**7, max_queued_jobs=4, max_batch=2, max_steps=50))
RESUMING = dataclasses.replace(WELCOME, features=WELCOME.features + ("resume", "resume_key"))


class FakeClient:
    def __init__(self, url, token=None, client_name="", client_version="", on_event=None, features=None) -> None:
        self.url, self.on_event, self.features = url, on_event, features
        self.submitted: list = []
        self.cancelled: list[str] = []
        self.resumed: list[tuple[str, str | None]] = []
        self.resume_keys: dict[str, str] = {}
        self.closed = False

    def connect(self) -> None:
        pass

    def submit(self, submit, inputs) -> str:
        self.submitted.append((submit, inputs))
        return submit.job

    def cancel(self, job: str) -> None:
        self.cancelled.append(job)

    def resume(self, job: str, key: str | None = None) -> None:
        self.resumed.append((job, key))

    def close(self) -> None:
        self.closed = True


class Host:
    """A host: collects what the client posts, delivers it to the session, keeps every output."""

    def __init__(self, **kw) -> None:
        self.posted: list = []
        self.clients: list[FakeClient] = []
        self.now = [0.0]
        self.session = session.JobSession(URL, None, IDENTITY, self.posted.append, self.make, {"steps": "Steps"},
                                          clock=lambda: self.now[0], **kw)
        self.out: list = []

    def make(self, url, **kw) -> FakeClient:
        self.clients.append(FakeClient(url, **kw))
        return self.clients[-1]

    def deliver(self, event: object) -> list:
        """``event`` as the current client posts it."""
        self.clients[-1].on_event(event)
        out = self.session.handle(self.posted.pop())
        self.out += out
        return out

    def connected(self, welcome: messages.Welcome = WELCOME) -> None:
        self.out += self.session.connect()
        self.deliver(pclient.Connected(welcome))

    def submit(self, **fields) -> session.SessionJob:
        job, out = self.session.submit(request(**fields))
        self.out += out
        return job

    def finished(self) -> list[jobs.Finished]:
        return [o.update for o in self.out if isinstance(o, session.JobUpdate) and isinstance(o.update, jobs.Finished)]


def request(**fields) -> JobRequest:
    fields = {"plan": PLAN, "mask": None, **fields}
    return JobRequest(pixel_format="rgba8", image=bytes(8 * 4 * 4), seed=3, **fields)


def result(job_id: str, rect: Rect = PLAN.region, fmt: str = "rgba8") -> ResultReceived:
    frame = make_frame(job_id, "result", bytes(rect.area * 4), rect.width, rect.height, fmt, "raw", rect.x, rect.y)
    return ResultReceived(job_id, messages.Result(job=job_id, images=1), (frame,))


@pytest.mark.parametrize("fields, sentence", [
    ({"steps": 51}, "at most 50 steps"),
    ({"batch": 3}, "at most 2 images"),
    ({"model": "m9"}, "no model 'm9'"),
    ({"sampler": "euler"}, "does not offer the sampler 'euler'"),
    ({"resolution": "full"}, "cannot refine at full resolution"),
    ({"loras": (("ink", 1.0),)}, "offers no LoRAs"),
    ({"plan": dataclasses.replace(PLAN, kind="inpaint"), "mask": bytes(32)}, "does not offer inpaint"),
    ({"plan": regions.Plan("upscale", Rect(0, 0, 20, 15), Rect(0, 0, 20, 15), False),
      "upscale": messages.UpscaleOptions(factor=4),
      "result_plan": regions.Plan("upscale", Rect(0, 0, 80, 60), Rect(0, 0, 80, 60), False)}, "gives 80x60"),
])
def test_what_the_server_would_refuse_is_refused_before_sending(fields: dict, sentence: str) -> None:
    host = Host()
    host.connected()
    with pytest.raises(session.JobRefused, match=sentence):
        host.session.submit(request(**fields))
    assert host.clients[0].submitted == [] and host.session.jobs == {}


def test_a_job_waits_for_the_connection_and_is_checked_once_it_is_there() -> None:
    host = Host()
    ok, too_many = host.submit(sampler="lcm"), host.submit(steps=99)
    assert host.session.state is session.ConnectionState.CONNECTING and host.clients[0].submitted == []
    host.deliver(pclient.Connected(WELCOME))
    (submit, inputs), = host.clients[0].submitted
    assert submit.job == ok.id and submit.sampler == "lcm" and inputs["image"].encoding == "raw"  # loopback
    assert ok.state is jobs.JobState.QUEUED and too_many.id not in host.session.jobs
    assert "at most 50 steps" in host.finished()[0].text


def test_events_become_updates_and_the_result_is_decoded_and_checked() -> None:
    host = Host()
    host.connected()
    job = host.submit()
    host.deliver(messages.Started(job=job.id))
    assert host.session.running() is job
    preview = make_frame(job.id, "preview", bytes(12), 2, 2, "rgb8", "raw")
    (update,) = host.deliver(PreviewReceived(job.id, preview))
    assert isinstance(update.update, jobs.Preview)
    host.deliver(messages.Progress(job="someone-else", step=1, total=2))  # ignored
    (done,) = host.deliver(result(job.id))
    assert done.update.state == "done" and done.update.images[0].rect == PLAN.region
    assert done.update.images[0].seed == 3 and host.session.jobs == {}
    bad = host.submit()
    (failed,) = host.deliver(result(bad.id, fmt="bgra8"))
    assert failed.update.state == "failed" and "returned bgra8 pixels but rgba8" in failed.update.text


def test_a_server_error_reads_as_a_sentence_with_the_hosts_labels() -> None:
    host = Host()
    host.connected()
    job = host.submit()
    (update,) = host.deliver(messages.Error(code="out_of_range", message="steps must be at most 9", job=job.id))
    assert update.update.state == "failed" and "Steps must be at most 9" in update.update.text
    (note,) = host.deliver(messages.Error(code="bad_token", message="nope"))
    assert note.error and note.from_server and "rejected the token" in note.text


def test_a_kept_job_reconnects_after_the_backoff_and_resumes_with_its_key() -> None:
    host = Host()
    host.connected(RESUMING)
    job = host.submit()
    assert host.clients[0].submitted[0][0].keep_result and job.track.kept
    host.clients[0].resume_keys[job.id] = "key-1"
    host.deliver(messages.Error(code=errors.CONNECTION_LOST, message="closed", job=job.id))
    (note,) = host.deliver(pclient.Disconnected(ProtocolError(errors.CONNECTION_LOST, "closed")))
    assert "keeps 1 job" in note.text and host.session.state is session.ConnectionState.CONNECTING
    assert host.session.poll() == [] and len(host.clients) == 1  # the backoff has not passed
    host.now[0] += reconnect.MAX_DELAY
    host.session.poll()
    host.deliver(pclient.Disconnected(ProtocolError(errors.CONNECTION_FAILED, "refused")))  # the server is away
    host.now[0] += reconnect.MAX_DELAY
    host.session.poll()
    host.deliver(pclient.Connected(RESUMING))
    assert len(host.clients) == 3 and host.clients[2].resumed == [(job.id, "key-1")]
    assert job.state is jobs.JobState.QUEUED and job.track.resumed
    (lost,) = host.deliver(messages.Error(code=errors.UNKNOWN_JOB, message="gone", job=job.id))
    assert lost.update.text == reconnect.LOST_TEXT


def test_reconnects_give_up_after_the_budget_with_one_sentence() -> None:
    woken: list = []
    host = Host(wake=lambda delay, event: woken.append((delay, event)))
    host.connected(RESUMING)
    job = host.submit()
    host.deliver(messages.Error(code=errors.CONNECTION_LOST, message="closed", job=job.id))
    host.deliver(pclient.Disconnected(ProtocolError(errors.CONNECTION_LOST, "closed")))
    while woken:
        _, event = woken.pop()
        host.out += host.session.handle(event)  # the host's timer fired
        host.now[0] += 30
        host.deliver(pclient.Disconnected(ProtocolError(errors.CONNECTION_FAILED, "refused")))
    assert "Could not reconnect" in host.finished()[-1].text and host.session.jobs == {}
    assert host.session.state is session.ConnectionState.DISCONNECTED


def test_late_events_of_a_closed_connection_are_ignored() -> None:
    host = Host()
    host.connected()
    job = host.submit()
    old = host.clients[0]
    out = host.session.close()
    assert [o.update.text for o in out[:-1]] == ["Disconnected: the job was dropped."] and old.closed
    old.on_event(result(job.id))
    assert host.session.handle(host.posted.pop()) == []


def test_a_closed_connection_fails_the_jobs_in_flight_with_a_sentence() -> None:
    host = Host()
    host.connected()
    job = host.submit()
    note = host.deliver(pclient.Disconnected(None))[-1]
    assert host.finished()[-1].text == "The connection was closed." and note.text == "Disconnected"
    assert job.id not in host.session.jobs and host.session.state is session.ConnectionState.DISCONNECTED


def test_cancel_waits_for_the_server_unless_the_job_never_reached_it() -> None:
    host = Host()
    waiting = host.submit()
    (update,) = host.session.cancel(waiting.id)
    assert update.update.state == "cancelled" and host.session.jobs == {}
    host.deliver(pclient.Connected(WELCOME))
    assert host.clients[0].submitted == []
    sent = host.submit()
    assert host.session.cancel(sent.id)[0].text == "Cancelling …" and host.clients[0].cancelled == [sent.id]
    assert sent.track.cancel_requested and sent.id in host.session.jobs
    host.session.drop(sent.id)
    assert host.session.jobs == {} and host.clients[0].cancelled == [sent.id, sent.id]


def test_another_server_closes_the_connection_to_the_old_one() -> None:
    host = Host()
    host.connected()
    assert host.session.use_server(URL, None) == []
    host.session.use_server("ws://elsewhere:1/v1/ws", "t")
    assert host.clients[0].closed and host.session.state is session.ConnectionState.DISCONNECTED
    host.session.connect()
    assert host.clients[1].url == "ws://elsewhere:1/v1/ws"


def test_states_change_only_through_their_reducers() -> None:
    host = Host()
    with pytest.raises(AttributeError):
        host.session.state = session.ConnectionState.CONNECTED  # type: ignore[misc]
    with pytest.raises(AttributeError):
        jobs.Tracker("j").state = jobs.JobState.DONE  # type: ignore[misc]


def test_a_kinds_own_options_come_from_its_row() -> None:
    """Both hosts hand the painter's settings over by field name; the row's ``options`` picks the message."""
    values = {"factor": 4, "upscaler": "esrgan", "refine": False, "unrelated": 1}
    assert kind_options("upscale", values) == {"upscale": messages.UpscaleOptions(factor=4, upscaler="esrgan",
                                                                                  refine=False)}
    assert kind_options("img2img", values) == {} and kind_options("outpaint", values) == {}
    assert kind_options("upscale", {}) == {"upscale": messages.UpscaleOptions()}  # the message's defaults
