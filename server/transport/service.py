"""What the websocket and REST transports share: settings, engine, job manager, and the welcome they advertise.

``welcome.features`` is what this server really implements: the kinds with a handler, the samplers the engine
maps, the preview encodings PIL can write, the ``resume`` and ``tiled`` flags; no extra input role (control,
reference). ``welcome.upscalers``: the upscaler models found in or beside the models directories."""

from __future__ import annotations

from collections import Counter

from underpaint.protocol import vocabulary
from underpaint.protocol.messages import Defaults, LoraInfo, ModelInfo, UpscalerInfo, Welcome
from underpaint.protocol.server_connection import BufferPool

from .. import __version__
from ..config import ServerConfig, protocol_limits
from ..engine.interface import Engine
from ..engine.upscalers import Upscalers, upscaler_dirs
from ..jobs.handlers import HANDLERS, kinds_for
from ..jobs.live import LiveStreams
from ..jobs.queue import JobManager
from ..jobs.runner import JobRunner, preview_encodings
from .security import AuthLimiter

FLAGS = ("resume", "resume_key", "tiled", "live")  # kept jobs + resume (with the key); tiled runs; live streams


class Service:
    """What the transports share: settings, engine, job manager, and the welcome they advertise."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.limits = protocol_limits(config)
        lora = ("lora",) if engine.list_loras() else ()  # the server has LoRA files to offer
        self.features = vocabulary.features(kinds=HANDLERS, roles=(), samplers=engine.samplers(),
                                            encodings=preview_encodings(), flags=FLAGS + lora)
        self.upscalers = Upscalers(upscaler_dirs(config.models_dirs), config.allow_pickle,
                                   device=str(getattr(engine, "device", "cpu")))
        self.jobs = JobManager(JobRunner(engine, config.max_model_pixels, self.upscalers),
                               keep_results_s=config.keep_results_s, workers=engine.parallel_jobs())
        self.live = LiveStreams(engine, self.jobs, self.limits, config.max_model_pixels)
        self.auth = AuthLimiter(config.auth_failures)
        # input frames held by every websocket together, and by kept jobs whose websocket closed
        self.buffers = BufferPool(config.max_buffered_bytes, outside=lambda: self.jobs.kept.total)
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
        upscalers = tuple(UpscalerInfo(id=u.id, name=u.name, scale=u.scale) for u in self.upscalers.list())
        loras = tuple(LoraInfo(id=lo.id, name=lo.name, family=lo.family) for lo in self.engine.list_loras())
        return Welcome(protocol=vocabulary.PROTOCOL_VERSION, server_version=__version__,
                       device=self.engine.device_name(), models=models, defaults=Defaults(model=default),
                       limits=self.limits, features=self.features, upscalers=upscalers,
                       loras=loras)
