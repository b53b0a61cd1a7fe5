"""Cheap step previews: capture the predicted clean latents and project them linearly to RGB."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

from .families import FAMILIES


def latent_to_rgb(latent: np.ndarray, family: str) -> np.ndarray:
    """One latent (C, h, w) float -> (h, w, 3) uint8 by the family's linear projection (families.Family.latent_rgb).

    A family without fitted factors gets a neutral projection: the channels in three groups, each group's mean
    as one colour (it shows the shapes, not the colours)."""
    row = FAMILIES.get(family, FAMILIES["sd1"])
    if latent.ndim != 3 or (row.latent_rgb is not None and latent.shape[0] != row.latent_rgb[0].shape[0]):
        raise ValueError(f"expected a ({row.latent_channels}, h, w) {row.label} latent, got shape {latent.shape}")
    latent = latent.astype(np.float32)
    if row.latent_rgb is None:
        rgb = np.stack([g.mean(axis=0) for g in np.array_split(latent, 3, axis=0) if len(g)], axis=-1)
        rgb = rgb if rgb.shape[-1] == 3 else np.repeat(rgb[..., :1], 3, axis=-1)
    else:
        factors, bias = row.latent_rgb
        rgb = np.einsum("chw,ck->hwk", latent, factors) + bias
    return (np.clip((rgb + 1.0) / 2.0, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def unpack_latents(latents: Any, height: int, width: int, vae_scale: int) -> Any:
    """Packed latents (B, h/2 * w/2, C*4) of a transformer family -> (B, C, h, w), for an image of
    ``height`` x ``width`` pixels (as diffusers' Flux pipelines pack them: 2x2 latent patches)."""
    h, w = height // vae_scale, width // vae_scale
    b, _, packed = latents.shape
    patches = latents.reshape(b, h // 2, w // 2, packed // 4, 2, 2)
    return patches.permute(0, 3, 1, 4, 2, 5).reshape(b, packed // 4, h, w)


def fit_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (box filter) so that neither side exceeds ``max_side``; never upscales."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def render_latent_preview(latents: Any, family: str, max_side: int) -> np.ndarray:
    """First image of a latent batch (torch tensor (B, C, h, w)) -> preview (h', w', 3) uint8."""
    first = latents[0].detach().float().cpu().numpy()
    return fit_max_side(latent_to_rgb(first, family), max_side)


class X0Capture:
    """Wraps one job's scheduler ``step`` to keep the latest predicted clean latents (x0).

    Schedulers that do not expose x0 leave ``x0`` as None; previews then use the current latents.
    """

    def __init__(self, scheduler: Any) -> None:
        self.x0: Any = None
        original = scheduler.step

        @functools.wraps(original)  # keeps the signature: pipelines inspect it for eta/generator
        def step(*args: Any, return_dict: bool = True, **kwargs: Any) -> Any:
            out = original(*args, return_dict=True, **kwargs)
            self.x0 = _predicted_x0(out, scheduler)
            if self.x0 is None:
                self.x0 = _flow_x0(scheduler, *args, **kwargs)
            return out if return_dict else out.to_tuple()

        scheduler.step = step


def _flow_x0(scheduler: Any, model_output: Any = None, timestep: Any = None, sample: Any = None, *_: Any,
             **kwargs: Any) -> Any:
    """x0 of a flow-matching step (the velocity points from noise to data): ``sample - sigma * velocity``, at
    the sigma of the step just taken; None for schedulers that are not flow matching."""
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    if not type(scheduler).__name__.startswith("FlowMatch") or sigmas is None or not index:
        return None
    model_output = kwargs.get("model_output", model_output)
    sample = kwargs.get("sample", sample)
    sigma = sigmas[index - 1].to(device=sample.device, dtype=sample.dtype)
    return sample - sigma * model_output


def _predicted_x0(out: Any, scheduler: Any) -> Any:
    for name in ("pred_original_sample", "denoised"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    # DPM-Solver++ converts the model output to x0 and keeps it in its history.
    if getattr(scheduler.config, "algorithm_type", "") in ("dpmsolver++", "sde-dpmsolver++"):
        history = getattr(scheduler, "model_outputs", None)
        if history and history[-1] is not None:
            return history[-1]
    return None
