"""Sampler names to fresh diffusers schedulers (schedulers keep per-run state: never share one)."""

from __future__ import annotations

from typing import Any

from underpaint.protocol import errors
from underpaint.protocol.vocabulary import SAMPLERS

from .interface import EngineError

# vocabulary sampler name -> (diffusers scheduler class name, extra config); None = the pipeline's own
SCHEDULERS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "default": None,
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "ddim": ("DDIMScheduler", {"clip_sample": False}),  # SD never clips x0
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
    "euler_a_sgm": ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"}),
}
# Flow-matching families (Flux, SD3, ...) step a velocity: only flow-matching schedulers fit them.
FLOW_SCHEDULERS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "default": None,
    "euler": ("FlowMatchEulerDiscreteScheduler", {}),
}
# families.base.SCHEDULES -> the sampler table of that schedule kind
BY_SCHEDULE: dict[str, dict[str, tuple[str, dict[str, Any]] | None]] = {"eps": SCHEDULERS, "flow": FLOW_SCHEDULERS}
# Call arguments a sampler needs from the pipeline (TCD's gamma travels as ``eta``; DDIM keeps eta 0).
CALL_KWARGS: dict[str, dict[str, Any]] = {"tcd": {"eta": 0.3}}
# Samplers that pick their timesteps from a fixed number of training-schedule steps: more steps are refused.
MAX_STEPS: dict[str, int] = {"lcm": 50, "tcd": 50}
assert all(set(t) <= set(SAMPLERS) for t in BY_SCHEDULE.values()), "every mapped sampler is a vocabulary row"


def make_scheduler(name: str, base: Any, schedule: str = "eps", label: str = "") -> Any:
    """A new scheduler for one job, built from ``base``'s config (the pipeline's own scheduler).

    ``schedule`` is the model family's (families.base.SCHEDULES), ``label`` its name for the refusal."""
    import diffusers

    table = BY_SCHEDULE[schedule]
    if name not in table:
        if name in SCHEDULERS and label:
            raise EngineError(errors.UNSUPPORTED, f"sampler {name!r} does not fit {label} models (flow matching); "
                              f"they take: {', '.join(table)}", field="sampler")
        raise EngineError(errors.UNSUPPORTED, f"sampler {name!r} is not available on this server (it offers: "
                          f"{', '.join(SCHEDULERS)})", field="sampler")
    mapping = table[name]
    if mapping is None:
        return type(base).from_config(base.config)
    cls_name, extra = mapping
    return getattr(diffusers, cls_name).from_config(base.config, **extra)


def check_steps(name: str, steps: int) -> None:
    """Refuse more steps than a fixed-schedule sampler (LCM, TCD) can pick from its training schedule."""
    limit = MAX_STEPS.get(name)
    if limit is not None and steps > limit:
        raise EngineError(errors.OUT_OF_RANGE, f"the {name} sampler runs at most {limit} steps (got {steps}); it is "
                          "made for 1-8", field="steps")


def call_kwargs(name: str) -> dict[str, Any]:
    """Extra pipeline call arguments of a sampler (a copy)."""
    return dict(CALL_KWARGS.get(name, {}))


def count_steps(schedule: str, scheduler: Any, steps: int, strength: float) -> int:
    """How many denoising steps an img2img/inpaint pipeline runs, computed as its ``get_timesteps`` does.

    Noise-prediction pipelines round the start step down (``int(steps * strength)`` steps, times the
    scheduler's order, PNDM runs one more); flow-matching pipelines round the skipped steps down instead.
    Works on a copy: the job's own scheduler is set up by the pipeline itself.
    """
    if schedule == "flow":
        skipped = int(max(steps - min(steps * strength, steps), 0))
        return steps - skipped  # flow-matching schedulers are first order and run ``steps`` timesteps
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(steps)
    start = steps - min(int(steps * strength), steps)
    return len(probe.timesteps[start * probe.order :])
