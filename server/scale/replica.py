"""The engine as a Ray Serve deployment: each replica holds a DiffusersEngine on its own device (a GPU, a
fraction of one, or CPU threads) and streams a job's steps back.

Routing by model uses Serve's model multiplexing: the front sends each job with ``multiplexed_model_id`` set to
its model, Serve prefers replicas that already hold it, and ``load_model`` below is the multiplexed loader (an
LRU of ``models_per_replica`` models; every real load is reported to the ledger, so tests can count them).

Cancel: the front cancels the streaming response; the replica's generator sees ``CancelledError`` and sets the
engine's cancel token, which the diffusion loop checks after every step.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from ..engine.interface import EngineError, GenerationRequest, JobCancelled, StepInfo
from .stream import Failed, Finished, Placed, ReplicaEvent

LEDGER_NAME = "underpaint-ledger"


@dataclass(frozen=True)
class ReplicaSettings:
    """What every replica is built with (the server's settings that concern the engine)."""

    models_dirs: tuple[Path, ...] = ()
    allow_pickle: bool = False
    device: str | None = None
    threads: int | None = None  # torch threads per replica (CPU replicas: 1 per replica on a small machine)
    cache_gb: float = 12.0
    preload: str | None = None  # a model id to load when the replica starts
    registry: Callable[[ReplicaSettings], Any] | None = None  # builds the model registry (default: ModelRegistry)
    namespace: str = "underpaint"  # the Ray namespace of the ledger actor


class _Token:
    """The engine's cancel token on the replica, set when the front cancels the stream."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.step = 0  # the last step the engine reported
        self.step_at_cancel: int | None = None

    def set(self) -> None:
        if not self._event.is_set():
            self.step_at_cancel = self.step
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()


class _StepBatcher:
    """Steps go back in lists: at once with a preview, else at most every ``FLUSH_S`` (fast steps would otherwise
    pay one streamed object each), and the rest when the job ends. Every step still arrives, in order."""

    FLUSH_S = 0.1

    def __init__(self, send: Callable[[list[StepInfo]], None]) -> None:
        self._send = send
        self._pending: list[StepInfo] = []
        self._last = 0.0

    def add(self, info: StepInfo) -> None:
        self._pending.append(info)
        now = time.monotonic()
        if info.preview is not None or now - self._last >= self.FLUSH_S:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._pending:
            self._send(self._pending)
            self._pending, self._last = [], time.monotonic() if now is None else now


class Ledger:
    """A small named Ray actor: replicas report model loads and cancels here (operators and tests read it)."""

    def __init__(self) -> None:
        self._events: list[ReplicaEvent] = []

    def record(self, event: ReplicaEvent) -> None:
        self._events.append(event)
        del self._events[:-10000]

    def events(self) -> list[ReplicaEvent]:
        return list(self._events)


def ledger_handle(namespace: str) -> Any:
    """The ledger actor, created on first use (no CPU reserved: it only keeps a list)."""
    import ray

    actor = ray.remote(num_cpus=0)(Ledger)
    return actor.options(name=LEDGER_NAME, namespace=namespace, get_if_exists=True, lifetime="detached").remote()


class EngineReplica:
    """The deployment's class (wrapped by ``deployment()`` with the operator's replica options)."""

    def __init__(self, settings: ReplicaSettings) -> None:
        from ray import serve

        from ..engine.diffusers_engine import DiffusersEngine
        from ..engine.offline import stay_offline
        from ..engine.registry import ModelRegistry

        stay_offline()
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        if settings.registry is not None:
            registry = settings.registry(settings)
        else:
            registry = ModelRegistry(list(settings.models_dirs), allow_pickle=settings.allow_pickle)
        self.engine = DiffusersEngine(registry, device=settings.device, cache_bytes=int(settings.cache_gb * 2**30))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="underpaint-replica")  # one job at a time
        import ray

        self.placed = Placed(replica=str(serve.get_replica_context().replica_tag), pid=os.getpid(),
                             node=ray.get_runtime_context().get_node_id())
        self._ledger = ledger_handle(settings.namespace)
        if settings.preload:
            self._pool.submit(self._load, settings.preload)

    # ---------------------------------------------------------------- plain calls
    def describe(self) -> dict[str, Any]:
        """What the front advertises: models, default, device, samplers (one replica answers for all)."""
        return {"models": self.engine.list_models(), "default": self.engine.default_model(),
                "device": self.engine.device_name(), "samplers": self.engine.samplers()}

    # ---------------------------------------------------------------- models
    def _load(self, model_id: str) -> None:
        resident = model_id in self.engine.cache.keys()
        self.engine.preload(model_id)
        if not resident:
            self._ledger.record.remote(ReplicaEvent("load", self.placed.replica, model_id))

    async def load_model(self, model_id: str) -> str:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load, model_id)
        return model_id

    # ---------------------------------------------------------------- jobs
    async def generate(self, request: GenerationRequest) -> AsyncIterator[object]:
        """Stream ``Placed``, lists of the engine's StepInfo items (``_StepBatcher``), then ``Finished`` or
        ``Failed``."""
        from ray import serve

        yield self.placed
        loop = asyncio.get_running_loop()
        token = _Token()
        queue: asyncio.Queue[object] = asyncio.Queue()
        done = object()

        batch = _StepBatcher(lambda items: loop.call_soon_threadsafe(queue.put_nowait, items))

        def on_step(info: StepInfo) -> None:
            token.step = info.step
            batch.add(info)

        def run() -> object:
            try:
                return Finished(self.engine.generate(request, on_step, token))
            except JobCancelled:
                return Failed(errors.CANCELLED, "cancelled", cancelled=True)
            except EngineError as exc:
                return Failed(exc.code, exc.message, exc.field)
            except MemoryError:
                return Failed(errors.OUT_OF_MEMORY, "the replica ran out of memory for this job")
            except Exception as exc:  # noqa: BLE001 - the job fails, the replica serves on
                return Failed(errors.INTERNAL, f"generation failed on the replica: {type(exc).__name__}: {exc}")
            finally:
                batch.flush()
                loop.call_soon_threadsafe(queue.put_nowait, done)

        try:
            try:
                await self.load_model(serve.get_multiplexed_model_id() or request.model)
            except EngineError as exc:
                yield Failed(exc.code, exc.message, exc.field)
                return
            future = loop.run_in_executor(self._pool, run)
            while (item := await queue.get()) is not done:
                yield item
            yield await future
        except (asyncio.CancelledError, GeneratorExit):
            token.set()
            self._report_cancel(token)
            raise

    def _report_cancel(self, token: _Token) -> None:
        def wait_and_report() -> None:  # queued behind the cancelled job on the one job thread
            after = token.step - (token.step_at_cancel or 0)
            self._ledger.record.remote(ReplicaEvent("cancel", self.placed.replica,
                                                    data={"steps_after_cancel": after}))

        self._pool.submit(wait_and_report)


def deployment(settings: ReplicaSettings, *, replicas: int, min_replicas: int | None, max_replicas: int | None,
               gpus: float, cpus: float, models_per_replica: int) -> Any:
    """The Serve application: EngineReplica with the operator's replica count (or autoscaling bounds), its
    resources and its model multiplexing capacity."""
    from ray import serve

    multiplexed = serve.multiplexed(max_num_models_per_replica=models_per_replica)(EngineReplica.load_model)
    cls = type("UnderpaintEngine", (EngineReplica,), {"load_model": multiplexed,
                                                       "__module__": EngineReplica.__module__})
    options: dict[str, Any] = {"max_ongoing_requests": 1,
                               "ray_actor_options": {"num_gpus": gpus, "num_cpus": cpus}}
    if min_replicas is not None or max_replicas is not None:
        low = min_replicas if min_replicas is not None else 1
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": max(max_replicas or low, low),
                                         "target_ongoing_requests": 1,
                                         "upscale_delay_s": 5, "downscale_delay_s": 600}  # painters wait: up soon
    else:
        options["num_replicas"] = replicas
    return serve.deployment(cls, name="UnderpaintEngine", **options).bind(settings)
