"""What the websocket and REST transports share: settings, engine, job manager, and the welcome they advertise."""

from __future__ import annotations

from underpaint.protocol.messages import PROTOCOL_VERSION, Defaults, Limits, ModelInfo, Welcome

from .. import __version__
from ..config import ServerConfig
from ..engine.interface import Engine
from ..jobs.queue import JobManager
from ..jobs.runner import JobRunner


class Service:
    """What the transports share: settings, engine, job manager, and the welcome they advertise."""

    def __init__(self, config: ServerConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.limits = Limits(max_pixels=config.max_pixels, max_frame_bytes=config.max_frame_bytes,
                             max_queued_jobs=config.max_queued_jobs, max_batch=config.max_batch,
                             max_steps=config.max_steps, keep_results_s=config.keep_results_s)
        self.jobs = JobManager(JobRunner(engine, config.max_model_pixels), keep_results_s=config.keep_results_s)

    def welcome(self) -> Welcome:
        default = self.engine.default_model()
        models = tuple(
            ModelInfo(id=m.id, name=m.name, family=m.family, capabilities=tuple(m.capabilities),
                      resolution=m.resolution, default=m.id == default, note=m.note)
            for m in self.engine.list_models()
        )
        return Welcome(protocol=PROTOCOL_VERSION, server_version=__version__, device=self.engine.device_name(),
                       models=models, defaults=Defaults(model=default), limits=self.limits)
