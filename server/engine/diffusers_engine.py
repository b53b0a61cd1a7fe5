"""The diffusers implementation of Engine: img2img and inpainting on one local device."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .interface import (
    KINDS,
    Engine,
    EngineError,
    GenerationRequest,
    JobCancelled,
    ModelSpec,
    Pipelines,
    StepInfo,
    denoising_steps,
)
from .loader import PipelineCache, free_accelerator_memory, is_out_of_memory, load_pipelines, pick_device
from .previews import X0Capture, render_latent_preview
from .samplers import make_scheduler

_SEED_MOD = 2**64


class Registry(Protocol):
    def specs(self) -> list[ModelSpec]: ...
    def get(self, model_id: str) -> ModelSpec: ...
    def default_id(self) -> str: ...


def steps_to_run(scheduler: Any, steps: int, strength: float) -> int:
    """How many denoising steps the pipeline will run, computed as diffusers' ``get_timesteps`` does.

    Works on a copy: the job's own scheduler is set up by the pipeline itself.
    """
    probe = type(scheduler).from_config(scheduler.config)
    probe.set_timesteps(steps)
    start = steps - denoising_steps(steps, strength)
    return len(probe.timesteps[start * probe.order :])


def validate_request(request: GenerationRequest, spec: ModelSpec) -> None:
    """Raise EngineError with the offending field for anything the pipelines cannot run."""
    if request.kind not in KINDS:
        raise EngineError("bad_value", f"unknown kind {request.kind!r}; expected one of {KINDS}", "kind")
    if request.kind not in spec.capabilities:
        raise EngineError("unsupported", f"model {spec.id!r} does not support {request.kind}", "kind")
    image = request.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise EngineError("bad_value", "image must be an (H, W, 3) uint8 array", "image")
    h, w = image.shape[:2]
    if h < 8 or w < 8 or h % 8 or w % 8:
        raise EngineError("bad_value", f"image size {w}x{h} must be positive multiples of 8", "image")
    if request.kind == "inpaint":
        mask = request.mask
        if mask is None:
            raise EngineError("bad_value", "inpaint needs a mask", "mask")
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
            raise EngineError("bad_value", "mask must be an (H, W) uint8 array", "mask")
        if mask.shape != (h, w):
            raise EngineError("size_mismatch", f"mask is {mask.shape[1]}x{mask.shape[0]}, image {w}x{h}", "mask")
        if not (mask >= 128).any():
            raise EngineError("empty_mask", "the mask selects nothing to repaint", "mask")
    if not 0.0 < request.strength <= 1.0:
        raise EngineError("out_of_range", f"strength {request.strength} must be in (0, 1]", "strength")
    if request.steps < 1:
        raise EngineError("out_of_range", f"steps {request.steps} must be >= 1", "steps")
    if denoising_steps(request.steps, request.strength) < 1:
        raise EngineError(
            "out_of_range",
            f"strength {request.strength} x {request.steps} steps leaves no denoising step",
            "strength",
        )
    if request.batch < 1:
        raise EngineError("out_of_range", f"batch {request.batch} must be >= 1", "batch")
    if request.guidance < 0:
        raise EngineError("out_of_range", f"guidance {request.guidance} must be >= 0", "guidance")
    if request.seed < 0:
        raise EngineError("out_of_range", f"seed {request.seed} must be >= 0", "seed")


def job_pipeline(base: Any, scheduler: Any) -> Any:
    """A throwaway pipeline sharing ``base``'s models but owning ``scheduler`` (no weight copies)."""
    _, optional = base._get_signature_keys(base)
    extra = {k: base.config[k] for k in optional if k in base.config}
    if "add_watermarker" in optional:
        extra["add_watermarker"] = False  # SDXL: never stamp a painter's layer
    pipe = type(base)(**{**base.components, "scheduler": scheduler}, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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

    def list_models(self) -> list[ModelSpec]:
        return self._registry.specs()

    def default_model(self) -> str:
        return self._registry.default_id()

    def device_name(self) -> str:
        import torch

        precision = str(self.dtype).removeprefix("torch.")
        if self.device.startswith("cuda"):
            return f"{self.device} {torch.cuda.get_device_name(self.device)} ({precision})"
        return f"{self.device} ({precision})"

    def pipelines(self, model_id: str) -> Pipelines:
        """The loaded pipelines of a model (loading it if needed); also usable for warm-up."""
        spec = self._registry.get(model_id)
        return self._load(spec)

    def preload(self, model_id: str) -> None:
        self.pipelines(model_id)

    def _load(self, spec: ModelSpec) -> Pipelines:
        def load() -> Pipelines:
            return load_pipelines(
                spec, self.device, self.dtype, channels_last=self._channels_last, compile_unet=self._compile_unet
            )

        for attempt in (1, 2):
            try:
                return self.cache.get(spec.id, load)
            except EngineError:
                raise
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise EngineError("model_load_failed", f"could not load model {spec.id!r}: {exc}") from exc
                if attempt == 2 or not self.cache.keys():
                    free_accelerator_memory()
                    raise EngineError("out_of_memory", f"not enough memory to load {spec.id!r}") from exc
                self.cache.clear()  # other models were resident: drop them and retry alone once
        raise AssertionError("unreachable")

    def generate(
        self, request: GenerationRequest, on_step: Callable[[StepInfo], None], cancel: threading.Event
    ) -> list[np.ndarray]:
        if cancel.is_set():
            raise JobCancelled()
        spec = self._registry.get(request.model)
        validate_request(request, spec)
        pipes = self._load(spec)
        if cancel.is_set():
            raise JobCancelled()
        try:
            return self._run(pipes, request, on_step, cancel)
        except (JobCancelled, EngineError):
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                free_accelerator_memory()
                raise EngineError("out_of_memory", f"out of memory running {spec.id!r}: {exc}") from exc
            raise EngineError("internal", f"generation failed: {type(exc).__name__}: {exc}") from exc

    def _run(
        self,
        pipes: Pipelines,
        request: GenerationRequest,
        on_step: Callable[[StepInfo], None],
        cancel: threading.Event,
    ) -> list[np.ndarray]:
        import torch
        from PIL import Image

        h, w = request.image.shape[:2]
        img2img_unusable = pipes.img2img is None or pipes.img2img.unet.config.in_channels == 9
        use_inpaint = request.kind == "inpaint" or img2img_unusable
        base = pipes.inpaint if use_inpaint else pipes.img2img
        scheduler = make_scheduler(request.sampler, base.scheduler)
        capture = X0Capture(scheduler)
        pipe = job_pipeline(base, scheduler)
        family = pipes.spec.family
        total = steps_to_run(scheduler, request.steps, request.strength)

        def no_preview(_max_side: int) -> np.ndarray:
            raise RuntimeError("no denoising step has run yet")

        on_step(StepInfo(step=0, total=total, render_preview=no_preview))

        def on_step_end(_pipe: Any, i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            source = capture.x0 if capture.x0 is not None else tensors["latents"]
            render = functools.partial(render_latent_preview, source, family)
            on_step(StepInfo(step=i + 1, total=total, render_preview=render))
            if cancel.is_set():
                raise JobCancelled()
            return {}

        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "image": Image.fromarray(request.image),
            "strength": request.strength,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
            "num_images_per_prompt": request.batch,
            "generator": [
                torch.Generator(device="cpu").manual_seed((request.seed + i) % _SEED_MOD) for i in range(request.batch)
            ],
            "output_type": "np",
            "callback_on_step_end": on_step_end,
        }
        if use_inpaint:
            if request.kind == "inpaint":
                mask = np.where(request.mask >= 128, 255, 0).astype(np.uint8)
            else:
                mask = np.full((h, w), 255, np.uint8)  # img2img on a 9-channel-only model
            # One image/mask per batch item: the pipeline then VAE-encodes item i with generator i,
            # so image i matches a single run with seed + i.
            kwargs.update(
                image=[kwargs["image"]] * request.batch,
                mask_image=[Image.fromarray(mask)] * request.batch,
                height=h,
                width=w,
            )
        with torch.inference_mode():
            images = pipe(**kwargs).images
        out = (np.asarray(images) * 255).round().astype(np.uint8)  # as diffusers' numpy_to_pil
        if out.shape != (request.batch, h, w, 3):
            raise EngineError("internal", f"pipeline returned {out.shape}, expected {(request.batch, h, w, 3)}")
        return list(out)
