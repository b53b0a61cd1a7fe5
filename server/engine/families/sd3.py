"""Stable Diffusion 3 / 3.5 (Medium, Large, Large Turbo): an MMDiT on 16 latent channels in 2x2 patches, flow
matching, classifier-free guidance with a negative prompt, three text encoders (CLIP-L, OpenCLIP-G, T5-XXL)."""

from __future__ import annotations

from .base import Family, Recommended

SD3 = Family(
    name="sd3", label="SD 3.5", img2img="StableDiffusion3Img2ImgPipeline", inpaint="StableDiffusion3InpaintPipeline",
    inpaint_model="StableDiffusion3InpaintPipeline", denoiser="transformer", latent_channels=16, vae_scale=8,
    resolution=1024, size_multiple=16, guidance="cfg", schedule="flow", recommended=Recommended(28, 4.5, "euler"),
    memory="large", tiled=False, live=True, lora_layouts=(), prompt_encoding="sd3", layouts=("diffusers",),
)

FOLDER_CLASSES = {
    "StableDiffusion3Pipeline": (SD3,), "StableDiffusion3Img2ImgPipeline": (SD3,),
    "StableDiffusion3InpaintPipeline": (SD3,),
}
