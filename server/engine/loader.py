"""Loading a model's pipelines, picking the device, and a memory-bounded pipeline cache.

Each model gets an img2img and an inpaint pipeline sharing every component (``from_pipe``).
A 9-channel inpainting model cannot run the img2img pipeline: its ``Pipelines.img2img`` is None and
the engine runs img2img jobs through the inpaint pipeline with a full mask (the UNet then sees a blank
masked image, while ``strength`` < 1 still starts from the noised input image).
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from .families import family, vae_latent_channels
from .interface import EngineError, ModelSpec
from .model_source import ModelSource
from .pipelines import Pipelines, dtype_kwarg, is_out_of_memory, pipeline_nbytes
from .split_files import load_split

PRECISIONS = ("fp16", "bf16", "fp32")


def pick_device(override: str | None = None, precision: str | None = None) -> tuple[str, Any]:
    """(device, torch dtype): CUDA fp16 (bf16 if asked), MPS fp16, else CPU fp32.

    ``override`` is "auto"/None, "cpu", "mps", "cuda" or "cuda:N"; ``precision`` one of PRECISIONS.
    """
    import torch

    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    choice = (override or "auto").strip().lower()
    mps_ok = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} requested but CUDA is not available")
        index = choice.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"no CUDA device {choice!r}; {torch.cuda.device_count()} visible")
        default = "fp16"
    elif choice == "mps":
        if not mps_ok:
            raise ValueError("device 'mps' requested but MPS is not available")
        default = "fp16"
    elif choice == "cpu":
        default = "fp32"
    else:
        raise ValueError(f"unknown device {override!r}; expected auto, cpu, mps, cuda or cuda:N")
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    return choice, dtypes[precision or default]


def free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if hasattr(torch, "mps") and hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def _classes(name: str) -> tuple[Any, Any, Any]:
    """The family's (img2img, inpaint, dedicated-inpaint-model) pipeline classes."""
    import diffusers

    row = family(name)
    return getattr(diffusers, row.img2img), getattr(diffusers, row.inpaint), getattr(diffusers, row.inpaint_model)


def _variant(folder: Path, denoiser: str = "unet") -> str | None:
    """The variant to ask for: fp16 when the denoiser ships only fp16-variant weights, else None."""
    unet = folder / denoiser
    plain = list(unet.glob("diffusion_pytorch_model.safetensors")) + list(unet.glob("*.bin"))
    return "fp16" if not plain and list(unet.glob("*.fp16.safetensors")) else None


def is_inpaint_model(pipe: Any, name: str) -> bool:
    """Whether ``pipe``'s denoiser is a dedicated inpaint model (takes mask and masked image beside latents)."""
    row = family(name)
    config = getattr(pipe, row.denoiser).config
    return config.in_channels == row.denoiser_inputs(vae_latent_channels(dict(pipe.vae.config), row))[1]


def _load_folder(spec: ModelSpec, folder: Path, dtype: Any) -> tuple[Any, Any]:
    img2img_cls, inpaint_cls, inpaint_model_cls = _classes(spec.family)
    if not (folder / "model_index.json").is_file():
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: no diffusers model_index.json in {folder}")
    row = family(spec.family)
    common = {**dtype_kwarg(dtype), "local_files_only": True, "variant": _variant(folder, row.denoiser)}
    common.update(row.load_kwargs)
    if spec.inpaint:
        return None, inpaint_model_cls.from_pretrained(str(folder), **common)
    img2img = img2img_cls.from_pretrained(str(folder), **common)
    if is_inpaint_model(img2img, spec.family):  # registry said regular, weights say inpaint
        return None, inpaint_model_cls.from_pipe(img2img, **dtype_kwarg(dtype))
    return img2img, inpaint_cls.from_pipe(img2img, **dtype_kwarg(dtype))


def _load_demo(source: ModelSource, dtype: Any) -> tuple[Any, Any]:
    from diffusers import UNet2DConditionModel

    from .demo_model import INPAINT_SUBFOLDER, ensure_demo_model

    folder = ensure_demo_model(source.path.parent if source.path else None)
    img2img_cls, _, inpaint_cls = _classes(source.spec.family)
    img2img = img2img_cls.from_pretrained(
        str(folder), local_files_only=True, **dtype_kwarg(dtype), **family(source.spec.family).load_kwargs
    )
    unet9 = UNet2DConditionModel.from_pretrained(
        str(folder), subfolder=INPAINT_SUBFOLDER, local_files_only=True, **dtype_kwarg(dtype)
    ).eval()
    return img2img, inpaint_cls.from_pipe(img2img, unet=unet9, **dtype_kwarg(dtype))


def _prepare(pipes: Pipelines, device: str, channels_last: bool, compile_unet: bool) -> None:
    import torch

    row = family(pipes.spec.family)
    for pipe in (pipes.img2img, pipes.inpaint):
        if pipe is None:
            continue
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        denoiser = getattr(pipe, row.denoiser)
        missing = {k: v for k, v in row.denoiser_config_defaults.items() if k not in denoiser.config}
        if missing:
            denoiser.register_to_config(**missing)
        if channels_last and row.denoiser == "unet":  # a 4-D convolutional denoiser
            denoiser.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        if compile_unet and not getattr(denoiser, "_underpaint_compiled", False):
            denoiser.compile()  # in place: shared by both pipelines
            denoiser._underpaint_compiled = True


def load_pipelines(
    source: ModelSource, device: str, dtype: Any, *, channels_last: bool = False, compile_unet: bool = False
) -> Pipelines:
    """Load a model onto ``device``. Failures (other than out-of-memory) raise model_load_failed."""
    spec = source.spec
    try:
        if spec.source == "single_file":
            from .single_file import load_single_file

            pipes = load_single_file(source, device, dtype)
        else:
            if spec.source == "builtin":
                img2img, inpaint = _load_demo(source, dtype)
            elif spec.source == "split":
                img2img, inpaint = load_split(source, dtype)
            elif spec.source == "diffusers":
                if source.path is None:
                    raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: diffusers model without a path")
                img2img, inpaint = _load_folder(spec, Path(source.path), dtype)
            else:
                raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: unknown model source {spec.source!r}")
            pipes = Pipelines(spec=spec, img2img=img2img, inpaint=inpaint)
        _prepare(pipes, device, channels_last, compile_unet)
    except EngineError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        raise EngineError(errors.MODEL_LOAD_FAILED, f"could not load model {spec.id!r}: {exc}") from exc
    pipes.nbytes = pipes.nbytes or pipeline_nbytes(pipes.img2img, pipes.inpaint)
    return pipes


class PipelineCache:
    """Thread-safe LRU of loaded Pipelines bounded by their parameter bytes.

    The most recently used entry is always kept, even if it alone exceeds ``max_bytes``.
    Loads run under the cache lock: one model loads at a time.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Pipelines] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: str, load: Callable[[], Pipelines]) -> Pipelines:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            pipes = load()
            self._items[key] = pipes
            self._evict()
            return pipes

    def _evict(self) -> None:
        evicted = False
        while len(self._items) > 1 and self.total_bytes() > self.max_bytes:
            self._items.popitem(last=False)
            evicted = True
        if evicted:
            free_accelerator_memory()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            free_accelerator_memory()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(p.nbytes for p in self._items.values())

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items
