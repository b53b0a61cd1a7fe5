"""Full-resolution (tiled) img2img and inpainting: MultiDiffusion over model-sized latent tiles.

Every step, each tile of the latent (``tile_plan.layout``) gets its own UNet prediction; the predictions are
blended by ``tile_plan.weights`` (they sum to 1 per latent pixel) into one prediction for the whole latent,
and the scheduler takes one step on the whole latent. Averaging predictions equals averaging the tiles'
stepped latents for every scheduler (each step is linear in the prediction), and it keeps multistep
schedulers' history whole. One tile (times batch, times two for guidance) goes through the UNet at a time,
so memory is the image buffers plus one tile's activations; the VAE runs tiled (diffusers' own tiling).
A cancel is checked after every tile; previews are whole-image latent previews, downscaled.

Low-strength refines keep the painting's own detail: the result is the decoded refined latent plus the
VAE's reconstruction error of the source (``detail_keep``), so what the VAE cannot represent (fine texture,
flat colours) is not lost to the round trip.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from underpaint.protocol.vocabulary import TILED_MAX_STRENGTH

from . import tile_plan
from .interface import CancelToken, GenerationRequest, StepInfo
from .previews import X0Capture, render_latent_preview

LATENT_SCALE = 8  # pixels per latent pixel (every SD VAE; a pipeline's own ``vae_scale_factor`` wins)
OVERLAP = 4  # a quarter of a tile is shared with each neighbour
KEEP_FULL_BELOW = 0.3  # detail_keep: the whole reconstruction error below this strength ...
# the VAE's tiles share 1/8 of their side (64 px at SD's 512 px tiles, ComfyUI's tiled-VAE default) instead of
# diffusers' 1/4: at 2048² that is 25 tile passes instead of 36, each encode and decode (docs/performance.md)
VAE_TILE_OVERLAP = 0.125


def detail_keep(strength: float) -> float:
    """How much of the source's VAE reconstruction error goes back into the result: 1 up to strength 0.3,
    fading to 0 at 0.6 (the strength where ``auto`` stops tiling); above it the result is the model's alone."""
    span = TILED_MAX_STRENGTH - KEEP_FULL_BELOW
    return float(np.clip((TILED_MAX_STRENGTH - strength) / span, 0.0, 1.0))


