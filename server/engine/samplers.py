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
# Call arguments a sampler needs from the pipeline (TCD's gamma travels as ``eta``; DDIM keeps eta 0).
CALL_KWARGS: dict[str, dict[str, Any]] = {"tcd": {"eta": 0.3}}
# Samplers that pick their timesteps from a fixed number of training-schedule steps: more steps are refused.
MAX_STEPS: dict[str, int] = {"lcm": 50, "tcd": 50}
assert set(SCHEDULERS) <= set(SAMPLERS), "every mapped sampler is a row of vocabulary.SAMPLERS"


def make_scheduler(name: str, base: Any) -> Any:
    """A new scheduler for one job, built from ``base``'s config (the pipeline's own scheduler)."""
    import diffusers

    if name not in SCHEDULERS:
        raise EngineError(errors.UNSUPPORTED, f"sampler {name!r} is not available on this server (it offers: "
                          f"{', '.join(SCHEDULERS)})", field="sampler")
    mapping = SCHEDULERS[name]
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
