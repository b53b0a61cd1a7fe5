"""The job event reducer and result decoding of the plugin core."""

from __future__ import annotations

import pytest
from underpaint.protocol import messages
from underpaint.protocol.connection import PreviewReceived, ResultReceived
from underpaint.protocol.frames import Frame
from underpaint.protocol.geometry import Rect
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.plugin_core import jobs, params, regions

PLAN = regions.plan_region("img2img", Rect(0, 0, 8, 4), None, 0)


def result_frame(job: str, rect: Rect = PLAN.region, fmt: str = "rgba8") -> Frame:
    return make_frame(job, "result", bytes(rect.area * 4), rect.width, rect.height, fmt, "zlib", rect.x, rect.y)


def test_a_job_goes_queued_running_done_with_step_of_total() -> None:
    t = jobs.Tracker("j1")
    assert t.sent().text and t.state == "queued"
    assert t.update(messages.Queued(job="j1", position=2)).text == "Queued (position 3)"
    started = t.update(messages.Started(job="j1", x=1, y=2, width=4, height=2))
    assert started.text == "Generating …" and started.total == 0 and t.region == Rect(1, 2, 4, 2)
    progress = t.update(messages.Progress(job="j1", step=3, total=10))
    assert (progress.text, progress.step, progress.total) == ("Step 3/10", 3, 10)
    preview = Frame(job="j1", role="preview", width=2, height=2, pixel_format="rgb8", payload=b"x", encoding="jpeg")
    assert t.update(PreviewReceived("j1", preview)) == jobs.Preview(preview, Rect(1, 2, 4, 2))
    done = t.update(ResultReceived("j1", messages.Result(job="j1", images=0), ()))
    assert isinstance(done, jobs.Finished) and done.state == "done" and t.finished
    assert t.update(messages.Progress(job="j1", step=4, total=10)) is None  # nothing after the terminal event


def test_other_jobs_events_are_not_this_trackers() -> None:
    assert jobs.Tracker("j1").update(messages.Progress(job="j2", step=1, total=2)) is None


def test_errors_become_sentences_and_cancelling_hides_previews() -> None:
    t = jobs.Tracker("j1", labels={"steps": "Steps"})
    t.cancel_requested = True
    assert t.update(messages.Progress(job="j1", step=1, total=2)).text == "Cancelling … Step 1/2"
    assert t.update(PreviewReceived("j1", result_frame("j1"))) is None
    failed = t.update(messages.Error(code="out_of_range", message="steps too high", job="j1"))
    assert failed.state == "failed" and "(Steps too high)" in failed.text
    assert jobs.Tracker("j2").update(messages.Cancelled(job="j2")).state == "cancelled"


def test_results_are_decoded_checked_and_given_seeds() -> None:
    result = messages.Result(job="j", images=2, seeds=(7,))
    images = jobs.decode_results(PLAN, "rgba8", result, (result_frame("j"), result_frame("j")), requested_seed=40)
    assert [i.seed for i in images] == [7, 41] and images[0].pixels == bytes(128) and images[0].rect == PLAN.region
    assert jobs.decode_results(PLAN, "rgba8", result, (result_frame("j"),) * 2)[1].seed is None


@pytest.mark.parametrize(("frames", "fragment"), [
    ((), "without a result image"),
    ((result_frame("j", fmt="rgba8"),), "returned rgba8 pixels but bgra8"),
    ((make_frame("j", "result", bytes(16 * 4), 4, 4, "bgra8", "zlib", 6, 0),), "outside the region"),
])
def test_bad_results_say_what_is_wrong(frames, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        jobs.decode_results(PLAN, "bgra8", messages.Result(job="j", images=len(frames)), frames)


def test_a_kept_job_is_detached_by_a_dropped_connection_and_resumed() -> None:
    t = jobs.Tracker("j1", kept=True)
    lost = t.update(messages.Error(code="connection_lost", message="socket closed", job="j1"))
    assert isinstance(lost, jobs.Status) and t.detached and not t.finished
    assert t.resuming().text and t.state == "queued"
    gone = t.update(messages.Error(code="unknown_job", message="not kept", job="j1"))
    assert gone.state == "failed" and "no longer has this job" in gone.text
    plain = jobs.Tracker("j2")  # not kept: a dropped connection ends it
    assert plain.update(messages.Error(code="connection_lost", message="x", job="j2")).state == "failed"
    cancelling = jobs.Tracker("j3", kept=True, cancel_requested=True)
    assert cancelling.update(messages.Error(code="connection_lost", message="x", job="j3")).state == "failed"


def test_resume_is_offered_only_when_both_advertise_it() -> None:
    assert params.offer(("resume", "resume_key"), params.client_features(resume=True)).resume
    assert not params.offer(("resume",), params.client_features(resume=True)).resume  # keys are required
    assert not params.offer(("resume",), params.client_features()).resume
    assert not params.offer((), params.client_features(resume=True)).resume