def tile_side(resolution: int, scale: int = LATENT_SCALE) -> int:
    """The latent side of one tile: the model's native side."""
    return max(8, resolution // scale)


@contextlib.contextmanager
def tiled_vae(vae: Any) -> Iterator[Any]:
    """The pipeline's VAE with diffusers' tiled encode/decode switched on (tiles overlapping by
    ``VAE_TILE_OVERLAP``), and back off, in float32 when it must not run in float16 (SDXL's VAE)."""
    import torch

    tiling, dtype = getattr(vae, "use_tiling", False), vae.dtype
    overlap = getattr(vae, "tile_overlap_factor", None)
    upcast = dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    vae.use_tiling = True
    if overlap is not None:
        vae.tile_overlap_factor = VAE_TILE_OVERLAP
    if upcast:
        vae.to(torch.float32)
    try:
        yield vae
    finally:
        vae.use_tiling = tiling
        if overlap is not None:
            vae.tile_overlap_factor = overlap
        if upcast:
            vae.to(dtype)


def _to_tensor(image: np.ndarray, device: str, dtype: Any) -> Any:
    import torch

    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    return pixels.to(device=device, dtype=dtype)


def _to_rgb8(pixels: Any) -> np.ndarray:
    """(1, 3, H, W) in -1..1 -> (H, W, 3) uint8."""
    rgb = ((pixels[0].float().clamp(-1, 1) + 1.0) * 127.5).permute(1, 2, 0).cpu().numpy()
    return rgb.round().astype(np.uint8)


class _Conditioning:
    """The prompt embeddings (negative first, when guidance runs) and SDXL's extra per-tile conditioning."""

    def __init__(self, pipe: Any, request: GenerationRequest, device: str, guided: bool, scale: int) -> None:
        import torch

        self.scale = scale
        batch = request.batch
        self.sdxl = hasattr(pipe, "text_encoder_2")
        if self.sdxl:
            cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(
                prompt=request.prompt, device=device, num_images_per_prompt=batch,
                do_classifier_free_guidance=guided, negative_prompt=request.negative_prompt or None)
            self.pooled = torch.cat([uncond_pooled, pooled]) if guided else pooled
            self.aesthetic = bool(getattr(pipe.config, "requires_aesthetics_score", False))
        else:
            cond, uncond = pipe.encode_prompt(request.prompt, device, batch, guided,
                                              request.negative_prompt or None)
        self.embeds = torch.cat([uncond, cond]) if guided else cond
        self.guided = guided
        self._time_ids: dict[tuple[int, int], Any] = {}

    def extra(self, height: int, width: int) -> dict[str, Any]:
        """``added_cond_kwargs`` of a tile of this latent size (SDXL: its size as the original and target)."""
        if not self.sdxl:
            return {}
        import torch

        key = (height, width)
        if key not in self._time_ids:
            size = [height * self.scale, width * self.scale]
            rows = [size + [0, 0] + ([6.0] if self.aesthetic else size)]
            if self.guided:
                rows = [size + [0, 0] + ([2.5] if self.aesthetic else size)] + rows
            ids = torch.tensor(rows, dtype=self.embeds.dtype, device=self.embeds.device)
            self._time_ids[key] = ids.repeat_interleave(len(self.embeds) // len(rows), dim=0)
        return {"added_cond_kwargs": {"text_embeds": self.pooled, "time_ids": self._time_ids[key]}}


def run_tiled(pipe: Any, request: GenerationRequest, mask: np.ndarray | None, family: str, total: int,
              capture: X0Capture, on_step: Callable[[StepInfo], None], cancel: CancelToken,
              resolution: int) -> list[np.ndarray]:
    """Run ``request`` on ``pipe`` (an img2img or inpaint pipeline owning its job's scheduler) over the whole
    image in tiles of the model's ``resolution``; ``mask``: (H, W) 0/255 for the inpaint pipeline, else None.
    Returns ``request.batch`` images of the input's size, (H, W, 3) uint8."""
    import torch

    device, unet, scheduler = pipe._execution_device, pipe.unet, pipe.scheduler
    dtype, batch = unet.dtype, request.batch
    scale = int(getattr(pipe, "vae_scale_factor", LATENT_SCALE))
    height, width = request.image.shape[0] // scale, request.image.shape[1] // scale
    side = tile_side(resolution, scale)
    guided = request.guidance > 1.0 and getattr(unet.config, "time_cond_proj_dim", None) is None
    with torch.inference_mode():
        cond = _Conditioning(pipe, request, device, guided, scale)
        scheduler.set_timesteps(request.steps, device=device)
        timesteps, _ = pipe.get_timesteps(request.steps, request.strength, device)
        image = _to_tensor(request.image, device, pipe.vae.dtype)
        with tiled_vae(pipe.vae) as vae:
            sf = vae.config.scaling_factor
            source = vae.encode(image.to(vae.dtype)).latent_dist.mode().to(dtype) * sf
            nine = unet.config.in_channels == 9
            masked = latent_mask = None
            if mask is not None:
                repaint = torch.from_numpy((mask >= 128).astype(np.float32))[None, None].to(device, dtype)
                latent_mask = torch.nn.functional.interpolate(repaint, size=(height, width))
                if nine:
                    hole = image * (repaint < 0.5).to(image.dtype)
                    masked = vae.encode(hole.to(vae.dtype)).latent_dist.mode().to(dtype) * sf
        noise = torch.cat([torch.randn((1, 4, height, width), dtype=torch.float32,
                                       generator=torch.Generator("cpu").manual_seed(request.seed + i))
                           for i in range(batch)]).to(device, dtype)
        source = source.repeat(batch, 1, 1, 1)
        if request.strength >= 1.0:
            latents = noise * scheduler.init_noise_sigma
        else:
            latents = scheduler.add_noise(source, noise, timesteps[:1].repeat(batch))
        overlap = side // OVERLAP
        tiles = tile_plan.layout(width, height, side, overlap)
        weights = [torch.from_numpy(w).to(device, dtype) for w in tile_plan.weights(tiles, width, height, overlap)]
        stochastic = "generator" in inspect.signature(scheduler.step).parameters  # euler_a, ddim with eta
        step_kwargs = {"generator": torch.Generator("cpu").manual_seed(request.seed)} if stochastic else {}
        last_preview = None
        for i, t in enumerate(timesteps):
            prediction = torch.zeros_like(latents)
            for tile, weight in zip(tiles, weights, strict=True):
                rows, cols = tile.slices
                model_in = latents[:, :, rows, cols]
                model_in = torch.cat([model_in] * 2) if guided else model_in
                model_in = scheduler.scale_model_input(model_in, t)
                if nine:
                    extra = torch.cat([latent_mask[:, :, rows, cols].expand(batch, -1, -1, -1),
                                       masked[:, :, rows, cols].expand(batch, -1, -1, -1)], dim=1)
                    model_in = torch.cat([model_in, torch.cat([extra] * 2) if guided else extra], dim=1)
                out = unet(model_in, t, encoder_hidden_states=cond.embeds, return_dict=False,
                           **cond.extra(tile.height, tile.width))[0]
                if guided:
                    uncond, text = out.chunk(2)
                    out = uncond + request.guidance * (text - uncond)
                prediction[:, :, rows, cols] += out * weight
                cancel.raise_if_cancelled()
            latents = scheduler.step(prediction, t, latents, return_dict=False, **step_kwargs)[0]
            if latent_mask is not None and not nine:  # a 4-channel UNet inpaints by re-noising the kept part
                keep = source if i == len(timesteps) - 1 else scheduler.add_noise(
                    source, noise, timesteps[i + 1:i + 2].repeat(batch))
                latents = (1 - latent_mask) * keep + latent_mask * latents
            step, preview, now = i + 1, None, time.monotonic()
            policy = request.preview
            if policy.wants(step, total, None if last_preview is None else now - last_preview):
                x0 = capture.x0 if capture.x0 is not None else latents
                preview, last_preview = render_latent_preview(x0, family, policy.max_side), now
            on_step(StepInfo(step=step, total=total, preview=preview))
            cancel.raise_if_cancelled()
        keep = detail_keep(request.strength)
        out_images = []
        with tiled_vae(pipe.vae) as vae:
            error = None
            if keep > 0:  # the source's reconstruction error, added back below
                error = image.float() - vae.decode(source[:1].to(vae.dtype) / sf).sample.float()
            for item in range(batch):
                decoded = vae.decode(latents[item:item + 1].to(vae.dtype) / sf).sample.float()
                if error is not None:
                    decoded = decoded + keep * error
                out_images.append(_to_rgb8(decoded))
                cancel.raise_if_cancelled()
    return out_images
