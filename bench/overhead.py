"""Sections 1 and 2: server overhead against a direct diffusers call, and the cost of step previews.

Both run against one bench server process (``bench.serve`` with ``demo-<side>`` models, so the server runs
the model at exactly the image size) and measure interleaved, A/B then B/A, so drift from other load on the
machine hits both sides alike.
"""

from __future__ import annotations

import statistics

import numpy as np

from .common import Profile, check, ratio, summary, test_card
from .direct import DirectWorker
from .jobs import EVERY_STEP, NO_PREVIEW, make_submit, run_job
from .serve import demo_side_id

OVERHEAD_TARGET = 1.03  # server / direct at 512x512
PREVIEW_TARGET = 1.03  # previews every step / none
FIRST_PREVIEW_SLACK_S = 0.05  # first preview within one step + 50 ms of `started`


def server_overhead(client, direct: DirectWorker, profile: Profile, log) -> dict:
    sides: dict[str, dict] = {}
    for side, reps in profile.overhead_reps.items():
        rgba = test_card(side)
        rgba_bytes = rgba.tobytes()
        model, steps = demo_side_id(side), profile.overhead_steps.get(side, profile.steps)

        def server_job(rgba_bytes: bytes = rgba_bytes, model: str = model, side: int = side, steps: int = steps):
            return run_job(client, make_submit(model, steps, profile.strength), rgba_bytes, side)

        if side <= profile.warmup_max_side:
            log(f"overhead {side}x{side}: warm-up")
            server_job()
            direct(side, steps, profile.strength)
        server_runs, direct_s, diffs = [], [], []
        for rep in range(reps):
            order = ("server", "direct") if rep % 2 == 0 else ("direct", "server")
            for which in order:
                if which == "server":
                    run = server_job()
                    server_runs.append(run)
                else:
                    seconds, out = direct(side, steps, profile.strength)
                    direct_s.append(seconds)
            diffs.append(int(np.abs(server_runs[-1].pixels[..., :3].astype(np.int16) - out).max()))
            log(f"overhead {side}x{side} rep {rep + 1}/{reps}: server {server_runs[-1].total_s:.3f} s, "
                f"direct {direct_s[-1]:.3f} s")
        server = summary([r.total_s for r in server_runs])
        baseline = summary(direct_s)
        phases = {name: summary([r.result.result.timings.get(name, 0.0) for r in server_runs])["median"]
                  for name in ("queue_s", "prepare_s", "inference_s", "encode_s", "total_s")}
        sides[str(side)] = {
            "steps": steps, "warm_up": side <= profile.warmup_max_side, "server_s": server, "direct_s": baseline,
            "ratio": ratio(server["median"], baseline["median"]),
            "paired_ratios": [round(r.total_s / d, 4) for r, d in zip(server_runs, direct_s, strict=True)],
            "server_phases_median_s": phases,
            "engine_ratio": ratio(phases["inference_s"], baseline["median"]),
            "max_pixel_diff": max(diffs),
        }
    at_512 = sides.get("512", {}).get("ratio")
    return {"steps": profile.steps, "strength": profile.strength, "model": "demo (random weights), CPU",
            "sides": sides, "target": {"side": 512, "max_ratio": OVERHEAD_TARGET},
            "pass": check(at_512, OVERHEAD_TARGET)}


def preview_cost(client, profile: Profile, log) -> dict:
    side = profile.preview_side
    rgba_bytes = test_card(side).tobytes()
    model = demo_side_id(side)

    def job(preview):
        return run_job(client, make_submit(model, profile.steps, profile.strength, preview), rgba_bytes, side)

    if side <= profile.warmup_max_side:
        log(f"previews {side}x{side}: warm-up")
        job(EVERY_STEP)
    with_p, without = [], []
    for rep in range(profile.preview_reps):
        order = (True, False) if rep % 2 == 0 else (False, True)
        for previews in order:
            (with_p if previews else without).append(job(EVERY_STEP if previews else NO_PREVIEW))
        log(f"previews rep {rep + 1}/{profile.preview_reps}: with {with_p[-1].total_s:.3f} s, "
            f"without {without[-1].total_s:.3f} s")
    on, off = summary([r.total_s for r in with_p]), summary([r.total_s for r in without])
    steps = [s for r in without for s in r.step_intervals]
    step_s = statistics.median(steps) if steps else None
    first = [r.first_preview_s - r.started_s for r in with_p
             if r.first_preview_s is not None and r.started_s is not None]
    first_s = statistics.median(first) if first else None
    # Progress of step 1 -> its preview: rendering, JPEG encoding and sending one preview.
    render = [r.first_preview_s - r.first_preview_step_s for r in with_p
              if r.first_preview_s is not None and r.first_preview_step_s is not None]
    # `started` -> step 1 done, with previews off: the engine's per-job setup plus one step.
    to_step1 = [r.progress_s[0] - r.started_s for r in without if r.progress_s and r.started_s is not None]
    budget = step_s + FIRST_PREVIEW_SLACK_S if step_s is not None else None
    return {
        "side": side, "steps": profile.steps, "preview": "jpeg, max 256 px, every step",
        "with_previews_s": on, "without_previews_s": off, "ratio": ratio(on["median"], off["median"]),
        "previews_per_job": [r.previews for r in with_p],
        "step_s_median": step_s, "first_preview_after_started_s": first_s,
        "started_to_step1_s_median": statistics.median(to_step1) if to_step1 else None,
        "step1_to_preview1_s_median": statistics.median(render) if render else None,
        "first_preview_budget_s": budget,
        "target": {"max_ratio": PREVIEW_TARGET, "first_preview": "<= one step + 50 ms"},
        "pass": check(ratio(on["median"], off["median"]), PREVIEW_TARGET),
        "first_preview_pass": check(first_s, budget) if budget is not None else None,
    }
