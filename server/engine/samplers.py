"""Sampler names to fresh diffusers schedulers (schedulers keep per-run state: never share one)."""

from __future__ import annotations

from typing import Any

from underpaint.protocol import errors

from .interface import SAMPLERS, EngineError


def make_scheduler(name: str, base: Any) -> Any:
    """A new scheduler for one job, built from ``base``'s config (the pipeline's own scheduler)."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
    )

    config = base.config
    if name == "default":
        return type(base).from_config(config)
    if name == "euler":
        return EulerDiscreteScheduler.from_config(config)
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(config)
    if name == "dpmpp_2m":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "ddim":
        return DDIMScheduler.from_config(config, clip_sample=False)  # SD never clips x0
    if name == "lcm":
        return LCMScheduler.from_config(config)
    raise EngineError(errors.BAD_VALUE, f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}",
                      field="sampler")
