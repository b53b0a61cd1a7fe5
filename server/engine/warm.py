"""What a job reuses from the jobs before it on the same loaded model: job pipelines, scheduler templates,
step counts, prompt embeddings and the LoRA adapters. Lives in ``Pipelines.extras``, so it goes when the
model is evicted. Jobs on one model run one at a time (``lock``): the LoRA state is the model's own."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from .embeddings import EmbeddingCache
from .lora import LoraSlots
from .samplers import make_scheduler


@dataclass
class Warm:
    lock: threading.RLock = field(default_factory=threading.RLock)
    embeddings: EmbeddingCache = field(default_factory=EmbeddingCache)
    loras: LoraSlots = field(default_factory=LoraSlots)
    _schedulers: dict[tuple[int, str], Any] = field(default_factory=dict)
    _pipes: dict[tuple[int, int], Any] = field(default_factory=dict)
    _totals: dict[tuple[int, str, int, float], int] = field(default_factory=dict)

    def scheduler(self, base: Any, sampler: str, schedule: str = "eps", label: str = "") -> Any:
        """A fresh scheduler for one job (a copy of a template made once: ``from_config`` is slow)."""
        key = (id(base), sampler)
        if key not in self._schedulers:
            self._schedulers[key] = make_scheduler(sampler, base.scheduler, schedule, label)
        return copy.deepcopy(self._schedulers[key])

    def total(self, base: Any, sampler: str, steps: int, strength: float, count: Any) -> int:
        """``count(scheduler, steps, strength)`` (the steps a job runs), remembered per sampler and settings."""
        key = (id(base), sampler, steps, strength)
        if key not in self._totals:
            self._totals[key] = count(self._schedulers[(id(base), sampler)], steps, strength)
        return self._totals[key]

    def pipeline(self, base: Any, scheduler: Any, vae: Any | None, build: Any) -> Any:
        """``base``'s job pipeline (built once per VAE by ``build(base, scheduler, vae)``) with ``scheduler``."""
        key = (id(base), id(vae))
        pipe = self._pipes.get(key)
        if pipe is None:
            pipe = self._pipes[key] = build(base, scheduler, vae)
        else:
            pipe.scheduler = scheduler
        return pipe


def warm_state(pipes: Any) -> Warm:
    """The model's Warm, made on first use."""
    extras = pipes.extras
    if "warm" not in extras:
        extras.setdefault("warm", Warm())
    return extras["warm"]
