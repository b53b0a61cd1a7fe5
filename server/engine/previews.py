"""Cheap step previews: capture the predicted clean latents and project them linearly to RGB."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

# Latent channel -> RGB weights (4x3) and bias, on latents as the pipeline holds them (VAE-scaled).
# Fitted approximations also used by ComfyUI's latent previewer.
_SD1_FACTORS = np.array(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ],
    dtype=np.float32,
)
_SDXL_FACTORS = np.array(
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ],
    dtype=np.float32,
)
LATENT_RGB: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "sd1": (_SD1_FACTORS, np.zeros(3, np.float32)),
    "sd2": (_SD1_FACTORS, np.zeros(3, np.float32)),
    "demo": (_SD1_FACTORS, np.zeros(3, np.float32)),
    "sdxl": (_SDXL_FACTORS, np.array([0.1084, -0.0175, -0.0011], np.float32)),
}


def latent_to_rgb(latent: np.ndarray, family: str) -> np.ndarray:
    """One latent (4, h, w) float -> (h, w, 3) uint8 by the family's linear projection."""
    if latent.ndim != 3 or latent.shape[0] != 4:
        raise ValueError(f"expected a (4, h, w) latent, got shape {latent.shape}")
    factors, bias = LATENT_RGB.get(family, LATENT_RGB["sd1"])
    rgb = np.einsum("chw,ck->hwk", latent.astype(np.float32), factors) + bias
    return (np.clip((rgb + 1.0) / 2.0, 0.0, 1.0) * 255.0).round().astype(np.uint8)


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
    """First image of a latent batch (torch tensor (B, 4, h, w)) -> preview (h', w', 3) uint8."""
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
            return out if return_dict else out.to_tuple()

        scheduler.step = step


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
