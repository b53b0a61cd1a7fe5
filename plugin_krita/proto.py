"""The shared protocol package: vendored as ``underpaint_protocol`` inside Krita, ``underpaint.protocol`` in dev."""

from __future__ import annotations

try:
    from underpaint_protocol import client, connection, errors, frames, geometry, messages, pixels  # vendored
except ImportError:
    from underpaint.protocol import client, connection, errors, frames, geometry, messages, pixels

__all__ = ["client", "connection", "errors", "frames", "geometry", "messages", "pixels"]
