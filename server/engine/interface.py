"""The engine interface: what the job layer needs from an inference backend.

The engine sees numpy images at model resolution and never a websocket; a distributed backend can
implement the same interface later.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLERS = ("default", "euler", "euler_a", "dpmpp_2m", "ddim", "lcm")
KINDS = ("img2img", "inpaint")


def denoising_steps(steps: int, strength: float) -> int:
    """The steps-at-strength rule of diffusers' img2img/inpaint (``init_timestep``); >= 1 for a runnable job.

    The number of steps a scheduler then actually runs can differ (PNDM runs one more): engines report
    that number in their first StepInfo (``step == 0``).
    """
    return min(int(steps * strength), steps)


@dataclass(frozen=True)
class ModelSpec:
    """A model the registry found. Clients name it by ``id`` only, never by path."""

    id: str
    name: str
    family: str  # "sd1" | "sd2" | "sdxl" | "demo"
    inpaint: bool  # a 9-channel inpainting UNet
    resolution: int  # native side in pixels (512, 768, 1024, ...)
    source: str  # "diffusers" | "single_file" | "builtin"
    path: Path | None = None
    note: str = ""
    capabilities: tuple[str, ...] = KINDS


@dataclass(frozen=True)
class GenerationRequest:
    kind: str  # "img2img" | "inpaint"
    model: str  # registry id
    prompt: str
    negative_prompt: str
    strength: float
    steps: int
    guidance: float
    seed: int
    batch: int
    sampler: str  # one of SAMPLERS
    image: np.ndarray  # (H, W, 3) uint8 RGB; H and W multiples of 8
    mask: np.ndarray | None = None  # (H, W) uint8; >= 128 means repaint


@dataclass
class StepInfo:
    step: int  # denoising steps done: 0 before the first one (the plan), then 1..total
    total: int  # denoising steps this job will actually run (the scheduler's count, not ``steps``)
    render_preview: Callable[[int], np.ndarray] = field(repr=False)  # max side -> (h, w, 3) uint8


@dataclass
class Pipelines:
    """Loaded diffusers pipelines of one model, sharing components."""

    spec: ModelSpec
    img2img: Any
    inpaint: Any
    nbytes: int = 0


class JobCancelled(Exception):
    """Raised inside the denoising loop when the job's cancel event is set."""


class EngineError(Exception):
    """A job-level failure with a protocol error code: the worker keeps serving."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class Engine(ABC):
    @abstractmethod
    def list_models(self) -> list[ModelSpec]: ...

    @abstractmethod
    def default_model(self) -> str: ...

    @abstractmethod
    def device_name(self) -> str: ...

    def preload(self, model_id: str) -> None:
        """Load a model ahead of its first job (optional; a no-op by default)."""
        return None

    @abstractmethod
    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepInfo], None],
        cancel: threading.Event,
    ) -> list[np.ndarray]:
        """Run one job; return ``request.batch`` images of the input's size, (H, W, 3) uint8.

        ``on_step`` gets ``step=0`` once the number of steps is known, then every finished step 1..total.

        Raises JobCancelled (checked every step, no final VAE decode) or EngineError.
        Image ``i`` of a batch uses seed ``request.seed + i``.
        """
