"""What a checkpoint's key names say besides its family: scheduler markers (v-prediction) and, for a file that
holds no model, what it is instead. Header data only (names and shapes), never weights."""

from __future__ import annotations

from typing import Any

V_PRED_KEYS = ("v_pred",)
ZSNR_KEYS = ("ztsnr",)


def what_else(keys: list[str]) -> str:
    """Why a file without a full SD UNet is skipped."""
    lower = [k.lower() for k in keys]
    if any("lora" in k or "lokr_" in k or "hada_" in k for k in lower):
        return "LoRA/LyCORIS weights, not a checkpoint"
    if any(k in ("emb_params", "string_to_param", "clip_l", "clip_g") for k in keys) or any(
        k.startswith("string_to_param.") for k in keys
    ):
        return "textual-inversion embedding, not a checkpoint"
    vae_prefixes = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.", "first_stage_model.", "vae.")
    if keys and all(k.startswith(vae_prefixes) for k in keys):
        return "VAE-only weights, not a checkpoint"
    if any(k.startswith("control_model.") or k.startswith("controlnet_") for k in keys):
        return "ControlNet weights, not a checkpoint"
    if any(k.startswith(("text_model.encoder.", "encoder.block.")) for k in keys):
        return "text-encoder weights (CLIP or T5), not a checkpoint: split-layout models pair them from text_encoders"
    return ("no Stable Diffusion UNet found (SD 1.x, 2.x, SDXL checkpoints) and no transformer of a known family "
            "(Flux.1 files in a diffusion_models or unet folder)")


def scheduler_hints(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Scheduler settings a checkpoint declares by marker keys (empty tensors, as NoobAI/Illustrious v-prediction
    SDXL fine-tunes carry them; ComfyUI reads the same): ``v_pred`` -> v-prediction, ``ztsnr`` -> zero terminal
    SNR (rescaled betas, trailing timesteps). A ``<stem>.config/scheduler`` folder beside the file wins."""
    hints: dict[str, Any] = {}
    if any(key in shapes for key in V_PRED_KEYS):
        hints["prediction_type"] = "v_prediction"
    if any(key in shapes for key in ZSNR_KEYS):
        hints.update(rescale_betas_zero_snr=True, timestep_spacing="trailing")
    return hints
