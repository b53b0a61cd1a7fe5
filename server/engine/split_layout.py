"""ComfyUI split layouts: a transformer file plus its text encoders and VAE, kept in sibling folders.

    models/diffusion_models/flux1-dev.safetensors     (or models/unet/)
    models/text_encoders/clip_l.safetensors, t5xxl_fp16.safetensors     (or models/clip/)
    models/vae/ae.safetensors

Pairing rules, per part the family needs (families.base.SplitLayout): the candidates are the files of that
part's folders beside the transformer's folder whose keys have the part's layout and whose width fits the
family's config (a CLIP-L of 768, a T5-XXL of 4096, a VAE of 16 latent channels). One candidate: it. Several:
the one whose name starts with the family's conventional name (``clip_l``, ``t5xxl``, ``ae``), else the first in
name order, which the model's note names. None: the model is listed as skipped with a sentence naming the
missing file kind and the folders searched. Only headers are read here; split_files loads the weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .families import FAMILIES, Family

DENOISER_FOLDERS = ("diffusion_models", "unet")
TEXT_ENCODER_FOLDERS = ("text_encoders", "clip")
VAE_FOLDERS = ("vae",)
PART_SUFFIXES = (".safetensors",)
GGUF_SUFFIXES = (".gguf",)  # quantized transformer files (the ``gguf`` extra)
_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "vae.")
Shapes = dict[str, tuple[int, ...]]


class SplitError(Exception):
    """A split-layout model that cannot be offered; the message says which part is missing and where."""


@dataclass(frozen=True)
class SplitParts:
    """The files of one split-layout model and the shipped config folder it loads with."""

    family: str
    config: str
    inpaint: bool
    transformer: Path
    text_encoders: tuple[tuple[str, Path], ...]  # (pipeline component, file)
    vae: Path


def read_gguf_shapes(path: Path) -> Shapes:
    """Tensor shapes (torch order) of a GGUF file, from its header (the data is memory-mapped, not read)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise SplitError("a GGUF file: reading it needs the gguf package (pip install 'underpaint[gguf]')") from None
    reader = GGUFReader(str(path))
    return {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}


def _strip(shapes: Shapes) -> Shapes:
    out: Shapes = {}
    for key, shape in shapes.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = shape
    return out


def detect_transformer(shapes: Shapes) -> tuple[Family, str, bool] | None:
    """(family, shipped config name, dedicated inpaint) of a transformer file, or None if no family knows it."""
    keys = _strip(shapes)
    for row in FAMILIES.values():
        split = row.split
        if split is None or not any(k in keys for k in split.signatures):
            continue
        in_features = next((keys[k][1] for k in split.input_keys if k in keys and len(keys[k]) == 2), None)
        inpaint = in_features == row.denoiser_inputs(row.latent_channels)[1]
        guided = any(k in keys for k in split.guidance_keys)
        return row, split.configs[2] if inpaint else split.configs[0 if guided else 1], inpaint
    return None


def config_json(config_dir: Path, component: str) -> dict:
    return json.loads((config_dir / component / "config.json").read_text(encoding="utf-8"))


def part_width(kind: str, shapes: Shapes) -> int | None:
    """The width a file of ``kind`` ("clip", "t5", "vae") has, or None if its keys are not of that kind."""
    keys = _strip(shapes)
    if kind == "clip" and "text_model.encoder.layers.0.self_attn.q_proj.weight" in keys:
        return keys.get("text_model.embeddings.token_embedding.weight", (0, 0))[1]
    if kind == "t5" and "encoder.block.0.layer.0.SelfAttention.q.weight" in keys:
        return keys.get("shared.weight", keys.get("encoder.embed_tokens.weight", (0, 0)))[1]
    if kind == "vae" and "decoder.conv_in.weight" in keys and "encoder.conv_in.weight" in keys:
        return keys["decoder.conv_in.weight"][1]
    return None


def expected_width(kind: str, config_dir: Path, component: str) -> int:
    config = config_json(config_dir, component)
    return int(config["latent_channels"] if kind == "vae" else config["d_model" if kind == "t5" else "hidden_size"])


def models_root(transformer: Path) -> Path | None:
    """The models folder holding the transformer's ``diffusion_models``/``unet`` folder (None: not in one)."""
    for parent in transformer.parents:
        if parent.name in DENOISER_FOLDERS:
            return parent.parent
    return None


def _pick(kind: str, width: int, names: tuple[str, ...], folders: list[Path], read: Callable[[Path], Shapes],
          what: str) -> Path:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.suffix.lower() not in PART_SUFFIXES or not path.is_file():
                continue
            try:
                if part_width(kind, read(path)) == width:
                    found.append(path)
            except Exception:  # unreadable files are the registry's to report, not a candidate
                continue
    if not found:
        where = " or ".join(str(f) for f in folders)
        raise SplitError(f"no {what} file found in {where}")
    named = [p for p in found if p.name.lower().startswith(names)]
    return (named or found)[0]


def pair_parts(transformer: Path, shapes: Shapes, configs_dir: Path, read: Callable[[Path], Shapes],
               override: Path | None = None) -> SplitParts | None:
    """The split-layout model of a transformer file (None: not a transformer file any family knows).

    ``override``: a ``<stem>.config`` folder whose component configs replace the shipped ones (their widths
    decide which files fit). Raises SplitError naming the part that is missing."""
    detected = detect_transformer(shapes)
    if detected is None:
        return None
    row, config, inpaint = detected
    split = row.split
    assert split is not None
    root = models_root(transformer)
    if root is None:
        raise SplitError(f"a {row.label} transformer file outside a {' or '.join(DENOISER_FOLDERS)} folder: its "
                         "text encoders and VAE cannot be found")

    def config_dir(component: str) -> Path:
        if override is not None and (override / component / "config.json").is_file():
            return override
        return configs_dir / config

    encoders = []
    for part in split.text_encoders:
        width = expected_width(part.kind, config_dir(part.component), part.component)
        folders = [root / name for name in TEXT_ENCODER_FOLDERS]
        what = f"{part.kind.upper()} text encoder ({'/'.join(part.names)}*, width {width}) for {row.label}"
        encoders.append((part.component, _pick(part.kind, width, part.names, folders, read, what)))
    width = expected_width("vae", config_dir("vae"), "vae")
    vae = _pick("vae", width, split.vae_names, [root / n for n in VAE_FOLDERS], read,
                f"VAE with {width} latent channels for {row.label}")
    return SplitParts(row.name, config, inpaint, transformer, tuple(encoders), vae)
