"""Qwen-Image: a 20B MMDiT on 16 packed latent channels (a 3-D causal VAE), flow matching, a Qwen2.5-VL text
encoder; classifier-free guidance as ``true_cfg_scale``, and only with a negative prompt (as its pipelines do)."""

from __future__ import annotations

from .base import Family, Recommended

QWEN_IMAGE = Family(
    name="qwen_image", label="Qwen-Image", img2img="QwenImageImg2ImgPipeline", inpaint="QwenImageInpaintPipeline",
    inpaint_model="QwenImageInpaintPipeline", denoiser="transformer", latent_channels=16, vae_scale=8,
    resolution=1328, size_multiple=16, guidance="cfg", schedule="flow", recommended=Recommended(30, 4.0, "euler"),
    memory="huge", tiled=False, live=True, lora_layouts=(), prompt_encoding="qwen", packed_latents=True,
    layouts=("diffusers",), guidance_kwarg="true_cfg_scale",
)

FOLDER_CLASSES = {
    "QwenImagePipeline": (QWEN_IMAGE,), "QwenImageImg2ImgPipeline": (QWEN_IMAGE,),
    "QwenImageInpaintPipeline": (QWEN_IMAGE,),
}
