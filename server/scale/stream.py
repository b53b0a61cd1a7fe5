"""What a replica's streaming response carries back to the front, besides the engine's own StepInfo items.

Plain picklable dataclasses: a job's stream is ``Placed``, then StepInfo items, then ``Finished`` or ``Failed``.
Failures travel as an item, not as a raised exception, so the front gets the engine's error code unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Placed:
    """The replica that took the job (first item): for logs, and for tests that stop that replica."""

    replica: str
    pid: int
    node: str


@dataclass(frozen=True)
class Finished:
    images: list[np.ndarray]


@dataclass(frozen=True)
class Failed:
    """The job ended on the replica with an engine error (``code`` from protocol.errors) or a cancel."""

    code: str
    message: str
    field: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class ReplicaEvent:
    """Reported by replicas to the ledger: a model load, a cancel and how many steps ran after it."""

    kind: str  # "load" | "cancel"
    replica: str
    model: str = ""
    data: dict[str, float] = field(default_factory=dict)
