"""Tiny autoencoders (TAESD / diffusers ``AutoencoderTiny``) found in the user's folders, for fast live frames.

Two shapes are found: a diffusers folder (``config.json`` with ``_class_name: AutoencoderTiny`` and its
weights), and TAESD's own pair of files ``<name>_encoder.*`` + ``<name>_decoder.*`` (``.safetensors``, or
``.pth`` read with ``weights_only``) as ComfyUI keeps them in ``models/vae_approx``. The name tells the latent
space: ``taesdxl*`` is SDXL's, other ``taesd*`` SD 1.x/2.x's (and the demo model's); ``taesd3``/``taef1``
(16-channel latents) are skipped. A tiny VAE whose shape does not fit the model (latent channels, downscale)
is never used: the full VAE decodes instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
DEFAULT_SUBFOLDERS = ("vae_approx", "VAE-approx", "taesd")
_UNSUPPORTED = re.compile(r"taesd3|taef1|taef2|taehv|taew", re.I)


@dataclass(frozen=True)
class TinyVaeSource:
    name: str
    families: tuple[str, ...]
    folder: Path | None = None  # a diffusers AutoencoderTiny folder
    encoder: Path | None = None  # TAESD files
    decoder: Path | None = None


def families_for(name: str) -> tuple[str, ...] | None:
    """The model families a tiny VAE of this name serves; None for one this server cannot use."""
    lower = name.lower()
    if _UNSUPPORTED.search(lower) or "tae" not in lower:
        return None
    return ("sdxl",) if "xl" in lower else ("sd1", "sd2", "demo")


def default_tiny_vae_dirs(models_dirs: list[Path]) -> list[Path]:
    """ComfyUI ``models/vae_approx`` (and A1111 ``models/VAE-approx``) beside or inside the models folders."""
    found, seen = [], set()
    for base in models_dirs:
        for parent in (base, base.parent):
            for sub in DEFAULT_SUBFOLDERS:
                candidate = parent / sub
                if candidate.is_dir() and os.path.realpath(candidate) not in seen:
                    seen.add(os.path.realpath(candidate))
                    found.append(candidate)
    return found


def _is_tiny_folder(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "AutoencoderTiny"


def find_tiny_vaes(dirs: list[Path]) -> list[TinyVaeSource]:
    """Every usable tiny VAE in ``dirs`` (folders one level deep, TAESD file pairs), in a stable order."""
    found: list[TinyVaeSource] = []
    for root in dirs:
        if not root.is_dir():
            continue
        if _is_tiny_folder(root):
            families = families_for(root.name)
            if families:
                found.append(TinyVaeSource(root.name, families, folder=root))
            continue
        pairs: dict[str, dict[str, Path]] = {}
        for entry in sorted(root.iterdir(), key=lambda p: p.name.lower()):
            if entry.is_dir() and _is_tiny_folder(entry):
                families = families_for(entry.name)
                if families:
                    found.append(TinyVaeSource(entry.name, families, folder=entry))
            elif entry.suffix.lower() in WEIGHT_SUFFIXES:
                match = re.fullmatch(r"(.+)_(encoder|decoder)", entry.stem)
                if match:
                    pairs.setdefault(match[1], {}).setdefault(match[2], entry)
        for name, files in pairs.items():
            families = families_for(name)
            if families and len(files) == 2:
                found.append(TinyVaeSource(name, families, encoder=files["encoder"], decoder=files["decoder"]))
            elif families:
                log.warning("tiny VAE %s in %s has no %s file: not used", name, root,
                            "decoder" if "encoder" in files else "encoder")
    return found


def _read(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} does not hold a state dict")
    return state


def _stages(state: dict[str, Any], decoder: bool) -> tuple[list[int], list[int], int]:
    """(block_out_channels, blocks per stage, output channels) of a TAESD ``nn.Sequential`` state dict.

    Encoder: conv, blocks, conv, blocks, ..., output conv. Decoder: input conv, then per stage its blocks
    closed by a conv (the last one the output conv)."""
    layers: dict[int, tuple[str, int, int]] = {}
    for key, tensor in state.items():
        index, _, rest = key.partition(".")
        if not index.isdigit():
            raise ValueError(f"unexpected TAESD key {key!r}")
        if rest == "weight" and tensor.ndim == 4:
            layers[int(index)] = ("conv", int(tensor.shape[0]), int(tensor.shape[1]))
        elif rest == "conv.0.weight":
            layers[int(index)] = ("block", int(tensor.shape[0]), int(tensor.shape[1]))
    ordered = [layers[i] for i in sorted(layers)]
    if not ordered or ordered[-1][0] != "conv":
        raise ValueError("not a TAESD encoder/decoder (no output conv)")
    widths, counts = [], []
    if decoder:
        blocks = 0
        for kind, _, in_channels in ordered[1:]:
            if kind == "block":
                blocks += 1
            else:
                widths.append(in_channels)
                counts.append(blocks)
                blocks = 0
    else:
        for kind, out_channels, _ in ordered[:-1]:
            if kind == "conv":
                widths.append(out_channels)
                counts.append(0)
            elif counts:
                counts[-1] += 1
    return widths, counts, ordered[-1][1]


def load_tiny_vae(source: TinyVaeSource, device: str, dtype: Any) -> Any:
    """An ``AutoencoderTiny`` on ``device``; ValueError/OSError for files it cannot use."""
    from diffusers import AutoencoderTiny

    if source.folder is not None:
        vae = AutoencoderTiny.from_pretrained(str(source.folder), local_files_only=True)
    else:
        assert source.encoder is not None and source.decoder is not None
        enc, dec = _read(source.encoder), _read(source.decoder)
        enc_widths, enc_blocks, latent = _stages(enc, decoder=False)
        dec_widths, dec_blocks, out_channels = _stages(dec, decoder=True)
        if out_channels != 3:
            raise ValueError(f"decoder makes {out_channels} channels, not RGB")
        vae = AutoencoderTiny(encoder_block_out_channels=tuple(enc_widths), num_encoder_blocks=tuple(enc_blocks),
                              decoder_block_out_channels=tuple(dec_widths), num_decoder_blocks=tuple(dec_blocks),
                              latent_channels=latent)
        state = {f"encoder.layers.{k}": v for k, v in enc.items()}
        for key, value in dec.items():
            index, _, rest = key.partition(".")
            state[f"decoder.layers.{int(index) - 1}.{rest}"] = value  # TAESD's decoder starts with a Clamp()
        vae.load_state_dict(state, strict=True)
    return vae.to(device=device, dtype=dtype).eval()


def downscale(vae: Any) -> int:
    """Pixels per latent of a VAE (full or tiny): 2 ** (levels - 1)."""
    config = vae.config
    channels = getattr(config, "encoder_block_out_channels", None) or config.block_out_channels
    return 2 ** (len(channels) - 1)


def fits(tiny: Any, full: Any) -> bool:
    return tiny.config.latent_channels == full.config.latent_channels and downscale(tiny) == downscale(full)


class TinyVaes:
    """The tiny VAEs found, loaded on first use per (family, device, dtype) and kept."""

    def __init__(self, dirs: list[Path]) -> None:
        self.sources = find_tiny_vaes([Path(d).expanduser() for d in dirs])
        self._loaded: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def get(self, family: str, full_vae: Any, device: str, dtype: Any) -> Any | None:
        """The tiny VAE for ``family`` that fits ``full_vae``, or None (then the full VAE is used)."""
        key = (family, device, str(dtype))
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            chosen = None
            for source in self.sources:
                if family not in source.families:
                    continue
                try:
                    vae = load_tiny_vae(source, device, dtype)
                    self.loads += 1
                except Exception as exc:  # a broken file: say so once, use the full VAE
                    log.warning("tiny VAE %s cannot be used: %s", source.name, exc)
                    continue
                if fits(vae, full_vae):
                    chosen = vae
                    break
                log.warning("tiny VAE %s does not fit %s models (latent channels or downscale)", source.name, family)
            self._loaded[key] = chosen
            return chosen
