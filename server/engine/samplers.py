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
}
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
