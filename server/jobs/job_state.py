"""The state of an entry of the job queue (a client's job or a live stream's task) and its one reducer.

QUEUED -> RUNNING when a worker takes it -> DONE at its end (a job's terminal message: result, error or
cancelled; a task's run returning). A job cancelled while it waits goes QUEUED -> DONE. DONE is final.
"""

from __future__ import annotations

import enum

from underpaint.protocol.frames import Frame
from underpaint.protocol.messages import Cancelled, Error, Message, Result


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class Step(enum.Enum):
    """What happens to an entry besides the messages it emits."""

    TAKEN = "taken"  # a worker took it from the queue
    ENDED = "ended"  # a task's run returned (a job ends with its terminal message instead)


TERMINAL = (Result, Cancelled, Error)


def reduce_state(state: JobState, event: Step | Message | Frame) -> JobState:
    """The entry's next state after ``event``; anything else (queued positions, progress, frames) leaves it."""
    if state is JobState.DONE:
        return state
    if event is Step.ENDED or isinstance(event, TERMINAL):
        return JobState.DONE
    if event is Step.TAKEN:
        return JobState.RUNNING
    return state
