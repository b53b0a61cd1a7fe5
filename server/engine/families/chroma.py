"""Chroma (Flux.1-schnell derived, T5 only): a Flux-style transformer on 16 packed latent channels, flow
matching, real classifier-free guidance with a negative prompt (not Flux's distilled guidance input)."""

from __future__ import annotations

from .base import Family, Recommended

CHROMA = Family(
    name="chroma", label="Chroma", img2img="ChromaImg2ImgPipeline", inpaint="ChromaInpaintPipeline",
    inpaint_model="ChromaInpaintPipeline", denoiser="transformer", latent_channels=16, vae_scale=8, resolution=1024,
    size_multiple=16, guidance="cfg", schedule="flow", recommended=Recommended(26, 4.0, "euler"), memory="huge",
    tiled=False, live=True, lora_layouts=(), prompt_encoding="chroma", packed_latents=True, layouts=("diffusers",),
    # ChromaInpaintPipeline (diffusers 0.42.1) reads transformer.config.guidance_embeds, which Chroma's
    # transformer does not declare: Chroma has no guidance input
    denoiser_config_defaults={"guidance_embeds": False},
)

FOLDER_CLASSES = {
    "ChromaPipeline": (CHROMA,), "ChromaImg2ImgPipeline": (CHROMA,), "ChromaInpaintPipeline": (CHROMA,),
}
