"""The family table: one module per model family, one ``Family`` row each (see base.py for the columns).

A new family is a module here and a line in ``_MODULES``; generic code asks ``family(name)`` or
``families_for_folder(class_name)`` and never branches on a family's name.
"""

from __future__ import annotations

from underpaint.protocol import errors

from ..interface import EngineError
from . import chroma, flux, qwen_image, sd, sd3, z_image
from .base import Family, Recommended

__all__ = ["FAMILIES", "Family", "Recommended", "family", "folder_candidates", "vae_latent_channels"]

_MODULES = (sd, sd3, flux, chroma, z_image, qwen_image)
FAMILIES: dict[str, Family] = {
    row.name: row for row in (sd.SD1, sd.SD2, sd.SDXL, sd.DEMO, sd3.SD3, flux.FLUX1, chroma.CHROMA, z_image.Z_IMAGE,
                               qwen_image.QWEN_IMAGE)
}
_FOLDER_CLASSES: dict[str, tuple[Family, ...]] = {k: v for m in _MODULES for k, v in m.FOLDER_CLASSES.items()}


def family(name: str) -> Family:
    """The row of ``name``; EngineError(model_load_failed) for a family this server does not know."""
    row = FAMILIES.get(name)
    if row is None:
        raise EngineError(errors.MODEL_LOAD_FAILED, f"unsupported model family {name!r}; this server knows "
                          f"{', '.join(FAMILIES)}")
    return row


def folder_candidates(class_name: str) -> tuple[Family, ...]:
    """The families a diffusers folder whose model_index.json names ``class_name`` may hold (none: unsupported)."""
    return _FOLDER_CLASSES.get(class_name, ())


def vae_latent_channels(vae_config: dict, row: Family) -> int:
    """A VAE config's latent channels: ``latent_channels``, or ``z_dim`` (the 3-D causal VAEs); the row's if
    neither is given."""
    return int(vae_config.get("latent_channels") or vae_config.get("z_dim") or row.latent_channels)
