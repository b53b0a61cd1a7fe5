"""`underpaint serve --engine ray` end to end: the real websocket in front, two CPU replicas on a local Ray.

Results equal the single-process server byte for byte; steps and previews stream back from the replica;
cancel reaches the replica within a step; two clients run on two replicas at once; jobs stay on the replica
that holds their model (loads counted); a replica killed mid-job fails that job alone; kept results resume.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from ray_helpers import SECOND_MODEL, SLOW_MODEL
from server_helpers import (
    TIMEOUT,
    connected,
    disc_mask,
    image_frame,
    make_image,
    mask_frame,
    quick_job,
    submit,
    wait_until,
)
from underpaint.protocol.connection import PreviewReceived, ResultReceived
from underpaint.protocol.messages import Cancelled, Error, PreviewOptions, Progress

PIXELS = make_image(64, 64, seed=5, opaque=True)
MASK = disc_mask(64, 64, 30, 34, 14)


def run(url: str, sub, frames) -> ResultReceived:
    with connected(url) as (client, _):
        return client.run_job(sub, frames(sub), timeout=TIMEOUT)


def img2img_inputs(sub):
    return {"image": image_frame(sub, PIXELS)}


def inpaint_inputs(sub):
    return {"image": image_frame(sub, PIXELS), "mask": mask_frame(sub, MASK)}


def send(client, prompt: str, **fields) -> str:
    sub = submit(prompt=prompt, job=f"job-{prompt}", **fields)
    return client.submit(sub, img2img_inputs(sub))


@pytest.mark.parametrize(("kind", "inputs"), [("img2img", img2img_inputs), ("inpaint", inpaint_inputs)])
def test_results_equal_the_single_process_server(ray_live, local_live, kind, inputs):
    sub = submit(kind, prompt="a lighthouse", strength=0.8, steps=6, seed=4242)
    remote, local = run(ray_live.url, sub, inputs), run(local_live.url, sub, inputs)
    assert remote.result.seeds == local.result.seeds == (4242,)
    assert [f.payload for f in remote.frames] == [f.payload for f in local.frames]
    assert remote.frames[0].payload != image_frame(sub, PIXELS).payload  # the job changed the pixels


def test_progress_and_previews_stream_back_from_the_replica(ray_live):
    sub = submit(steps=8, strength=1.0, preview=PreviewOptions(every_steps=1, max_size=16))
    with connected(ray_live.url) as (client, rec):
        client.submit(sub, img2img_inputs(sub))
        assert isinstance(rec.finished(sub.job), ResultReceived)
    steps = [p.step for p in rec.for_job(sub.job, Progress)]
    total = rec.for_job(sub.job, Progress)[-1].total
    assert steps == list(range(1, total + 1))
    previews = [e.frame for e in rec.for_job(sub.job, PreviewReceived)]
    assert [p.index for p in previews] == list(range(1, total))  # every step but the last
    assert all(max(p.width, p.height) <= 16 for p in previews)


def test_cancel_reaches_the_replica_within_a_step(ray_live, ledger):
    before = len([e for e in ledger() if e.kind == "cancel"])
    with connected(ray_live.url) as (client, rec):
        job = send(client, "long-cancelled", steps=150, strength=1.0)
        rec.wait(lambda e: isinstance(e, Progress) and e.job == job and e.step >= 2)
        client.cancel(job)
        assert isinstance(rec.finished(job), Cancelled)
    progress = rec.for_job(job, Progress)
    assert progress[-1].step < progress[-1].total and rec.for_job(job, ResultReceived) == []
    cancels = wait_until(lambda: [e for e in ledger() if e.kind == "cancel"][before:], what="the replica's report")
    assert cancels[0].data["steps_after_cancel"] <= 1  # the step in progress when the cancel arrived, no more
    quick_job(ray_live.url)


def test_two_clients_run_on_two_replicas_at_once(ray_live):
    engine = ray_live.engine
    with connected(ray_live.url) as (first, first_rec), connected(ray_live.url) as (second, second_rec):
        jobs = [send(first, "side-a", steps=120, strength=1.0), send(second, "side-b", steps=120, strength=1.0)]
        both = wait_until(lambda: [r for r in engine.running() if r.placed and r.step >= 1]
                          if len(engine.running()) == 2 else None, what="both jobs running")
        placed = wait_until(lambda: {r.placed.pid for r in engine.running() if r.placed} if all(
            r.placed for r in engine.running()) and len(engine.running()) == 2 else None, what="placements")
        assert len(both) >= 1 and len(placed) == 2  # two replica processes at once
        assert isinstance(first_rec.finished(jobs[0]), ResultReceived)
        assert isinstance(second_rec.finished(jobs[1]), ResultReceived)


def test_jobs_stay_on_the_replica_that_holds_their_model(ray_live, ledger):
    """Two painters on two models, two replicas that hold one model each: after each model's first load no
    job loads a model again (no ping-pong between replicas)."""
    def painter(model: str, rounds: int, barrier: threading.Barrier, out: list) -> None:
        with connected(ray_live.url) as (client, _):
            for i in range(rounds):
                barrier.wait(TIMEOUT)
                sub = submit(model=model, prompt=f"{model}-{i}", steps=4)
                out.append(client.run_job(sub, img2img_inputs(sub), timeout=TIMEOUT))

    def loads() -> list:
        return [e for e in ledger() if e.kind == "load"]

    barrier, results = threading.Barrier(2), []
    start = len(loads())
    threads = [threading.Thread(target=painter, args=(m, 1, barrier, results)) for m in ("demo", SECOND_MODEL)]
    [t.start() for t in threads]
    [t.join(TIMEOUT) for t in threads]
    warm = len(loads())
    assert warm - start <= 2
    threads = [threading.Thread(target=painter, args=(m, 4, barrier, results)) for m in ("demo", SECOND_MODEL)]
    [t.start() for t in threads]
    [t.join(2 * TIMEOUT) for t in threads]
    assert len(results) == 10 and all(isinstance(r, ResultReceived) for r in results)
    assert loads()[warm:] == []  # 8 more jobs, no load
    holders = {e.model: e.replica for e in loads()[start:]}
    assert len(set(holders.values())) == len(holders)  # each model loaded by a different replica


def test_kept_result_resumes_after_a_drop(ray_live):
    with connected(ray_live.url) as (client, rec):
        job = send(client, "kept", keep_result=True, steps=60, strength=1.0)
        rec.wait(lambda e: isinstance(e, Progress) and e.job == job)
        key = client.resume_keys[job]
    with connected(ray_live.url) as (client, rec):
        client.resume(job, key)
        result = rec.finished(job)
    assert isinstance(result, ResultReceived) and len(result.frames) == 1


def running_replicas() -> int:
    from ray import serve

    app = serve.status().applications.get("underpaint")
    states = app.deployments["UnderpaintEngine"].replica_states if app else {}
    return states.get("RUNNING", 0)


def test_a_second_front_attaches_to_the_deployed_application(ray_live, local_live):
    """What a KubeRay RayService does: the engine application is deployed once (here by the first front), and
    `underpaint serve --ray-attach` uses it without deploying or deleting anything."""
    from server_helpers import start_live, stop_live
    from underpaint.server.config import ServerConfig
    from underpaint.server.scale import cluster

    engine = cluster.start_engine(ServerConfig(engine="ray", ray_attach=True, ray_replicas=2))
    attached = start_live(engine, preload=False)  # type: ignore[arg-type]
    try:
        sub = submit(prompt="attached", strength=0.8, steps=4, seed=77)
        assert [f.payload for f in run(attached.url, sub, img2img_inputs).frames] == [
            f.payload for f in run(local_live.url, sub, img2img_inputs).frames]
    finally:
        stop_live(attached)
    sub = submit(prompt="first front still serves", steps=2, seed=78)
    assert isinstance(run(ray_live.url, sub, img2img_inputs), ResultReceived)


def test_attaching_where_nothing_is_deployed_is_refused_by_name(ray_live, monkeypatch):
    from underpaint.server.config import ConfigError, ServerConfig
    from underpaint.server.scale import cluster

    monkeypatch.setattr(cluster, "APP_NAME", "not-deployed")
    with pytest.raises(ConfigError, match="ray_attach.*'not-deployed' is not running.*scale.app:build"):
        cluster.start_engine(ServerConfig(engine="ray", ray_attach=True))


def test_the_rayservice_import_path_builds_the_engine_application(ray_live):
    from ray.serve import Application
    from underpaint.server.scale import app

    built = app.build({"ray_min_replicas": 1, "ray_max_replicas": 3, "ray_gpus_per_replica": 0, "threads": 1})
    assert isinstance(built, Application)
    deployment = built._bound_deployment  # what serveConfigV2 would deploy
    assert deployment.name == "UnderpaintEngine"
    assert deployment._deployment_config.autoscaling_config.max_replicas == 3


def test_a_replica_killed_before_the_first_step_is_retried_on_another(ray_live, ledger):
    """The job's replica dies while it prepares the model (no step ran): the job runs again elsewhere."""
    engine = ray_live.engine
    wait_until(lambda: running_replicas() == 2, what="two running replicas")
    with connected(ray_live.url) as (client, rec):
        job = send(client, "retried", model=SLOW_MODEL, steps=4)
        placed = wait_until(lambda: next((r.placed for r in engine.running() if r.prompt == "retried" and r.placed
                                          and r.step == 0), None), what="the job placed on a replica")
        os.kill(placed.pid, signal.SIGKILL)
        result = rec.finished(job)
    assert isinstance(result, ResultReceived), result
    assert rec.for_job(job, Error) == []


def test_a_replica_killed_mid_job_fails_that_job_alone(ray_live):
    """The killed replica's job ends with one clear error; the other job still gets its result (on the other
    replica, or on whichever replica is free after the kill); the server serves on. Runs last."""
    engine = ray_live.engine
    wait_until(lambda: running_replicas() == 2, what="two running replicas")
    with connected(ray_live.url) as (first, first_rec), connected(ray_live.url) as (second, second_rec):
        doomed = send(first, "doomed", steps=150, strength=1.0)
        survivor = send(second, "survivor", steps=60, strength=1.0)
        placed = wait_until(lambda: next((r.placed for r in engine.running() if r.prompt == "doomed" and r.placed
                                          and r.step >= 1), None), what="the doomed job running on a replica")
        others = [r.placed.pid for r in engine.running() if r.prompt == "survivor" and r.placed]
        assert placed.pid not in others  # never two jobs on one replica
        os.kill(placed.pid, signal.SIGKILL)
        error = first_rec.finished(doomed)
        assert isinstance(error, Error) and error.code == "internal"
        assert "replica" in error.message and "again" in error.message
        assert isinstance(second_rec.finished(survivor), ResultReceived)
    quick_job(ray_live.url)
