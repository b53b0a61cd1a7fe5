"""The websocket session's live-stream events (feature ``live``), handed to ``server.jobs.live``."""

from __future__ import annotations

from collections.abc import Callable

from underpaint.protocol.live_messages import LiveError, LiveStart, LiveStop
from underpaint.protocol.live_server import LiveFrameReady

from ..jobs.live import LiveStreams


def handle_live(streams: LiveStreams, client: str, event: object, sink: Callable[[object], None]) -> bool:
    """Act on a live event of the connection; False when ``event`` is not one."""
    if isinstance(event, LiveFrameReady):
        streams.frame(client, event)
    elif isinstance(event, LiveStart):
        streams.start(client, event, sink)
    elif isinstance(event, LiveStop):
        streams.stop(client, event.stream)
    elif isinstance(event, LiveError):  # a frame the connection refused (a bad tile): its answer
        sink(event)
    else:
        return False
    return True
