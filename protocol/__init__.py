"""Underpaint wire protocol v1: sans-I/O messages, frames and session state, plus a threaded client.

Standard library only (the ``client`` module imports ``websockets`` lazily), Python >= 3.10.
"""

from .connection import ClientConnection, JobRequest, PreviewReceived, ResultReceived, ServerConnection
from .errors import ProtocolError
from .frames import Frame, FrameLimits, decode_frame
from .geometry import Rect, Size, context_region
from .messages import (
    PROTOCOL_VERSION,
    Cancel,
    Cancelled,
    Defaults,
    Error,
    Hello,
    InpaintOptions,
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

__all__ = [
    "PROTOCOL_VERSION", "Cancel", "Cancelled", "ClientConnection", "Defaults", "Error", "Frame", "FrameLimits",
    "Hello", "InpaintOptions", "JobRequest", "Limits", "ModelInfo", "PreviewOptions", "PreviewReceived", "Progress",
    "ProtocolError", "Queued", "Rect", "Result", "ResultReceived", "Resume", "ServerConnection", "Size", "Started",
    "Submit", "Welcome", "context_region", "decode_frame", "decode_pixels", "make_frame",
]
