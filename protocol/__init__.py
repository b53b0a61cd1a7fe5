"""Underpaint wire protocol v2: one vocabulary, sans-I/O messages, frames and session state, plus a threaded
client.

Standard library only (the ``client`` module imports ``websockets`` lazily), Python >= 3.10.
"""

from . import vocabulary
from .connection import ClientConnection, PreparedJob, PreviewReceived, ResultReceived
from .connection_base import State
from .errors import ProtocolError
from .frames import Frame, FrameLimits, decode_frame
from .geometry import Rect, Size, context_region
from .jobs import JobRequest
from .messages import (
    Cancel,
    Cancelled,
    Defaults,
    Error,
    Hello,
    InpaintOptions,
    JobInput,
    Limits,
    ModelInfo,
    PreviewOptions,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
    Welcome,
)
from .pixels import decode_pixels, make_frame
from .server_connection import ServerConnection
from .vocabulary import PROTOCOL_VERSION

__all__ = [
    "PROTOCOL_VERSION", "Cancel", "Cancelled", "ClientConnection", "Defaults", "Error", "Frame", "FrameLimits",
    "Hello", "InpaintOptions", "JobInput", "JobRequest", "Limits", "ModelInfo", "PreparedJob", "PreviewOptions",
    "PreviewReceived", "Progress", "ProtocolError", "Queued", "Rect", "Result", "ResultReceived", "Resume",
    "ServerConnection", "Size", "Started", "State", "Submit", "Welcome", "context_region", "decode_frame",
    "decode_pixels", "make_frame", "vocabulary",
]
