"""Z-Image (Base and Turbo): a single-stream DiT on 16 latent channels in 2x2 patches, flow matching, a Qwen3
text encoder (chat-templated prompts); Base uses classifier-free guidance, Turbo runs ~9 steps at guidance 0."""

from __future__ import annotations

from .base import Family, Recommended

Z_IMAGE = Family(
    name="z_image", label="Z-Image", img2img="ZImageImg2ImgPipeline", inpaint="ZImageInpaintPipeline",
    inpaint_model="ZImageInpaintPipeline", denoiser="transformer", latent_channels=16, vae_scale=8, resolution=1024,
    size_multiple=16, guidance="cfg", schedule="flow", recommended=Recommended(9, 0.0, "euler"), memory="large",
    tiled=False, live=True, lora_layouts=(), prompt_encoding="z_image", layouts=("diffusers",),
)

FOLDER_CLASSES = {
    "ZImagePipeline": (Z_IMAGE,), "ZImageImg2ImgPipeline": (Z_IMAGE,), "ZImageInpaintPipeline": (Z_IMAGE,),
}
