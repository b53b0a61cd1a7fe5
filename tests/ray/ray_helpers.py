"""Helpers shipped to the Ray replicas by value (cloudpickle): a registry that offers the demo model under
three ids (one of them slow to look up, to catch a job before its first step)."""

from __future__ import annotations

import time
from dataclasses import replace

from underpaint.server.engine.interface import ModelSpec
from underpaint.server.engine.registry import ModelRegistry, ModelSource

SECOND_MODEL = "demo-b"
SLOW_MODEL = "demo-slow"  # the demo again, whose lookup on a replica takes SLOW_S: a job sits before its step 1
SLOW_S = 3.0


class TwinRegistry:
    """The demo model under its own id and under ``SECOND_MODEL`` (same weights, a separate load)."""

    def __init__(self) -> None:
        self._inner = ModelRegistry([])
        demo = self._inner.source(self._inner.default_id())
        twin = ModelSource(replace(demo.spec, id=SECOND_MODEL, name="Demo twin"), demo.path)
        slow = ModelSource(replace(demo.spec, id=SLOW_MODEL, name="Demo, slow to find"), demo.path)
        self._sources = {demo.spec.id: demo, SECOND_MODEL: twin, SLOW_MODEL: slow}

    def specs(self) -> list[ModelSpec]:
        return [s.spec for s in self._sources.values()]

    def get(self, model_id: str) -> ModelSpec:
        return self.source(model_id).spec

    def source(self, model_id: str) -> ModelSource:
        if model_id == SLOW_MODEL:
            time.sleep(SLOW_S)
        if model_id in self._sources:
            return self._sources[model_id]
        return self._inner.source(model_id)  # raises unknown_model

    def default_id(self) -> str:
        return self._inner.default_id()


def twin_registry(_settings: object) -> TwinRegistry:
    return TwinRegistry()
