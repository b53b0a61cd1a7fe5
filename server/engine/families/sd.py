"""Stable Diffusion 1.x, 2.x, SDXL and the built-in demo model (a tiny SD 1.x): UNet, 4 latent channels, CFG."""

from __future__ import annotations

import numpy as np

from .base import Family, Recommended

# Latent channel -> RGB weights (4x3) and bias, on latents as the pipeline holds them (VAE-scaled).
# Fitted approximations also used by ComfyUI's latent previewer.
_SD1_RGB = (
    np.array(
        [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]],
        dtype=np.float32,
    ),
    np.zeros(3, np.float32),
)
_SDXL_RGB = (
    np.array(
        [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]],
        dtype=np.float32,
    ),
    np.array([0.1084, -0.0175, -0.0011], np.float32),
)
_NO_CHECKER = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
_SD_PIPELINES = ("StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline", "StableDiffusionInpaintPipeline")
_SD_COMMON = dict(
    denoiser="unet", latent_channels=4, vae_scale=8, size_multiple=8, guidance="cfg", schedule="eps",
    lora_layouts=("kohya", "diffusers"), prompt_encoding="clip", layouts=("diffusers", "single_file"),
)

SD1 = Family(
    name="sd1", label="SD 1.x", img2img=_SD_PIPELINES[0], inpaint=_SD_PIPELINES[1], inpaint_model=_SD_PIPELINES[2],
    resolution=512, recommended=Recommended(25, 7.0, "dpmpp_2m"), memory="small", load_kwargs=_NO_CHECKER,
    latent_rgb=_SD1_RGB, configs=("sd1", "sd1-inpaint"), text_width=768, **_SD_COMMON,
)
SD2 = Family(
    name="sd2", label="SD 2.x", img2img=_SD_PIPELINES[0], inpaint=_SD_PIPELINES[1], inpaint_model=_SD_PIPELINES[2],
    resolution=768, recommended=Recommended(25, 7.0, "dpmpp_2m"), memory="small", load_kwargs=_NO_CHECKER,
    latent_rgb=_SD1_RGB, configs=("sd2", "sd2-inpaint"), text_width=1024,
    inpaint_resolution=512, size_from_name=True, **_SD_COMMON,
)
SDXL = Family(
    name="sdxl", label="SDXL", img2img="StableDiffusionXLImg2ImgPipeline", inpaint="StableDiffusionXLInpaintPipeline",
    inpaint_model="StableDiffusionXLInpaintPipeline", resolution=1024, recommended=Recommended(30, 6.0, "dpmpp_2m"),
    memory="medium", load_kwargs={"add_watermarker": False}, latent_rgb=_SDXL_RGB, configs=("sdxl", "sdxl-inpaint"),
    text_width=2048, lora_unet_config=True,
    **_SD_COMMON,
)
DEMO = Family(
    name="demo", label="Demo", img2img=_SD_PIPELINES[0], inpaint=_SD_PIPELINES[1], inpaint_model=_SD_PIPELINES[2],
    resolution=512, recommended=Recommended(20, 7.0, "default"), memory="small", load_kwargs=_NO_CHECKER,
    latent_rgb=_SD1_RGB, **{**_SD_COMMON, "layouts": ("builtin",)},
)

# diffusers folders: the model_index classes that may hold each family, told apart by the UNet's text width
FOLDER_CLASSES = {
    "StableDiffusionPipeline": (SD1, SD2), "StableDiffusionImg2ImgPipeline": (SD1, SD2),
    "StableDiffusionInpaintPipeline": (SD1, SD2), "StableDiffusionXLPipeline": (SDXL,),
    "StableDiffusionXLImg2ImgPipeline": (SDXL,), "StableDiffusionXLInpaintPipeline": (SDXL,),
}
