"""The Underpaint inference server, grouped by the way a job flows through it.

    transport/  websocket session, REST, security (token, origin), the Service both share
    jobs/       fair queue per client, cancel flags, one handler per job kind (``handlers``, keyed by
                ``vocabulary.KINDS``), the runner: wire frames -> handler (imaging) -> engine -> frames
    engine/     the interface (plain values, no sockets, no threads), the diffusers engine, model registry,
                loader, samplers, previews, the built-in demo model
    imaging/    pure numpy: pixel formats, sizing, masks, paste-back
    cli/        the `underpaint` command; ``compose`` is the one place settings become a running server
    config.py   settings from defaults < TOML < UNDERPAINT_* environment < flags

Wire names and limits (job kinds and roles, samplers, pixel formats, encodings, limits, error codes) come
from ``underpaint.protocol.vocabulary`` and ``errors``; nothing here re-declares them.
"""

__version__ = "0.1.0"
