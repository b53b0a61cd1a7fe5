"""Upscaler models from the operator's upscaler folders (ComfyUI ``models/upscale_models``, A1111
``models/ESRGAN``), loaded through ``spandrel`` (ESRGAN, Real-ESRGAN, SwinIR, ... : the optional extra
``underpaint[upscale]``), and the plain resize that needs none of it.

Ids are the file's path relative to its upscaler folder without the extension, like model ids; clients name
upscalers by id only. Pickle files (``.pth``, ``.pt``, ``.ckpt``) are refused unless ``allow_pickle``, as
checkpoints are (``registry``). A model runs in overlapping tiles, so memory stays bounded on big images.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from underpaint.protocol import errors
from underpaint.protocol.geometry import Size

from ..imaging import resize_colour
from .interface import CancelToken, EngineError
from .registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES, SkippedFile

log = logging.getLogger(__name__)

FOLDERS = ("upscale_models", "ESRGAN", "RealESRGAN")  # looked for in and beside each models directory
PICKLE_FILES = PICKLE_SUFFIXES + (".pth",)
TILE, OVERLAP = 512, 32  # input pixels per model tile, and the margin each tile sees beyond its output
MAX_DEPTH = 3
_SCALE_IN_NAME = re.compile(r"(?:^|[^0-9a-z])(?:([1-8])x|x([1-8]))(?![0-9])", re.IGNORECASE)


def spandrel_available() -> bool:
    return importlib.util.find_spec("spandrel") is not None


def upscaler_dirs(models_dirs: list[Path] | tuple[Path, ...]) -> list[Path]:
    """The upscaler folders in or beside each models directory (``ComfyUI/models/checkpoints`` ->
    ``ComfyUI/models/upscale_models``; ``webui/models/Stable-diffusion`` -> ``webui/models/ESRGAN``)."""
    found: list[Path] = []
    for models in models_dirs:
        models = Path(models).expanduser()
        for base in (models, models.parent):
            for name in FOLDERS:
                folder = base / name
                if folder.is_dir() and folder.resolve() not in {f.resolve() for f in found}:
                    found.append(folder)
    return found


def scale_from_name(name: str) -> int | None:
    """``4x-UltraSharp`` -> 4, ``RealESRGAN_x2plus`` -> 2; None when the name does not say."""
    match = _SCALE_IN_NAME.search(name)
    return int(match.group(1) or match.group(2)) if match else None


@dataclass(frozen=True)
class Upscaler:
    id: str
    name: str
    scale: int
    path: Path


def load_model(path: Path, device: str = "cpu") -> Any:
    """A spandrel image-to-image descriptor of the file (EngineError when it is no upscaler spandrel knows)."""
    if not spandrel_available():
        raise EngineError(errors.UNSUPPORTED, "upscaler models need the optional 'spandrel' package "
                          "(pip install 'underpaint[upscale]'); a plain resize works without it", "upscale.upscaler")
    import spandrel

    try:
        descriptor = spandrel.ModelLoader(device=device).load_from_file(str(path))
    except Exception as exc:  # unknown architecture, corrupt file
        raise EngineError(errors.MODEL_LOAD_FAILED, f"could not load upscaler {path.name}: {exc}",
                          "upscale.upscaler") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise EngineError(errors.UNSUPPORTED, f"{path.name} is not an RGB image upscaler", "upscale.upscaler")
    return descriptor.eval()


def run_model(descriptor: Any, rgb: np.ndarray, cancel: CancelToken | None = None, tile: int = TILE,
              overlap: int = OVERLAP) -> np.ndarray:
    """Upscale (H, W, 3) uint8, or float32 in 0..1 (16-bit and float layers), by the model's own scale, tile by
    tile: each tile is run with ``overlap`` pixels of context on every side and only its middle is kept, so
    there is no seam and memory is one tile's. The result has the input's dtype."""
    import torch

    scale, (h, w) = descriptor.scale, rgb.shape[:2]
    eight = rgb.dtype == np.uint8
    out = np.empty((h * scale, w * scale, 3), rgb.dtype)
    device, dtype = descriptor.device, descriptor.dtype
    with torch.inference_mode():
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                y0, x0 = max(0, y - overlap), max(0, x - overlap)
                y1, x1 = min(h, y + tile + overlap), min(w, x + tile + overlap)
                patch = torch.from_numpy(np.ascontiguousarray(rgb[y0:y1, x0:x1])).permute(2, 0, 1)[None]
                patch = patch.to(device=device, dtype=dtype)
                result = descriptor(patch / 255.0 if eight else patch)[0].float().clamp(0, 1)
                result = ((result * 255).round().byte() if eight else result).permute(1, 2, 0).cpu().numpy()
                ty, tx = (y - y0) * scale, (x - x0) * scale
                th, tw = min(tile, h - y) * scale, min(tile, w - x) * scale
                out[y * scale:y * scale + th, x * scale:x * scale + tw] = result[ty:ty + th, tx:tx + tw]
                if cancel is not None:
                    cancel.raise_if_cancelled()
    return out


class Upscalers:
    """The upscaler models the server offers and the upscale itself (a model, or a plain resize)."""

    def __init__(self, dirs: list[Path], allow_pickle: bool = False, device: str = "cpu") -> None:
        self.dirs, self.allow_pickle, self.device = list(dirs), allow_pickle, device
        self._found: dict[str, Upscaler] = {}
        self._skipped: list[SkippedFile] = []
        self._loaded: tuple[str, Any] | None = None  # the last model used (one at a time)
        self._lock = threading.Lock()
        self.scan()

    def scan(self) -> list[Upscaler]:
        found: dict[str, Upscaler] = {}
        skipped: list[SkippedFile] = []
        offer = spandrel_available()
        if self.dirs and not offer:
            log.info("upscaler folders found but spandrel is not installed: only plain resizes are offered")
        for root in self.dirs if offer else []:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                rel = path.relative_to(root)
                suffix = path.suffix.lower()
                if len(rel.parts) > MAX_DEPTH or rel.name.startswith(".") or \
                        suffix not in SAFETENSORS_SUFFIXES + PICKLE_FILES:
                    continue
                if suffix in PICKLE_FILES and not self.allow_pickle:
                    skipped.append(SkippedFile(rel.as_posix(), "pickle upscaler refused (allow_pickle is off)", True))
                    continue
                upscaler_id = rel.with_suffix("").as_posix()
                if upscaler_id in found:
                    continue
                scale = scale_from_name(path.stem)
                if scale is None:
                    try:
                        scale = load_model(path).scale
                    except EngineError as exc:
                        skipped.append(SkippedFile(rel.as_posix(), exc.message))
                        continue
                found[upscaler_id] = Upscaler(upscaler_id, path.stem, scale, path)
        self._found, self._skipped = found, skipped
        return self.list()

    def list(self) -> list[Upscaler]:
        return list(self._found.values())

    def skipped(self) -> list[SkippedFile]:
        return list(self._skipped)

    def upscale(self, rgb: np.ndarray, upscaler_id: str | None, factor: int,
                cancel: CancelToken | None = None) -> np.ndarray:
        """(H, W, 3) uint8 or float32 (0..1) -> (H*factor, W*factor, 3) of the same dtype: by the named model
        (then resized to the exact factor when the model's own scale differs), or by a Lanczos resize when
        ``upscaler_id`` is None."""
        h, w = rgb.shape[:2]
        target = Size(w * factor, h * factor)
        if upscaler_id is None:
            return resize_colour(rgb, target)
        found = self._found.get(upscaler_id)
        if found is None:
            ids = ", ".join(self._found) or "none (plain resize only)"
            raise EngineError(errors.UNKNOWN_MODEL, f"unknown upscaler {upscaler_id[:120]!r}; available: {ids}",
                              "upscale.upscaler")
        with self._lock:
            if self._loaded is None or self._loaded[0] != upscaler_id:
                self._loaded = None  # free the previous model first
                self._loaded = (upscaler_id, load_model(found.path, self.device))
            descriptor = self._loaded[1]
        out = run_model(descriptor, rgb, cancel)
        return out if out.shape[:2] == (target.height, target.width) else resize_colour(out, target)
