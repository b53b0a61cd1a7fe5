"""RayEngine: the Engine the job layer sees when jobs run on Ray Serve replicas.

``generate`` sends the request to the deployment as a streaming call routed by model (multiplexing), turns
the streamed StepInfo items into ``on_step`` calls and returns the images of ``Finished``. A cancel is noticed
within ~20 ms and cancels the streaming response; the replica then stops after the step it is in. A replica
that dies mid-job: retried once on another replica when no denoising step had run, else one clear error.
The job layer runs one worker per replica (``parallel_jobs``), so every replica gets at most one job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from underpaint.protocol import errors

from ..engine.interface import CancelToken, Engine, EngineError, GenerationRequest, JobCancelled, ModelSpec, StepInfo
from .stream import Failed, Finished, Placed

log = logging.getLogger("underpaint.ray")
CANCEL_POLL_S = 0.02
RETRIES = 1  # another replica takes a job whose replica died before its first step


@dataclass
class Running:
    """A job in flight on a replica (``RayEngine.running``): for logs and for tests that stop a replica."""

    prompt: str
    model: str
    placed: Placed | None = None
    step: int = 0


class RayEngine(Engine):
    def __init__(self, handle: Any, replicas: int) -> None:
        """``handle``: a DeploymentHandle of the UnderpaintEngine deployment; ``replicas``: the most replicas
        it may have (the job layer's worker count)."""
        self._handle = handle
        self._replicas = max(1, replicas)
        info = handle.describe.remote().result(timeout_s=600)
        self._models: list[ModelSpec] = info["models"]
        self._default: str = info["default"]
        self._device = f"ray serve: up to {self._replicas} replica(s) of {info['device']}"
        self._samplers: tuple[str, ...] = tuple(info["samplers"])
        self._running: dict[int, Running] = {}
        self._lock = threading.Lock()

    def list_models(self) -> list[ModelSpec]:
        return list(self._models)

    def default_model(self) -> str:
        return self._default

    def device_name(self) -> str:
        return self._device

    def samplers(self) -> tuple[str, ...]:
        return self._samplers

    def parallel_jobs(self) -> int:
        return self._replicas

    def running(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def generate(self, request: GenerationRequest, on_step: Callable[[StepInfo], None],
                 cancel: CancelToken) -> list[np.ndarray]:
        key = threading.get_ident()
        state = Running(request.prompt, request.model)
        with self._lock:
            self._running[key] = state
        try:
            for attempt in range(RETRIES + 1):
                cancel.raise_if_cancelled()
                try:
                    return self._attempt(request, on_step, cancel, state)
                except _ReplicaLost as lost:
                    if state.step >= 1 or attempt == RETRIES:
                        raise EngineError(errors.INTERNAL, lost.message(state)) from lost.cause
                    log.warning("replica %s died before job step 1; retrying on another replica", lost.where)
            raise AssertionError("unreachable")
        finally:
            with self._lock:
                self._running.pop(key, None)

    def _attempt(self, request: GenerationRequest, on_step: Callable[[StepInfo], None], cancel: CancelToken,
                 state: Running) -> list[np.ndarray]:
        from ray.exceptions import RayError

        handle = self._handle.options(stream=True, multiplexed_model_id=request.model)
        response = handle.generate.remote(request)
        finished = threading.Event()
        watcher = threading.Thread(target=_cancel_when_set, args=(cancel, response, finished), daemon=True,
                                   name="underpaint-ray-cancel")
        watcher.start()
        state.placed, state.step = None, 0
        try:
            for item in response:
                if isinstance(item, Placed):
                    state.placed = item
                elif isinstance(item, list):  # StepInfo items, in order
                    for info in item:
                        state.step = info.step
                        on_step(info)
                elif isinstance(item, Finished):
                    return item.images
                elif isinstance(item, Failed):
                    if item.cancelled:
                        raise JobCancelled()
                    raise EngineError(item.code, item.message, item.field)
        except (JobCancelled, EngineError):
            raise
        except Exception as exc:
            if cancel.cancelled:
                raise JobCancelled() from None
            if isinstance(exc, RayError) or type(exc).__module__.startswith("ray."):
                raise _ReplicaLost(exc, state.placed) from exc
            raise
        finally:
            finished.set()
        if cancel.cancelled:
            raise JobCancelled()
        raise _ReplicaLost(RuntimeError("the stream ended without a result"), state.placed)


class _ReplicaLost(Exception):
    def __init__(self, cause: BaseException, placed: Placed | None) -> None:
        super().__init__(str(cause))
        self.cause, self.placed = cause, placed

    @property
    def where(self) -> str:
        return f"{self.placed.replica} (pid {self.placed.pid})" if self.placed else "(not yet placed)"

    def message(self, state: Running) -> str:
        return (f"the Ray replica running this job stopped after step {state.step} ({type(self.cause).__name__}); "
                f"the other jobs go on; submit this one again")


def _cancel_when_set(cancel: CancelToken, response: Any, finished: threading.Event) -> None:
    while not finished.wait(CANCEL_POLL_S):
        if cancel.cancelled:
            response.cancel()
            return
