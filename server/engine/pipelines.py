"""Loaded pipelines of one model (``Pipelines``), their size in bytes, and what counts as out of memory.

Shared by the loaders (``loader`` for folders and the demo model, ``single_file`` for checkpoints) so that
neither imports the other's module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .interface import ModelSpec


@dataclass
class Pipelines:
    """Loaded diffusers pipelines of one model, sharing components."""

    spec: ModelSpec
    img2img: Any
    inpaint: Any
    nbytes: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # per-model state of the engine (engine.warm)


def pipeline_nbytes(*pipes: Any) -> int:
    """Bytes of the distinct parameters and buffers of the pipelines' torch modules."""
    import torch

    seen: set[tuple[int, int]] = set()
    total = 0
    for pipe in pipes:
        if pipe is None:
            continue
        for module in pipe.components.values():
            if not isinstance(module, torch.nn.Module):
                continue
            for tensor in [*module.parameters(), *module.buffers()]:
                key = (tensor.data_ptr(), tensor.numel())
                if key not in seen:
                    seen.add(key)
                    total += tensor.numel() * tensor.element_size()
    return total


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(exc, oom_type) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """``dtype=`` on diffusers that deprecated ``torch_dtype=``, else ``torch_dtype=``."""
    from diffusers.utils import deprecation_utils

    return {"dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype": dtype}
