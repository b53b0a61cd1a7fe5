"""What the websocket and REST transports share: settings, engine, job manager, and the welcome they advertise.

``welcome.features`` is what this server really implements: the kinds with a handler, the samplers the engine
maps, the preview encodings PIL can write, and the ``resume`` flag; no extra input role (control, reference)."""

from __future__ import annotations

from collections import Counter

from underpaint.protocol import vocabulary
from underpaint.protocol.messages import Defaults, ModelInfo, Welcome
from underpaint.protocol.server_connection import BufferPool

from .. import __version__
from ..config import ServerConfig, protocol_limits
from ..engine.interface import Engine
from ..jobs.handlers import HANDLERS, kinds_for
from ..jobs.live import LiveStreams
from ..jobs.queue import JobManager
from ..jobs.runner import JobRunner, preview_encodings
from .security import AuthLimiter

FLAGS = ("resume", "resume_key", "live")  # keep_result + resume (with the job's key); live streams (jobs.live)


class Service:
    """What the transports share: settings, engine, job manager, and the welcome they advertise."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.limits = protocol_limits(config)
        self.features = vocabulary.features(kinds=HANDLERS, roles=(), samplers=engine.samplers(),
                                            encodings=preview_encodings(), flags=FLAGS)
        self.jobs = JobManager(JobRunner(engine, config.max_model_pixels), keep_results_s=config.keep_results_s)
        self.live = LiveStreams(engine, self.jobs, self.limits, config.max_model_pixels)
        self.auth = AuthLimiter(config.auth_failures)
        self.buffers = BufferPool(config.max_buffered_bytes)  # input frames held by every websocket together
        self.connections: Counter[str] = Counter()  # address -> open websockets

    def admit(self, address: str) -> str | None:
        """Count a new websocket, or say why it is refused (the caps on connections)."""
        if sum(self.connections.values()) >= self.config.max_connections:
            return f"the server has its maximum of {self.config.max_connections} connections; try again later"
        if self.connections[address] >= self.config.max_connections_per_address:
            return (f"{address} already has {self.config.max_connections_per_address} connections open (the "
                    "limit per address)")
        self.connections[address] += 1
        return None

    def leave(self, address: str) -> None:
        self.connections[address] -= 1
        if self.connections[address] <= 0:
            del self.connections[address]

    def welcome(self) -> Welcome:
        default = self.engine.default_model()
        models = tuple(
            ModelInfo(id=m.id, name=m.name, family=m.family, capabilities=kinds_for(m.capabilities),
                      resolution=m.resolution, default=m.id == default, note=m.note)
            for m in self.engine.list_models()
        )
        return Welcome(protocol=vocabulary.PROTOCOL_VERSION, server_version=__version__,
                       device=self.engine.device_name(), models=models, defaults=Defaults(model=default),
                       limits=self.limits, features=self.features)
