"""The engine seam: what the job layer asks of an inference backend, in plain values.

Everything that crosses it could cross a process boundary (a Ray Serve engine builds on it): requests,
step reports and previews are dataclasses of numbers, strings and numpy arrays; models are named by id
(the engine's own registry knows where they live); cancellation is a token the engine polls. No
websockets and no threads here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from underpaint.protocol.errors import ProtocolError

# What ``GenerationRequest.kind`` may be: the pipelines an engine runs. A job kind of the vocabulary is turned
# into one of these by its handler (server.jobs.handlers), e.g. an outpaint job would run the inpaint pipeline.
PIPELINES = ("img2img", "inpaint")

__all__ = ["PIPELINES", "CancelToken", "Engine", "EngineError", "GenerationRequest", "JobCancelled", "LoraSpec",
           "LoraUse", "ModelSpec", "PreviewPolicy", "StepInfo", "denoising_steps"]


def denoising_steps(steps: int, strength: float) -> int:
    """The steps-at-strength rule of diffusers' img2img/inpaint (``init_timestep``); >= 1 for a runnable job.

    The number of steps a scheduler then actually runs can differ (PNDM runs one more): engines report
    that number in their first StepInfo (``step == 0``).
    """
    return min(int(steps * strength), steps)


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model the engine offers. Clients and the job layer name it by ``id`` only, never by path. Built with
    keywords only (seven fields, several of the same type)."""

    id: str
    name: str
    family: str  # a row of the family table (engine.families.FAMILIES): "sd1", "sdxl", "flux1", ...
    inpaint: bool  # a dedicated inpainting denoiser (SD's 9-channel UNet, Flux.1 Fill)
    resolution: int  # native side in pixels (512, 768, 1024, ...)
    source: str  # "diffusers" | "single_file" | "builtin"
    note: str = ""
    capabilities: tuple[str, ...] = PIPELINES  # the pipelines it runs; the job kinds follow (jobs.handlers)


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA the engine offers; applies only to models of the same ``family``. Named by ``id`` only."""

    id: str
    name: str
    family: str  # a row of the family table (engine.families.FAMILIES)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA of a job: a LoraSpec id and its weight (0 = as if absent)."""

    id: str
    weight: float = 1.0


@dataclass(frozen=True)
class PreviewPolicy:
    """Which steps get a preview image: every ``every_steps`` (0: none), at most one per ``min_interval_s``,
    never the last step (the result follows it); at most ``max_side`` pixels on the long side."""

    every_steps: int = 0
    max_side: int = 256
    min_interval_s: float = 0.0

    def wants(self, step: int, total: int, since_last_s: float | None) -> bool:
        """``since_last_s``: seconds since the last preview, None before the first."""
        if self.every_steps < 1 or step < 1 or step >= total or step % self.every_steps:
            return False
        return since_last_s is None or since_last_s >= self.min_interval_s


@dataclass(frozen=True)
class GenerationRequest:
    kind: str  # one of PIPELINES
    model: str  # a ModelSpec id
    prompt: str
    negative_prompt: str
    strength: float
    steps: int
    guidance: float
    seed: int
    batch: int
    sampler: str  # a vocabulary.SAMPLERS name the engine maps (Engine.samplers)
    image: np.ndarray  # (H, W, 3) uint8 RGB; H and W multiples of 8
    mask: np.ndarray | None = None  # (H, W) uint8; >= 128 means repaint
    preview: PreviewPolicy = PreviewPolicy()
    tiled: bool = False  # run at the image's own size in model-sized tiles (engine.tiled), not as one image
    loras: tuple[LoraUse, ...] = ()  # applied for this job only, in order
    # A hint (live frames): encode/decode with the server's tiny autoencoder when it has one for the model's
    # family (faster, slightly softer); the full VAE otherwise. Never changes sizes or step counts.
    tiny_vae: bool = False


@dataclass(frozen=True)
class StepInfo:
    step: int  # denoising steps done: 0 before the first one (the plan), then 1..total
    total: int  # denoising steps this job will actually run (the scheduler's count, not ``steps``)
    preview: np.ndarray | None = None  # (h, w, 3) uint8 of the first image, where the PreviewPolicy wants one


@runtime_checkable
class CancelToken(Protocol):
    """Set by the job layer (a client's cancel, a dropped socket); polled by the engine between steps."""

    @property
    def cancelled(self) -> bool: ...

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelled if the job was cancelled."""


class JobCancelled(Exception):
    """Raised by ``CancelToken.raise_if_cancelled``: the job stops, without its final VAE decode."""


class EngineError(ProtocolError):
    """A job-level failure with a code from ``underpaint.protocol.errors``: the worker keeps serving."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(code, message, field)


class Engine(ABC):
    @abstractmethod
    def list_models(self) -> list[ModelSpec]: ...

    @abstractmethod
    def default_model(self) -> str: ...

    @abstractmethod
    def device_name(self) -> str: ...

    def list_loras(self) -> list[LoraSpec]:
        """The LoRAs jobs may name in ``GenerationRequest.loras`` (none by default)."""
        return []

    def samplers(self) -> tuple[str, ...]:
        """The ``vocabulary.SAMPLERS`` names this engine maps to a scheduler (advertised in welcome.features)."""
        return ("default",)

    def parallel_jobs(self) -> int:
        """How many jobs may run at once (the job layer starts one worker each): 1 for a local device, the
        replica count for an engine that fans out (Ray Serve)."""
        return 1

    def preload(self, model_id: str) -> None:
        """Load a model ahead of its first job (optional; a no-op by default)."""
        return None

    @abstractmethod
    def generate(
        self, request: GenerationRequest, on_step: Callable[[StepInfo], None], cancel: CancelToken
    ) -> list[np.ndarray]:
        """Run one job; return ``request.batch`` images of the input's size, (H, W, 3) uint8.

        ``on_step`` gets ``step=0`` once the number of steps is known, then every finished step 1..total
        (with a preview where ``request.preview`` wants one). Image ``i`` of a batch uses seed ``request.seed + i``.
        Raises JobCancelled (checked every step) or EngineError.
        """
