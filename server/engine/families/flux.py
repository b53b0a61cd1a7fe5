"""Flux.1 (dev, schnell, Fill): a flow-matching transformer on 16 packed latent channels, distilled guidance.

Fill is the dedicated inpaint model: its transformer takes the masked image and the mask beside the latents
(in_channels above out_channels), and it runs FluxFillPipeline. Schnell has no guidance input (the pipeline
ignores ``guidance_scale`` for it). The negative prompt is not used (distilled guidance has no unconditional pass).
"""

from __future__ import annotations

from .base import Family, Recommended, SplitLayout, TextEncoderPart

SPLIT = SplitLayout(
    signatures=("double_blocks.0.img_attn.norm.key_norm.scale", "single_transformer_blocks.0.proj_mlp.weight"),
    input_keys=("img_in.weight", "x_embedder.weight"),
    guidance_keys=("guidance_in.in_layer.weight", "time_text_embed.guidance_embedder.linear_1.weight"),
    text_encoders=(
        TextEncoderPart("text_encoder", "clip", ("clip_l",), "tokenizer", "sd1_tokenizer"),
        TextEncoderPart("text_encoder_2", "t5", ("t5xxl", "t5"), "tokenizer_2", "t5_tokenizer"),
    ),
    vae_names=("ae", "flux"),
    configs=("flux1", "flux1-schnell", "flux1-fill"),
)

FLUX1 = Family(
    name="flux1", label="Flux.1", img2img="FluxImg2ImgPipeline", inpaint="FluxInpaintPipeline",
    inpaint_model="FluxFillPipeline", denoiser="transformer", latent_channels=16, vae_scale=8, resolution=1024,
    size_multiple=16, guidance="distilled", schedule="flow", recommended=Recommended(20, 3.5, "euler"),
    memory="huge", tiled=False, live=True, lora_layouts=(), prompt_encoding="flux", packed_latents=True,
    mask_channels=64, layouts=("diffusers", "split"), split=SPLIT,
)

FOLDER_CLASSES = {
    "FluxPipeline": (FLUX1,), "FluxImg2ImgPipeline": (FLUX1,), "FluxInpaintPipeline": (FLUX1,),
    "FluxFillPipeline": (FLUX1,),
}
