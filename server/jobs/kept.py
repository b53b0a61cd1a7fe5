"""Kept jobs whose connection closed: what they still hold in memory, per owner (the client's address)."""

from __future__ import annotations

from collections import Counter


class KeptLedger:
    """Bytes held by kept jobs whose connection is gone (their input frames until they finish, then their result
    frames), per owner and in all. Changed under the job manager's lock; ``total`` and ``of`` are read from any
    thread (the transport counts them against its connection and server limits)."""

    def __init__(self) -> None:
        self.total = 0
        self._owners: Counter[str] = Counter()
        self._jobs: dict[object, tuple[str, int]] = {}  # job -> (owner, bytes)

    def hold(self, job: object, owner: str, size: int) -> None:
        self.release(job)
        self._jobs[job] = (owner, size)
        self._owners[owner] += size
        self.total += size

    def resize(self, job: object, size: int) -> None:
        """A held job's bytes changed (it finished: its results instead of its inputs)."""
        if job in self._jobs:
            self.hold(job, self._jobs[job][0], size)

    def release(self, job: object) -> None:
        owner, size = self._jobs.pop(job, ("", 0))
        if owner:
            self._owners[owner] -= size
            if self._owners[owner] <= 0:
                del self._owners[owner]
            self.total -= size

    def of(self, owner: str) -> int:
        return self._owners.get(owner, 0)
