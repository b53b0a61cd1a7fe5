"""Shared fixtures: one demo model build and one CPU engine for the whole engine test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from underpaint.server.engine.demo_model import demo_source, ensure_demo_model
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError, GenerationRequest, ModelSpec
from underpaint.server.engine.registry import ModelSource
from underpaint.server.jobs.cancel import CancelFlag

# Tiny models on a shared 2-core machine: more intra-op threads only add spin-wait contention.
torch.set_num_threads(1)


class StubRegistry:
    """Stand-in for the real registry: a fixed list of models; a bare ModelSpec lives where ``path`` says."""

    def __init__(self, *models: ModelSource | ModelSpec, path: Path | None = None) -> None:
        sources = [m if isinstance(m, ModelSource) else ModelSource(m, path) for m in models]
        self._sources = {s.spec.id: s for s in sources}

    def specs(self) -> list[ModelSpec]:
        return [s.spec for s in self._sources.values()]

    def source(self, model_id: str) -> ModelSource:
        if model_id not in self._sources:
            raise EngineError("unknown_model", f"no model {model_id!r}", field="model")
        return self._sources[model_id]

    def get(self, model_id: str) -> ModelSpec:
        return self.source(model_id).spec

    def default_id(self) -> str:
        return next(iter(self._sources))


@pytest.fixture(name="StubRegistry", scope="session")
def stub_registry_class() -> type[StubRegistry]:
    return StubRegistry


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("underpaint-cache")
    ensure_demo_model(cache)
    return cache


@pytest.fixture(scope="session")
def demo_folder(demo_cache: Path) -> Path:
    return ensure_demo_model(demo_cache)


@pytest.fixture(scope="session")
def demo(demo_cache: Path) -> ModelSource:
    return demo_source(demo_cache)


@pytest.fixture(scope="session")
def spec(demo: ModelSource) -> ModelSpec:
    return demo.spec


@pytest.fixture(scope="session")
def engine(demo: ModelSource) -> DiffusersEngine:
    return DiffusersEngine(StubRegistry(demo), device="cpu")


@pytest.fixture(name="CancelFlag")
def cancel_flag_class() -> type[CancelFlag]:
    return CancelFlag


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def mask() -> np.ndarray:
    m = np.zeros((96, 128), np.uint8)
    m[16:64, 32:96] = 255
    return m


@pytest.fixture
def make_request(image: np.ndarray, mask: np.ndarray) -> Callable[..., GenerationRequest]:
    base = GenerationRequest(
        kind="img2img",
        model="demo",
        prompt="a red apple",
        negative_prompt="blurry",
        strength=0.75,
        steps=4,
        guidance=5.0,
        seed=42,
        batch=1,
        sampler="default",
        image=image,
        mask=mask,
    )

    def make(**changes: object) -> GenerationRequest:
        return replace(base, **changes)

    return make
