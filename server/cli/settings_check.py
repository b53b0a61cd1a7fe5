"""Checks the command line makes before it starts anything: the models folders hold a model to serve."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError
from ..engine.families import FAMILIES
from ..engine.registry import ModelRegistry

LOOKED_FOR = ("diffusers folders (model_index.json), .safetensors checkpoints and ComfyUI split files of "
              + ", ".join(row.label for row in FAMILIES.values() if "builtin" not in row.layouts))


def models_registry(dirs: list[Path] | tuple[Path, ...], allow_pickle: bool = False) -> ModelRegistry:
    """The registry of ``dirs``; with no folder given, the built-in demo model alone.

    A folder that does not exist, or folders without one usable model, are a ConfigError naming the folder and
    what was looked for (the demo model never stands in for models the operator asked for).
    """
    dirs = [Path(d).expanduser() for d in dirs]
    for folder in dirs:
        if not folder.exists():
            raise ConfigError(f"models folder {folder} does not exist (looked for {LOOKED_FOR})")
    registry = ModelRegistry(dirs, allow_pickle=allow_pickle, include_demo=not dirs)
    if not registry.specs():
        skipped = registry.skipped()
        why = ""
        if skipped:
            shown = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
            why = f"; skipped {len(skipped)} file(s): {shown}" + ("; ..." if len(skipped) > 3 else "")
        where = ", ".join(str(d) for d in dirs)
        raise ConfigError(f"no usable model in {where} (looked for {LOOKED_FOR}{why})")
    return registry
