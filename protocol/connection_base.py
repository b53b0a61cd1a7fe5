"""What both session state machines share: the states and the version sentence.

``connection.ClientConnection`` (the plugin side) and ``server_connection.ServerConnection`` (what the server's
transport wraps) both import this module and neither imports the other's internals, as python-websockets'
``protocol.py`` is shared by its client and server.
"""

from __future__ import annotations

import enum

from . import errors
from .errors import ProtocolError
from .vocabulary import PROTOCOL_VERSION


class State(str, enum.Enum):
    """Session states. Client: NEW -> HELLO_SENT -> READY -> CLOSED. Server: NEW -> HELLO_RECEIVED -> READY ->
    CLOSED. Any state may go to CLOSED (a fatal error, ``reject``, ``close``)."""

    NEW = "new"
    HELLO_SENT = "hello_sent"
    HELLO_RECEIVED = "hello_received"
    READY = "ready"
    CLOSED = "closed"


def version_error(theirs: int, server_side: bool) -> ProtocolError:
    """``incompatible_version`` with a sentence that says which program to upgrade."""
    ours = PROTOCOL_VERSION
    if server_side:
        head = f"this server speaks Underpaint protocol {ours} but the plugin speaks protocol {theirs}"
        fix = ("update the Underpaint plugin (Krita/GIMP) to a release for protocol " if theirs < ours
               else "upgrade the Underpaint server to a release for protocol ")
    else:
        head = f"the server speaks Underpaint protocol {theirs} but this plugin speaks protocol {ours}"
        fix = ("upgrade the Underpaint server to a release for protocol " if theirs < ours
               else "update this plugin to a release for protocol ")
    return ProtocolError(errors.INCOMPATIBLE_VERSION, f"{head}: {fix}{max(ours, theirs)}", "protocol")
