"""Section 4: cold start of the real ``underpaint serve`` (demo model) until ``/health`` answers.

Also times, from the same process start, the first finished job (a 64x64, 2-step img2img with
``--max-model-pixels 4096``): that includes loading the demo pipelines, which the server does lazily.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .common import REPO, Profile, check, stop_process, summary, test_card, wait_for_health, wait_for_port_file
from .jobs import connect, make_submit, run_job

HEALTH_TARGET_S = 5.0


def one_cold_start(work: Path, index: int) -> dict[str, float]:
    port_file, log = work / f"cold-port-{index}-{time.monotonic_ns()}", work / f"cold-{index}.log"
    args = [sys.executable, "-m", "underpaint.server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--log-level", "warning", "--max-model-pixels", "4096"]
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 300
        port = wait_for_port_file(proc, port_file, deadline, log)
        t_port = time.perf_counter() - t0
        wait_for_health(port, deadline, proc)
        t_health = time.perf_counter() - t0
        client = connect(f"127.0.0.1:{port}", "underpaint-bench-cold")
        try:
            run = run_job(client, make_submit("demo", 2, 1.0), test_card(64).tobytes(), 64, timeout=600)
        finally:
            client.close(wait=True)
        if run.pixels.shape != (64, 64, 4):
            raise RuntimeError(f"cold-start job returned {run.pixels.shape}")
        return {"port_bound_s": t_port, "health_s": t_health, "first_result_s": time.perf_counter() - t0}
    finally:
        stop_process(proc)


def cold_start(profile: Profile, work: Path, log) -> dict:
    from underpaint.server.engine.demo_model import demo_dir, ensure_demo_model

    built = not (demo_dir() / "model_index.json").is_file()
    ensure_demo_model()  # build once outside the timing: a first-ever start also builds the demo (seconds)
    runs = []
    for i in range(profile.coldstart_reps):
        runs.append(one_cold_start(work, i))
        log(f"cold start {i + 1}/{profile.coldstart_reps}: /health after {runs[-1]['health_s']:.2f} s, "
            f"first result after {runs[-1]['first_result_s']:.2f} s")
    health = summary([r["health_s"] for r in runs])
    return {"command": "underpaint serve --port 0 (demo model)", "demo_built_first": built,
            "port_bound_s": summary([r["port_bound_s"] for r in runs]), "health_s": health,
            "first_result_s": summary([r["first_result_s"] for r in runs]),
            "target": {"max_health_s": HEALTH_TARGET_S}, "pass": check(health["median"], HEALTH_TARGET_S),
            "note": "medians; the first result includes the lazy demo-pipeline load"}

