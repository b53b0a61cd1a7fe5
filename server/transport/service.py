"""What the websocket and REST transports share: settings, the job manager and live streams, and the welcome.

Nothing here builds a part of the server: ``cli.compose`` builds the engine, jobs and upscalers and hands the
transport ready objects (``JobManager``, ``LiveStreams``) and plain data (``Offer``: device, default model,
models, features). The transport never sees the engine."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from underpaint.protocol import vocabulary
from underpaint.protocol.messages import Defaults, Limits, LoraInfo, ModelInfo, UpscalerInfo, Welcome
from underpaint.protocol.server_connection import BufferPool

from .. import __version__
from ..config import ServerConfig
from ..jobs.live import LiveStreams
from ..jobs.queue import JobManager
from .security import AuthLimiter


@dataclass(frozen=True, kw_only=True)
class Offer:
    """What this server offers, as plain data for the welcome (built once by ``cli.compose``)."""

    device: str  # the engine's device, in words
    default_model: str
    models: tuple[ModelInfo, ...]
    features: tuple[str, ...]  # what this server really implements (``cli.compose.offer``)
    upscalers: tuple[UpscalerInfo, ...] = ()
    loras: tuple[LoraInfo, ...] = ()


class Service:
    """What the transports share: settings, limits, job manager, live streams, and the welcome they advertise."""

    def __init__(self, config: ServerConfig, *, limits: Limits, offer: Offer, jobs: JobManager,
                 live: LiveStreams) -> None:
        self.config = config
        self.limits = limits
        self.offer = offer
        self.features = offer.features
        self.jobs = jobs
        self.live = live
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
        offer = self.offer
        return Welcome(protocol=vocabulary.PROTOCOL_VERSION, server_version=__version__, device=offer.device,
                       models=offer.models, defaults=Defaults(model=offer.default_model), limits=self.limits,
                       features=offer.features, upscalers=offer.upscalers, loras=offer.loras)
