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
from underpaint.server.engine.demo_model import demo_spec, ensure_demo_model
from underpaint.server.engine.diffusers_engine import DiffusersEngine
from underpaint.server.engine.interface import EngineError, GenerationRequest, ModelSpec

# Tiny models on a shared 2-core machine: more intra-op threads only add spin-wait contention.
torch.set_num_threads(1)


class StubRegistry:
    """Stand-in for the real registry: a fixed list of specs."""

    def __init__(self, *specs: ModelSpec) -> None:
        self._specs = {s.id: s for s in specs}

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def get(self, model_id: str) -> ModelSpec:
        if model_id not in self._specs:
            raise EngineError("unknown_model", f"no model {model_id!r}", field="model")
        return self._specs[model_id]

    def default_id(self) -> str:
        return next(iter(self._specs))


@pytest.fixture(name="StubRegistry")
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
def spec(demo_cache: Path) -> ModelSpec:
    return demo_spec(demo_cache)


@pytest.fixture(scope="session")
def engine(spec: ModelSpec) -> DiffusersEngine:
    return DiffusersEngine(StubRegistry(spec), device="cpu")


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
