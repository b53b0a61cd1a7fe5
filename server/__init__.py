"""The Underpaint inference server, grouped by the way a job flows through it.

    transport/  websocket session, REST, security (token, origin), the Service both share
    jobs/       fair queue per client, cancel flags, the runner: wire frames -> imaging -> engine -> frames
    engine/     the interface (plain values, no sockets, no threads), the diffusers engine, model registry,
                loader, samplers, previews, the built-in demo model
    imaging/    pure numpy: pixel formats, sizing, masks, paste-back
    cli/        the `underpaint` command; ``compose`` is the one place settings become a running server
    config.py   settings from defaults < TOML < UNDERPAINT_* environment < flags

Wire names (job kinds, samplers, pixel formats, error codes) come from ``underpaint.protocol``.
"""

__version__ = "0.1.0"
