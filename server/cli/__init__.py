"""The ``underpaint`` command: serve, models, demo, run, install (see ``main``); ``compose`` builds the server."""

from .main import main

__all__ = ["main"]
