"""The protocol package: vendored ``underpaint_protocol`` in GIMP, ``underpaint.protocol`` in development."""

from __future__ import annotations

try:  # inside GIMP: plug-ins/underpaint/vendor is on sys.path
    from underpaint_protocol import client, connection, errors, frames, geometry, messages, pixels
except ImportError:  # tests and development checkouts
    from underpaint.protocol import client, connection, errors, frames, geometry, messages, pixels

__all__ = ["client", "connection", "errors", "frames", "geometry", "messages", "pixels"]
