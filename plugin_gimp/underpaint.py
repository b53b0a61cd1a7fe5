#!/usr/bin/env python3
"""GIMP 3 entry point of the Underpaint plug-in (installed as plug-ins/underpaint/underpaint.py).

Next to it: ``underpaint_gimp/`` (the plug-in's modules) and ``vendor/`` (underpaint_protocol, websockets).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for path in (os.path.join(HERE, "vendor"), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

from underpaint_gimp.procedures import main  # noqa: E402

if __name__ == "__main__":
    main()
