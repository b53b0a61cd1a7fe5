"""When to reconnect after a dropped connection, and what the painter reads meanwhile (both hosts share it).

A dropped connection with kept jobs (``Tracker.detached``) starts an episode: the host asks ``next_delay()``
after each failed attempt and tries again after that many seconds (0.5, 1, 2, 4, 8, 8 … s); once the
episode's time budget is spent, ``next_delay()`` is None and the kept jobs are lost with ``gave_up_text``.
The painter sees one line when the episode starts (``reconnecting_text``), not one per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST_DELAY = 0.5  # seconds before the first attempt after a drop
MAX_DELAY = 8.0  # the backoff doubles up to this
BUDGET = 120.0  # seconds an episode may last before the kept jobs are given up

LOST_TEXT = ("The server no longer has this job (it was restarted, or the job expired while the connection was "
             "down); the document is unchanged: generate again.")


def reconnecting_text(url: str, jobs: int) -> str:
    kept = f" (the server keeps {jobs} job(s) meanwhile)" if jobs else ""
    return f"Connection to {url} lost: reconnecting …{kept}"


def gave_up_text(url: str, seconds: float) -> str:
    return (f"Could not reconnect to {url} within {seconds:g} s: the job is lost and the document is unchanged; "
            "check the server and generate again.")


@dataclass
class Backoff:
    """One reconnect episode: ``next_delay()`` after every failed attempt, ``reset()`` once connected."""

    first: float = FIRST_DELAY
    cap: float = MAX_DELAY
    budget: float = BUDGET
    clock: Callable[[], float] = time.monotonic
    started: float | None = field(default=None, init=False)
    attempts: int = field(default=0, init=False)
    _delay: float = field(default=0.0, init=False)

    @property
    def active(self) -> bool:
        return self.started is not None

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent (give up)."""
        now = self.clock()
        if self.started is None:
            self.started, self.attempts, self._delay = now, 0, self.first
        else:
            self._delay = min(self._delay * 2, self.cap)
        left = self.budget - (now - self.started)
        if left <= 0:
            return None
        self.attempts += 1
        return min(self._delay, left)

    def reset(self) -> None:
        self.started, self.attempts, self._delay = None, 0, 0.0


__all__ = ["BUDGET", "Backoff", "FIRST_DELAY", "LOST_TEXT", "MAX_DELAY", "gave_up_text", "reconnecting_text"]
