"""The one place that imports Qt: PyQt5 (Krita 5) or PyQt6 (Krita 6), as Krita itself runs.

Every other module takes its Qt names from here, so a Qt major version change stays in this file.
"""

from __future__ import annotations

import sys


def _qt_major() -> int:
    """The Qt major version Krita runs on: its bindings are imported before any plug-in; else Krita's own
    ``pykrita.qt_major_version()`` (Krita 5.2+); else whichever is installed, PyQt5 first (Krita 5.1, tests)."""
    for major in (6, 5):
        if f"PyQt{major}" in sys.modules:
            return major
    try:
        import pykrita  # type: ignore[import-not-found]

        return int(pykrita.qt_major_version())
    except (ImportError, AttributeError):
        pass
    try:
        import PyQt5  # noqa: F401
    except ImportError:
        return 6
    return 5


QT_MAJOR = _qt_major()
if QT_MAJOR == 6:  # Krita 6.x
    from PyQt6 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]

    QT_API = "PyQt6"
else:  # Krita 5.x
    from PyQt5 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]

    QT_API = "PyQt5"

QBuffer, QByteArray, QIODevice, QObject = QtCore.QBuffer, QtCore.QByteArray, QtCore.QIODevice, QtCore.QObject
Qt, QTimer, pyqtSignal = QtCore.Qt, QtCore.QTimer, QtCore.pyqtSignal
QImage = QtGui.QImage
QApplication, QCheckBox, QComboBox = QtWidgets.QApplication, QtWidgets.QCheckBox, QtWidgets.QComboBox
QDoubleSpinBox, QFormLayout = QtWidgets.QDoubleSpinBox, QtWidgets.QFormLayout
QHBoxLayout = QtWidgets.QHBoxLayout
QLabel, QLineEdit, QMessageBox = QtWidgets.QLabel, QtWidgets.QLineEdit, QtWidgets.QMessageBox
QPlainTextEdit, QProgressBar = QtWidgets.QPlainTextEdit, QtWidgets.QProgressBar
QPushButton, QScrollArea, QFrame = QtWidgets.QPushButton, QtWidgets.QScrollArea, QtWidgets.QFrame
QSpinBox, QTabWidget, QToolButton = QtWidgets.QSpinBox, QtWidgets.QTabWidget, QtWidgets.QToolButton
QVBoxLayout, QWidget = QtWidgets.QVBoxLayout, QtWidgets.QWidget

Signal = pyqtSignal
QUEUED = Qt.ConnectionType.QueuedConnection if QT_API == "PyQt6" else Qt.QueuedConnection
ARGB32 = QImage.Format.Format_ARGB32 if QT_API == "PyQt6" else QImage.Format_ARGB32
PASSWORD = QLineEdit.EchoMode.Password if QT_API == "PyQt6" else QLineEdit.Password
IGNORE_ASPECT = Qt.AspectRatioMode.IgnoreAspectRatio if QT_API == "PyQt6" else Qt.IgnoreAspectRatio
SMOOTH = Qt.TransformationMode.SmoothTransformation if QT_API == "PyQt6" else Qt.SmoothTransformation
NO_FRAME = QFrame.Shape.NoFrame if QT_API == "PyQt6" else QFrame.NoFrame
SCROLL_AS_NEEDED = Qt.ScrollBarPolicy.ScrollBarAsNeeded if QT_API == "PyQt6" else Qt.ScrollBarAsNeeded
SCROLL_OFF = Qt.ScrollBarPolicy.ScrollBarAlwaysOff if QT_API == "PyQt6" else Qt.ScrollBarAlwaysOff


def to_bytes(data: object) -> bytes:
    """A QByteArray (or anything bytes-like) as Python bytes."""
    return bytes(data)  # type: ignore[arg-type]


def decode_image_bgra(data: bytes, width: int, height: int) -> bytes | None:
    """Decode JPEG/WebP/PNG ``data`` with Qt, scaled to ``width`` x ``height``: tightly packed BGRA8 bytes.

    Returns None when Qt cannot decode the data.
    """
    image = QImage.fromData(QByteArray(data))
    if image.isNull():
        return None
    if (image.width(), image.height()) != (width, height):
        image = image.scaled(width, height, IGNORE_ASPECT, SMOOTH)
    image = image.convertToFormat(ARGB32)  # little-endian ARGB32 = B, G, R, A bytes
    stride = image.bytesPerLine()
    bits = image.constBits()
    bits.setsize(stride * height)
    raw = bytes(bits)
    row = width * 4
    if stride == row:
        return raw
    return b"".join(raw[y * stride : y * stride + row] for y in range(height))


PNG_QUALITY = 85  # Qt maps PNG "quality" to zlib level: 85 -> level 1 (fast, with libpng's row filters)


def encode_png_bgra8(data: bytes, width: int, height: int) -> tuple[bytes, str]:
    """Tightly packed BGRA8 (Krita's 8-bit ``pixelData``, straight alpha) as an RGBA8 PNG, encoded by Qt."""
    image = QImage(data, width, height, width * 4, ARGB32)  # little-endian ARGB32 = B, G, R, A; not premultiplied
    buffer = QBuffer()
    buffer.open(QBuffer.OpenModeFlag.WriteOnly if QT_API == "PyQt6" else QIODevice.WriteOnly)
    if not image.save(buffer, "PNG", PNG_QUALITY):
        raise ValueError("Qt could not encode the image as PNG")
    return bytes(buffer.data()), "rgba8"
