"""Underpaint for Krita: img2img and inpainting on a local or remote Underpaint server.

Inside Krita this package is ``pykrita/underpaint_krita``; importing it registers the extension and the
docker. Outside Krita (tests, packaging) importing it does nothing.
"""

import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)

try:
    import krita as _krita
except ImportError:  # not running inside Krita
    _krita = None

EXTENSION = None
if _krita is not None and hasattr(_krita, "Krita"):
    from .extension import register

    EXTENSION = register()
