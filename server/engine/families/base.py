"""What a model family is to the generic engine: one frozen row per family, declared in its own module.

Generic code (registry, loader, single_file, diffusers_engine, previews) asks the row and never branches on a
family's name. Values describe the released models (native size, VAE downscale); a model's own configs win
where they differ (a tiny test model, a fine-tune at another size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAYOUTS = ("builtin", "diffusers", "single_file", "split")  # how the registry finds models (ModelSpec.source)
GUIDANCE_KINDS = ("cfg", "distilled")  # classifier-free guidance (negative prompt used) | a distilled guidance input
SCHEDULES = ("eps", "flow")  # noise-prediction (DDPM family) | flow matching (rectified flow)
MEMORY_CLASSES = ("small", "medium", "large", "huge")  # < 4 GB, < 8 GB, < 16 GB, >= 16 GB of bf16/fp16 weights


@dataclass(frozen=True)
class Recommended:
    """Settings a host starts from for this family."""

    steps: int
    guidance: float
    sampler: str


@dataclass(frozen=True)
class TextEncoderPart:
    """One text encoder of a split layout: which pipeline components it fills and how its file is told."""

    component: str  # the pipeline component, e.g. "text_encoder_2"
    kind: str  # "clip" | "t5": the key layout split_files recognises
    names: tuple[str, ...]  # file names that start with one of these win when several files fit ("t5xxl")
    tokenizer: str  # the pipeline's tokenizer component for it
    comfy_tokenizer: str  # ComfyUI's folder of that tokenizer under ``comfy/`` (e.g. "t5_tokenizer")


@dataclass(frozen=True)
class SplitLayout:
    """How a family's transformer file is recognised and what it needs beside it (ComfyUI's
    ``diffusion_models``/``unet`` + ``text_encoders``/``clip`` + ``vae``; see split_files)."""

    signatures: tuple[str, ...]  # a transformer file holds one of these keys (after a "model.diffusion_model.")
    input_keys: tuple[str, ...]  # its input projection (in-features: plain or dedicated inpaint)
    guidance_keys: tuple[str, ...]  # present: a model with a distilled guidance input
    text_encoders: tuple[TextEncoderPart, ...]
    vae_names: tuple[str, ...]  # VAE file names that win when several fit
    configs: tuple[str, str, str]  # shipped config folders: with guidance, without, dedicated inpaint


@dataclass(frozen=True)
class Family:
    """A model family's row of the table; ``families.FAMILIES`` holds every row by ``name``."""

    name: str  # the ModelSpec.family value, e.g. "sd1", "flux1"
    label: str  # for people: "SD 1.x", "Flux.1"
    img2img: str  # diffusers pipeline class names
    inpaint: str  # an inpaint pipeline that works with the plain denoiser (masked img2img)
    inpaint_model: str  # the pipeline for a dedicated inpaint denoiser (SD 9-channel UNet, Flux Fill)
    denoiser: str  # the pipeline component that denoises: "unet" | "transformer"
    latent_channels: int
    vae_scale: int  # pixels per latent pixel
    resolution: int  # native side in pixels
    size_multiple: int  # image sides must be multiples of this (the engine edge-pads up to it)
    guidance: str  # one of GUIDANCE_KINDS
    schedule: str  # one of SCHEDULES: which samplers.SCHEDULERS table maps its samplers
    recommended: Recommended
    memory: str  # one of MEMORY_CLASSES
    layouts: tuple[str, ...] = ("diffusers",)  # the LAYOUTS the registry and loaders handle for this family
    tiled: bool = True  # full-resolution tiled refine (engine.tiled blends UNet noise predictions)
    live: bool = True  # live frames (plain img2img jobs, tiny VAE when one fits)
    lora_layouts: tuple[str, ...] = ()  # LoRA key layouts mapped onto this family (engine.lora); () = refused
    # keyword arguments every from_pretrained/from_single_file/from_pipe of this family gets
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    # the text encoders' call (embeddings.ENCODERS): "clip" (SD/SDXL, with a negative prompt), "sd3" (three
    # encoders, with a negative prompt), "flux" (no negative prompt), "chroma" (T5 only, with a negative prompt)
    prompt_encoding: str = "clip"
    # latent channel -> RGB projection (channels x 3 weights, bias) for previews; None: a neutral projection
    latent_rgb: tuple[np.ndarray, np.ndarray] | None = None
    # the shipped single-file config folders (server/data/configs): (plain, inpaint-model); "" = none shipped
    configs: tuple[str, str] = ("", "")
    packed_latents: bool = False  # latents travel as 2x2 patches (B, h*w/4, C*4): previews unpack them
    # the denoiser's text-embedding width (UNet cross_attention_dim) where it tells apart families that share
    # pipeline classes (SD 1.x 768, SD 2.x 1024); None: the pipeline class alone decides
    text_width: int | None = None
    # per latent pixel, what a dedicated inpaint denoiser takes for the mask beside latents + masked-image latents
    # (SD's 9-channel UNet: 1; Flux Fill: the 8x8 pixel mask, 64)
    mask_channels: int = 1
    inpaint_resolution: int | None = None  # the dedicated inpaint model's native side where it differs
    # single files of one layout come at two sizes and predictions (SD 2.x 768-v, 512 base): guess from the name
    size_from_name: bool = False
    lora_unet_config: bool = False  # its LoRA loader maps SGM block names with the UNet's config (SDXL)
    split: SplitLayout | None = None  # loadable from split files (layouts has "split")
    guidance_kwarg: str = "guidance_scale"  # the pipeline argument a job's guidance goes to ("true_cfg_scale")
    # config values the denoiser lacks but the family's pipelines read (set at load where missing)
    denoiser_config_defaults: dict[str, Any] = field(default_factory=dict)

    def denoiser_inputs(self, latent_channels: int) -> tuple[int, int]:
        """(plain, dedicated-inpaint) denoiser input channels for a VAE with ``latent_channels``."""
        patch = 4 if self.packed_latents else 1
        plain = latent_channels * patch
        return plain, 2 * plain + self.mask_channels * patch

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.guidance, GUIDANCE_KINDS, "guidance"), (self.schedule, SCHEDULES,
                                     "schedule"), (self.memory, MEMORY_CLASSES, "memory")):
            if value not in allowed:
                raise ValueError(f"family {self.name}: {what} {value!r} is not one of {allowed}")
        if ("split" in self.layouts) != (self.split is not None):
            raise ValueError(f"family {self.name}: the 'split' layout and a SplitLayout go together")
        if not set(self.layouts) <= set(LAYOUTS):
            raise ValueError(f"family {self.name}: layouts {self.layouts} are not all in {LAYOUTS}")
        if self.resolution % self.size_multiple or self.size_multiple % self.vae_scale:
            raise ValueError(f"family {self.name}: resolution, size multiple and VAE scale do not divide")
