"""The diffusers implementation of Engine: img2img and inpainting on one local device."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from underpaint.protocol import errors

from .embeddings import for_batch
from .families import FAMILIES, Family, family
from .interface import (
    PIPELINES,
    CancelToken,
    Engine,
    EngineError,
    GenerationRequest,
    JobCancelled,
    LoraSpec,
    ModelSpec,
    StepInfo,
    denoising_steps,
)
from .loader import (
    PipelineCache,
    Pipelines,
    free_accelerator_memory,
    is_inpaint_model,
    is_out_of_memory,
    load_pipelines,
    pick_device,
)
from .lora import LoraRegistry, LoraSource, resolve, signature
from .model_source import ModelSource
from .previews import X0Capture, render_latent_preview, unpack_latents
from .samplers import SCHEDULERS, call_kwargs, check_steps, count_steps
from .tiled import run_tiled
from .tiny_vae import TinyVaes
from .warm import warm_state

_SEED_MOD = 2**64


class Registry(Protocol):
    def specs(self) -> list[ModelSpec]: ...
    def get(self, model_id: str) -> ModelSpec: ...
    def source(self, model_id: str) -> ModelSource: ...
    def default_id(self) -> str: ...


def steps_to_run(scheduler: Any, steps: int, strength: float, schedule: str = "eps") -> int:
    """How many denoising steps the pipeline will run, computed as diffusers' ``get_timesteps`` does."""
    return count_steps(schedule, scheduler, steps, strength)


def pad_to_multiple(image: np.ndarray, multiple: int, fill: int | None = None) -> np.ndarray:
    """``image`` grown at the bottom and right to sides that are multiples of ``multiple``: edge pixels
    repeated, or ``fill`` (a mask's "keep"). The engine crops the result back to the input's size."""
    h, w = image.shape[:2]
    pad = ((0, -h % multiple), (0, -w % multiple)) + ((0, 0),) * (image.ndim - 2)
    if not any(p for _, p in pad):
        return image
    return np.pad(image, pad, mode="edge") if fill is None else np.pad(image, pad, constant_values=fill)


def validate_request(request: GenerationRequest, spec: ModelSpec) -> None:
    """Raise EngineError with the offending field for anything the pipelines cannot run."""
    if request.kind not in PIPELINES:
        raise EngineError(errors.BAD_VALUE, f"unknown pipeline {request.kind!r}; expected one of {PIPELINES}", "kind")
    if request.kind not in spec.capabilities:
        raise EngineError(errors.UNSUPPORTED, f"model {spec.id!r} does not support {request.kind}", "kind")
    image = request.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise EngineError(errors.BAD_VALUE, "image must be an (H, W, 3) uint8 array", "image")
    h, w = image.shape[:2]
    if h < 8 or w < 8 or h % 8 or w % 8:
        raise EngineError(errors.BAD_VALUE, f"image size {w}x{h} must be positive multiples of 8", "image")
    if request.kind == "inpaint":
        mask = request.mask
        if mask is None:
            raise EngineError(errors.BAD_VALUE, "inpaint needs a mask", "mask")
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
            raise EngineError(errors.BAD_VALUE, "mask must be an (H, W) uint8 array", "mask")
        if mask.shape != (h, w):
            raise EngineError(errors.SIZE_MISMATCH, f"mask is {mask.shape[1]}x{mask.shape[0]}, image {w}x{h}", "mask")
        if not (mask >= 128).any():
            raise EngineError(errors.EMPTY_MASK, "the mask selects nothing to repaint", "mask")
    if not 0.0 < request.strength <= 1.0:
        raise EngineError(errors.OUT_OF_RANGE, f"strength {request.strength} must be in (0, 1]", "strength")
    if request.steps < 1:
        raise EngineError(errors.OUT_OF_RANGE, f"steps {request.steps} must be >= 1", "steps")
    if denoising_steps(request.steps, request.strength) < 1:
        raise EngineError(
            errors.OUT_OF_RANGE,
            f"strength {request.strength} x {request.steps} steps leaves no denoising step",
            "strength",
        )
    if request.batch < 1:
        raise EngineError(errors.OUT_OF_RANGE, f"batch {request.batch} must be >= 1", "batch")
    check_steps(request.sampler, request.steps)
    if request.guidance < 0:
        raise EngineError(errors.OUT_OF_RANGE, f"guidance {request.guidance} must be >= 0", "guidance")
    if request.seed < 0:
        raise EngineError(errors.OUT_OF_RANGE, f"seed {request.seed} must be >= 0", "seed")
    row = FAMILIES.get(spec.family)
    if request.tiled and row is not None and not row.tiled:
        raise EngineError(errors.UNSUPPORTED, f"{row.label} models cannot refine in tiles at full resolution (the "
                          "tiled refine blends UNet noise predictions); choose the 'fit' resolution", "resolution")


