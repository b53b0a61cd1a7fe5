"""Where a model's weights live (``ModelSource``): what the registry finds and the loaders load.

Its own module so that the registry, the demo model and the loaders import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .interface import ModelSpec


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights live: engine-side only (the interface and clients see ``spec``, never a path)."""

    spec: ModelSpec
    path: Path | None  # a diffusers folder, a checkpoint file, or the demo model's folder
