"""Krita's compressed uploads: Qt's PNG encoder (plugin_krita/qt.py) run by the Python that Krita 5.1.5 embeds
(this machine's /usr/bin/python3 with its PyQt5), decoded by the protocol: Krita's BGRA ``pixelData`` becomes
RGBA with the alpha left straight (not premultiplied), byte for byte."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from underpaint.protocol.pixels import decode_png

QT_PY = Path(__file__).resolve().parents[2] / "plugin_krita" / "qt.py"
HOST_PYTHON = "/usr/bin/python3"  # Krita 5.1.5's interpreter (docs/hosts.md)
SCRIPT = f"""
import base64, importlib.util, sys
spec = importlib.util.spec_from_file_location("qt", {str(QT_PY)!r})
qt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qt)
width, height = 37, 5
data = bytes((x * 7 + y * 31 + c * 60) % 256 if c < 3 else (x * 11 + y) % 256
             for y in range(height) for x in range(width) for c in range(4))
png, fmt = qt.encode_png_bgra8(data, width, height)
print(fmt, base64.b64encode(data).decode(), base64.b64encode(png).decode())
"""


def test_qt_png_of_bgra_is_straight_rgba() -> None:
    probe = subprocess.run([HOST_PYTHON, "-c", "import PyQt5.QtGui"], capture_output=True)
    if probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Krita's Python with PyQt5 is missing: {probe.stderr.decode()[-300:]}")
        pytest.skip("no PyQt5 for /usr/bin/python3 (Krita 5.1.5 not installed)")
    out = subprocess.run([HOST_PYTHON, "-c", SCRIPT], capture_output=True, text=True, check=True,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    fmt, bgra, png = out.stdout.split()
    bgra, png = base64.b64decode(bgra), base64.b64decode(png)
    assert fmt == "rgba8"
    rgba = decode_png(png, 37, 5, "rgba8")
    want = bytearray(bgra)
    want[0::4], want[2::4] = bgra[2::4], bgra[0::4]
    assert rgba == bytes(want)  # colours of half-transparent pixels untouched: straight alpha
