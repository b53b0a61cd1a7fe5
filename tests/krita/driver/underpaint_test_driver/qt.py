"""Qt for the driver, as Krita runs it: PyQt6 in Krita 6, PyQt5 in Krita 5 (never imported directly elsewhere)."""

from __future__ import annotations

import sys


def _qt_major() -> int:
    """Krita imports its bindings before any plug-in; else its own ``pykrita.qt_major_version()`` (5.2+)."""
    for major in (6, 5):
        if f"PyQt{major}" in sys.modules:
            return major
    try:
        import pykrita

        return int(pykrita.qt_major_version())
    except (ImportError, AttributeError):
        return 5  # Krita 5.1


if _qt_major() == 6:
    from PyQt6.QtCore import QPoint, QTimer
    from PyQt6.QtWidgets import QApplication
else:
    from PyQt5.QtCore import QPoint, QTimer
    from PyQt5.QtWidgets import QApplication

__all__ = ["QApplication", "QPoint", "QTimer"]