def job_pipeline(base: Any, scheduler: Any, vae: Any | None = None) -> Any:
    """A pipeline sharing ``base``'s models but owning ``scheduler`` (and ``vae`` if given); no weight copies."""
    _, optional = base._get_signature_keys(base)
    extra = {k: base.config[k] for k in optional if k in base.config}
    if "add_watermarker" in optional:
        extra["add_watermarker"] = False  # SDXL: never stamp a painter's layer
    own = {"scheduler": scheduler, **({"vae": vae} if vae is not None else {})}
    pipe = type(base)(**{**base.components, **own}, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _unpacked(latents: Any, row: Family, height: int, width: int, vae_scale: int) -> Any:
    """A step's latents as (B, C, h, w) for an image ``height`` x ``width`` (packed families unpack them)."""
    if row.packed_latents and latents.ndim == 3:
        return unpack_latents(latents, height, width, vae_scale)
    return latents


class DiffusersEngine(Engine):
    def __init__(
        self,
        registry: Registry,
        device: str | None = None,
        cache_bytes: int | None = None,
        *,
        precision: str | None = None,
        channels_last: bool = False,
        compile_unet: bool = False,
        loras: LoraRegistry | None = None,
        tiny_vaes: TinyVaes | None = None,
    ) -> None:
        import torch

        self._registry = registry
        self.device, self.dtype = pick_device(device, precision)
        if cache_bytes is None:
            on_cuda = self.device.startswith("cuda")
            cache_bytes = torch.cuda.get_device_properties(self.device).total_memory // 2 if on_cuda else 16 << 30
        self.cache = PipelineCache(cache_bytes)
        self._channels_last = channels_last
        self._compile_unet = compile_unet
        self.loras = loras
        self.tiny_vaes = tiny_vaes

    def list_models(self) -> list[ModelSpec]:
        return self._registry.specs()

    def default_model(self) -> str:
        return self._registry.default_id()

    def samplers(self) -> tuple[str, ...]:
        return tuple(SCHEDULERS)

    def list_loras(self) -> list[LoraSpec]:
        return self.loras.specs() if self.loras else []

    def device_name(self) -> str:
        import torch

        precision = str(self.dtype).removeprefix("torch.")
        if self.device.startswith("cuda"):
            return f"{self.device} {torch.cuda.get_device_name(self.device)} ({precision})"
        return f"{self.device} ({precision})"

    def pipelines(self, model_id: str) -> Pipelines:
        """The loaded pipelines of a model (loading it if needed); also usable for warm-up."""
        return self._load(self._registry.source(model_id))

    def preload(self, model_id: str) -> None:
        self.pipelines(model_id)

    def _load(self, source: ModelSource) -> Pipelines:
        spec = source.spec

        def load() -> Pipelines:
            return load_pipelines(
                source, self.device, self.dtype, channels_last=self._channels_last, compile_unet=self._compile_unet
            )

        for attempt in (1, 2):
            try:
                return self.cache.get(spec.id, load)
            except EngineError:
                raise
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise EngineError(errors.MODEL_LOAD_FAILED, f"could not load model {spec.id!r}: {exc}") from exc
                if attempt == 2 or not self.cache.keys():
                    free_accelerator_memory()
                    raise EngineError(errors.OUT_OF_MEMORY, f"not enough memory to load {spec.id!r}") from exc
                self.cache.clear()  # other models were resident: drop them and retry alone once
        raise AssertionError("unreachable")

    def generate(
        self, request: GenerationRequest, on_step: Callable[[StepInfo], None], cancel: CancelToken
    ) -> list[np.ndarray]:
        cancel.raise_if_cancelled()
        source = self._registry.source(request.model)
        spec = source.spec
        validate_request(request, spec)
        loras = resolve(self.loras, request.loras)
        pipes = self._load(source)
        cancel.raise_if_cancelled()
        try:
            with warm_state(pipes).lock:
                return self._run(pipes, request, on_step, cancel, loras)
        except (JobCancelled, EngineError):
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                free_accelerator_memory()
                raise EngineError(errors.OUT_OF_MEMORY, f"out of memory running {spec.id!r}: {exc}") from exc
            raise EngineError(errors.INTERNAL, f"generation failed: {type(exc).__name__}: {exc}") from exc

    def _run(
        self,
        pipes: Pipelines,
        request: GenerationRequest,
        on_step: Callable[[StepInfo], None],
        cancel: CancelToken,
        loras: list[tuple[LoraSource, float]],
    ) -> list[np.ndarray]:
        import torch
        from PIL import Image

        row = family(pipes.spec.family)
        h, w = request.image.shape[:2]
        img2img_unusable = pipes.img2img is None or is_inpaint_model(pipes.img2img, row.name)
        use_inpaint = request.kind == "inpaint" or img2img_unusable
        base = pipes.inpaint if use_inpaint else pipes.img2img
        family_name = pipes.spec.family
        warm = warm_state(pipes)
        if row.lora_layouts:
            warm.loras.apply(base, [p for p in (pipes.img2img, pipes.inpaint) if p is not None], family_name, loras)
        elif loras:
            raise EngineError(errors.INCOMPATIBLE_LORA, f"{row.label} models take no LoRAs on this server yet",
                              "loras[0].id")
        tiny = None
        if request.tiny_vae and self.tiny_vaes is not None:
            tiny = self.tiny_vaes.get(family_name, base.vae, self.device, self.dtype)
        scheduler = warm.scheduler(base, request.sampler, row.schedule, row.label)
        capture = X0Capture(scheduler)
        pipe = warm.pipeline(base, scheduler, tiny, job_pipeline)
        total = warm.total(base, request.sampler, request.steps, request.strength,
                           lambda sched, steps, strength: count_steps(row.schedule, sched, steps, strength))
        embeds, per_prompt = for_batch(warm.embeddings.kwargs(
            base, request.prompt, request.negative_prompt or None, signature(loras), row.prompt_encoding),
            row.prompt_encoding, request.batch)
        policy, last_preview = request.preview, None
        on_step(StepInfo(step=0, total=total))
        if request.tiled:  # the image's own size, in model-sized tiles
            mask = None
            if use_inpaint:
                mask = request.mask if request.kind == "inpaint" else np.full((h, w), 255, np.uint8)
            return run_tiled(pipe, request, mask, family_name, total, capture, on_step, cancel,
                             pipes.spec.resolution)
        image = pad_to_multiple(request.image, row.size_multiple)
        ph, pw = image.shape[:2]

        def on_step_end(_pipe: Any, i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal last_preview
            step, preview, now = i + 1, None, time.monotonic()
            if policy.wants(step, total, None if last_preview is None else now - last_preview):
                latents = capture.x0 if capture.x0 is not None else tensors["latents"]
                scale = getattr(_pipe, "vae_scale_factor", row.vae_scale)
                latents = _unpacked(latents, row, ph, pw, scale)
                if (ph, pw) != (h, w):  # not the edge padding
                    latents = latents[..., : -(-h // scale), : -(-w // scale)]
                preview, last_preview = render_latent_preview(latents, row.name, policy.max_side), now
            on_step(StepInfo(step=step, total=total, preview=preview))
            cancel.raise_if_cancelled()
            return {}

        kwargs: dict[str, Any] = {
            **embeds,
            # One image per batch item: every pipeline then VAE-encodes item i with generator i, so image i
            # matches a single run with seed + i (SD's img2img repeats one image itself; Flux's does not).
            "image": [Image.fromarray(image)] * request.batch,
            "strength": request.strength,
            "num_inference_steps": request.steps,
            row.guidance_kwarg: request.guidance,
            "num_images_per_prompt": per_prompt,
            "generator": [
                torch.Generator(device="cpu").manual_seed((request.seed + i) % _SEED_MOD) for i in range(request.batch)
            ],
            "output_type": "np",
            "callback_on_step_end": on_step_end,
            **call_kwargs(request.sampler),
        }
        if "height" in inspect.signature(type(pipe).__call__).parameters:
            kwargs.update(height=ph, width=pw)  # pipelines that would otherwise generate at their default size
        if use_inpaint:
            if request.kind == "inpaint":
                mask = np.where(request.mask >= 128, 255, 0).astype(np.uint8)
            else:
                mask = np.full((h, w), 255, np.uint8)  # img2img on an inpaint-only model
            kwargs.update(
                mask_image=[Image.fromarray(pad_to_multiple(mask, row.size_multiple, fill=0))] * request.batch,
            )
        with torch.inference_mode():
            images = pipe(**kwargs).images
        out = (np.asarray(images) * 255).round().astype(np.uint8)[:, :h, :w]  # as diffusers' numpy_to_pil
        if out.shape != (request.batch, h, w, 3):
            raise EngineError(errors.INTERNAL, f"pipeline returned {out.shape}, expected {(request.batch, h, w, 3)}")
        return list(out)
