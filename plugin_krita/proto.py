"""The shared protocol package: vendored as ``underpaint_protocol`` inside Krita, ``underpaint.protocol`` in dev.

``core`` is its host-independent plugin part (settings, params, regions, naming, sentences, jobs).
"""

from __future__ import annotations

try:
    from underpaint_protocol import client, connection, errors, frames, geometry, messages, pixels, vocabulary
    from underpaint_protocol import plugin_core as core
except ImportError:
    from underpaint.protocol import client, connection, errors, frames, geometry, messages, pixels, vocabulary
    from underpaint.protocol import plugin_core as core

__all__ = ["client", "connection", "core", "errors", "frames", "geometry", "messages", "pixels", "vocabulary"]
