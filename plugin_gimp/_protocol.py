"""The protocol package: vendored ``underpaint_protocol`` in GIMP, ``underpaint.protocol`` in development."""

from __future__ import annotations

try:  # inside GIMP: plug-ins/underpaint/vendor is on sys.path
    from underpaint_protocol import client, connection, errors, geometry, messages, pixels, plugin_core, vocabulary
except ImportError:  # tests and development checkouts
    from underpaint.protocol import client, connection, errors, geometry, messages, pixels, plugin_core, vocabulary

core = plugin_core
__all__ = ["client", "connection", "core", "errors", "geometry", "messages", "pixels", "vocabulary"]
