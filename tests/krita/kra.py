"""Read Krita .kra files from outside Krita: layer tree, layer pixels (tiled LZF), annotations.

Only what the end-to-end test checks; paint layers of RGBA colour spaces (8/16-bit integer, 16/32-bit float).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NS = "{http://www.calligra.org/DTD/krita}"
# colorspacename -> (numpy dtype, channel order of the stored bytes)
COLORSPACES = {"RGBA": (np.uint8, "BGRA"), "RGBA16": (np.uint16, "BGRA"), "RGBAF16": (np.float16, "RGBA"),
               "RGBAF32": (np.float32, "RGBA")}


def lzf_decompress(data: bytes, size: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        for k in range(length + 2):
            out.append(out[ref + k])
    if len(out) != size:
        raise ValueError(f"LZF tile inflated to {len(out)} bytes, expected {size}")
    return bytes(out)


@dataclass
class Layer:
    name: str
    nodetype: str
    x: int
    y: int
    uuid: str
    filename: str
    colorspace: str
    visible: bool
    children: list[Layer] = field(default_factory=list)


@dataclass
class Kra:
    path: Path
    width: int
    height: int
    image_name: str
    colorspace: str
    layers: list[Layer]  # top of the stack first, like maindoc.xml

    @classmethod
    def open(cls, path: Path) -> Kra:
        with zipfile.ZipFile(path) as archive:
            root = ET.fromstring(archive.read("maindoc.xml"))
        image = root.find(f"{NS}IMAGE")
        assert image is not None, "maindoc.xml has no IMAGE"
        return cls(Path(path), int(image.get("width")), int(image.get("height")), image.get("name"),
                   image.get("colorspacename"), _layers(image.find(f"{NS}layers")))

    def walk(self) -> list[Layer]:
        out: list[Layer] = []

        def visit(layers: list[Layer]) -> None:
            for layer in layers:
                out.append(layer)
                visit(layer.children)

        visit(self.layers)
        return out

    def layer(self, name: str) -> Layer:
        found = [layer for layer in self.walk() if layer.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} layers named {name!r}; layers: {[la.name for la in self.walk()]}")
        return found[0]

    def annotation(self, kind: str) -> bytes | None:
        with zipfile.ZipFile(self.path) as archive:
            name = f"{self.image_name}/annotations/{kind}"
            return archive.read(name) if name in archive.namelist() else None

    def pixels(self, layer: Layer) -> np.ndarray:
        """The layer's pixels over the canvas, shape (height, width, 4) in RGBA order, native dtype."""
        dtype, order = COLORSPACES[layer.colorspace]
        bpp = 4 * np.dtype(dtype).itemsize
        canvas = np.zeros((self.height, self.width, 4), dtype=dtype)
        with zipfile.ZipFile(self.path) as archive:
            base = f"{self.image_name}/layers/{layer.filename}"
            default = np.frombuffer(archive.read(base + ".defaultpixel"), dtype=dtype)
            canvas[:] = default
            for (tx, ty), tile in _tiles(archive.read(base), bpp):
                pix = np.frombuffer(tile, dtype=dtype).reshape(64, 64, 4)
                _paste(canvas, pix, tx + layer.x, ty + layer.y)
        if order == "BGRA":
            canvas = np.ascontiguousarray(canvas[..., [2, 1, 0, 3]])
        return canvas


def _layers(node: ET.Element | None) -> list[Layer]:
    if node is None:
        return []
    out = []
    for item in node:
        if item.tag not in (f"{NS}layer", f"{NS}mask"):
            continue
        layer = Layer(item.get("name", ""), item.get("nodetype", ""), int(item.get("x", 0)), int(item.get("y", 0)),
                      item.get("uuid", ""), item.get("filename", ""), item.get("colorspacename", ""),
                      item.get("visible", "1") == "1")
        layer.children = _layers(item.find(f"{NS}layers"))
        out.append(layer)
    return out


def _tiles(data: bytes, bpp: int):
    lines = data.split(b"\n", 5)
    header = dict(line.decode().split(" ", 1) for line in lines[:5])
    assert header["VERSION"] == "2" and header["TILEWIDTH"] == "64" and header["TILEHEIGHT"] == "64", header
    assert int(header["PIXELSIZE"]) == bpp, (header, bpp)
    count, rest, pos = int(header["DATA"]), lines[5], 0
    size = 64 * 64 * bpp
    for _ in range(count):
        end = rest.index(b"\n", pos)
        x, y, method, length = rest[pos:end].decode().split(",")
        assert method == "LZF", method
        blob = rest[end + 1:end + 1 + int(length)]
        pos = end + 1 + int(length)
        if blob[0] == 1:  # compressed, channels linearised (byte planes)
            linear = lzf_decompress(blob[1:], size)
            planes = np.frombuffer(linear, dtype=np.uint8).reshape(bpp, 64 * 64)
            tile = planes.T.copy().tobytes()
        else:
            tile = blob[1:1 + size]
        yield (int(x), int(y)), tile


def _paste(canvas: np.ndarray, tile: np.ndarray, x: int, y: int) -> None:
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + 64, w), min(y + 64, h)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = tile[y0 - y:y1 - y, x0 - x:x1 - x]
