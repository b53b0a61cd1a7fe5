"""Which encodings a job's pixels travel in: raw on loopback (compressing costs more than it saves), compressed
to a remote server (a 4096² layer is 67 MB raw, ~11 s each way at 50 Mbit/s).

The painter's setting is ``auto`` (the default: by the server's address), ``raw`` or ``compressed``. The host
encodes images itself where it has a fast native encoder (``png``: Qt in Krita, GEGL in GIMP) and falls back to
``zlib`` otherwise; masks and results travel as zlib (they inflate in C on both ends).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..frames import Frame
from ..geometry import Rect
from ..pixels import make_frame
from ..tiles import tile_rects
from ..vocabulary import BYTES_PER_PIXEL
from .settings import SettingsError

# a host's native PNG encoder: (pixels in the job's format, width, height) -> (PNG bytes, the PNG's wire format)
PngEncoder = Callable[[bytes, int, int], tuple[bytes, str]]

MODES = ("auto", "raw", "compressed")
DEFAULT_MODE = "auto"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def mode(text: object, label: str = "Transfer") -> str:
    """The setting checked: one of ``MODES`` (case and spaces ignored); SettingsError otherwise."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value not in MODES:
        raise SettingsError(f"{label} must be one of {', '.join(MODES)} (got {text!r})")
    return value


def is_loopback(url: str) -> bool:
    """True when ``url`` names this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        host = urlsplit(url if "://" in url else "ws://" + url).hostname or ""
    except ValueError:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Encodings:
    image: str  # raw | png | zlib
    mask: str  # raw | zlib
    result: str  # raw | zlib (``result_encoding``)
    preview: tuple[str, ...]  # preferred preview encodings, best first (``Offer.preview_encoding`` picks)

    @property
    def compressed(self) -> bool:
        return self.result != "raw"


def choose(setting: str, url: str, native_png: bool, previews: tuple[str, ...] = ()) -> Encodings:
    """The encodings of one job to ``url``: ``native_png`` when the host can PNG-encode this image itself
    (fast, and PNG's row filters compress paintings better than zlib); ``previews``: lossy encodings the host
    decodes natively (e.g. jpeg), used over a compressed link."""
    compressed = setting == "compressed" or (setting == "auto" and not is_loopback(url))
    if not compressed:
        return Encodings("raw", "raw", "raw", previews or ("raw",))
    return Encodings("png" if native_png else "zlib", "zlib", "zlib", previews + ("zlib",))


def crop(pixels: bytes, bpp: int, stride_px: int, rect: Rect) -> bytes:
    """``rect`` (relative to the buffer's top left) of a tightly packed buffer ``stride_px`` pixels wide."""
    stride, row = stride_px * bpp, rect.width * bpp
    if row == stride:
        return pixels[rect.y * stride:(rect.y + rect.height) * stride]
    view = memoryview(pixels)
    start = rect.y * stride + rect.x * bpp
    return b"".join(view[start + r * stride:start + r * stride + row] for r in range(rect.height))


def job_inputs(job: str, region: Rect, pixel_format: str, image: bytes, mask: bytes | None, encodings: Encodings,
               png: PngEncoder | None = None, tile_side: int = 1024
               ) -> tuple[dict[str, Frame | tuple[Frame, ...]], int]:
    """The image (and gray8 mask) frame, or tiles, of ``region`` in ``encodings``; returns them and the
    ``result_tile`` to ask for (0: the client decides).

    Raw inputs are one frame each (the client cuts raw tiles without copying twice). Compressed inputs are cut
    into tiles here and each tile compressed once: ``png`` by the host's encoder (the client would re-encode a
    PNG in pure Python), else zlib; the mask gets the same tiles as zlib.
    """
    if encodings.image == "raw":
        frames: dict[str, Frame | tuple[Frame, ...]] = {"image": make_frame(
            job, "image", image, region.width, region.height, pixel_format, "raw", region.x, region.y)}
        if mask is not None:
            frames["mask"] = make_frame(job, "mask", mask, region.width, region.height, "gray8", encodings.mask,
                                        region.x, region.y)
        return frames, 0
    bpp = BYTES_PER_PIXEL[pixel_format]
    rects = tile_rects(Rect(0, 0, region.width, region.height), tile_side)
    images, masks = [], []
    for i, rect in enumerate(rects):
        data = crop(image, bpp, region.width, rect)
        x, y = region.x + rect.x, region.y + rect.y
        if encodings.image == "png" and png is not None:
            payload, wire_format = png(data, rect.width, rect.height)
            images.append(Frame(job, "image", rect.width, rect.height, wire_format, payload, "png", x, y, i))
        else:
            images.append(make_frame(job, "image", data, rect.width, rect.height, pixel_format, "zlib", x, y, i))
        if mask is not None:
            masks.append(make_frame(job, "mask", crop(mask, 1, region.width, rect), rect.width, rect.height,
                                    "gray8", encodings.mask, x, y, i))
    frames = {"image": images[0] if len(images) == 1 else tuple(images)}
    if mask is not None:
        frames["mask"] = masks[0] if len(masks) == 1 else tuple(masks)
    return frames, (tile_side if len(rects) > 1 else 0)


__all__ = ["PngEncoder", "crop", "job_inputs", "DEFAULT_MODE", "Encodings", "MODES", "choose", "is_loopback", "mode"]
