"""Optional diagnostic log of what the plug-in does to the image, one JSON object per line.

Enabled by the ``UNDERPAINT_GIMP_LOG`` environment variable (a file path); the end-to-end tests read it
to check undo grouping and preview clean-up. Logging never raises.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV = "UNDERPAINT_GIMP_LOG"


def log(event: str, **fields: Any) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    record = {"t": round(time.time(), 3), "pid": os.getpid(), "event": event, **fields}
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
    except OSError:
        pass
