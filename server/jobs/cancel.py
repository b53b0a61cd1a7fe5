"""The cancel token the job layer hands to an engine (see engine.interface.CancelToken)."""

from __future__ import annotations

import threading

from ..engine.interface import JobCancelled


class CancelFlag:
    """Set once from any thread (a client's cancel, a dropped socket); read by the engine between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()
