"""Copy the pure-Python packages a host plugin needs next to it (no numpy, no PIL inside a host)."""

from __future__ import annotations

import shutil
from pathlib import Path

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "protocol"
VENDORED_PROTOCOL = "underpaint_protocol"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd", "*.c")


def _protocol_source() -> Path:
    import underpaint.protocol as protocol

    return Path(protocol.__file__).resolve().parent


def vendor(dest: Path) -> Path:
    """Write ``dest/underpaint_protocol/`` and ``dest/websockets/`` (pure Python); return ``dest``.

    A plugin puts ``dest`` on ``sys.path`` and imports ``underpaint_protocol``.
    """
    import websockets

    dest.mkdir(parents=True, exist_ok=True)
    for name, src in ((VENDORED_PROTOCOL, _protocol_source()), ("websockets", Path(websockets.__file__).parent)):
        target = dest / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src, target, ignore=_SKIP)
    return dest
