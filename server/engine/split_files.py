"""Loading a split-layout model (split_layout pairs the files) offline: the family's shipped config folder,
a ``<stem>.config`` folder beside the transformer on top, tokenizers from a ComfyUI install beside the models
folder (``ComfyUI/comfy/<name>``) or shipped ones, then each part loaded from its own file."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from .checkpoint_keys import read_safetensors_header
from .families import family
from .gen_configs import CLIP_TOKENIZER_DIR, CONFIGS_DIR
from .interface import EngineError
from .model_source import ModelSource
from .pipelines import dtype_kwarg
from .registry import config_override_dir
from .split_layout import GGUF_SUFFIXES, SplitError, SplitParts, models_root, pair_parts, read_gguf_shapes

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model")  # any one holds a vocabulary


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return read_gguf_shapes(path) if path.suffix.lower() in GGUF_SUFFIXES else read_safetensors_header(path)[0]


def find_parts(source: ModelSource) -> SplitParts:
    """The paired files of a split-layout model, as the registry paired them (again: files may have moved)."""
    spec, path = source.spec, Path(source.path) if source.path else None
    if path is None or not path.is_file():
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: transformer file {path} is missing", "model")
    override = config_override_dir(path)
    try:
        parts = pair_parts(path, _shapes(path), CONFIGS_DIR, _shapes, override if override.is_dir() else None)
    except SplitError as exc:
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: {exc}", "model") from None
    if parts is None:
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: {path.name} is no transformer file", "model")
    return parts


def _tokenizers(parts: SplitParts, dest: Path) -> None:
    """Fill the config folder's tokenizer folders: ComfyUI's own beside the models folder, else the shipped
    CLIP vocabulary for a CLIP tokenizer; anything else missing is a sentence naming where it was looked for."""
    split = family(parts.family).split
    assert split is not None
    root = models_root(parts.transformer)
    comfy = root.parent / "comfy" if root is not None else None
    for part in split.text_encoders:
        folder = dest / part.tokenizer
        if folder.is_dir() and any((folder / n).is_file() for n in TOKENIZER_FILES):
            continue  # the override brought it
        source = comfy / part.comfy_tokenizer if comfy is not None else None
        if source is not None and any((source / n).is_file() for n in TOKENIZER_FILES):
            shutil.copytree(source, folder, dirs_exist_ok=True)
        elif part.kind == "clip":
            folder.mkdir(parents=True, exist_ok=True)
            for name in ("vocab.json", "merges.txt"):
                shutil.copyfile(CLIP_TOKENIZER_DIR / name, folder / name)
        else:
            where = source if source is not None else "a ComfyUI install's comfy/ folder"
            raise EngineError(errors.MODEL_LOAD_FAILED, f"{parts.transformer.name}: the {part.kind.upper()} "
                              f"tokenizer is missing: looked for ComfyUI's {part.comfy_tokenizer} folder at {where} "
                              f"and in {config_override_dir(parts.transformer).name}/{part.tokenizer}", "model")


def _text_encoder(config_dir: Path, component: str, path: Path, dtype: Any) -> Any:
    import transformers
    from safetensors.torch import load_file

    config = transformers.AutoConfig.from_pretrained(str(config_dir / component), local_files_only=True)
    cls = getattr(transformers, config.architectures[0])
    state = {k.removeprefix("text_encoders.").removeprefix("model."): v for k, v in load_file(str(path)).items()}
    model = cls.from_pretrained(None, config=config, state_dict=state, dtype=dtype)
    return model.eval()


def load_split(source: ModelSource, dtype: Any) -> tuple[Any, Any]:
    """(img2img, inpaint) pipelines of a split-layout model on the CPU; a dedicated inpaint model's img2img is
    None (loader.py). Failures raise
    model_load_failed naming the file."""
    import diffusers

    parts = find_parts(source)
    row = family(parts.family)
    with tempfile.TemporaryDirectory(prefix="underpaint-split-") as tmp:
        config = Path(tmp) / "config"
        shutil.copytree(CONFIGS_DIR / parts.config, config)
        override = config_override_dir(parts.transformer)
        if override.is_dir():
            shutil.copytree(override, config, dirs_exist_ok=True)
        _tokenizers(parts, config)
        current = parts.transformer
        try:
            index = json.loads((config / "model_index.json").read_text(encoding="utf-8"))
            denoiser_cls, vae_cls = getattr(diffusers, index[row.denoiser][1]), getattr(diffusers, index["vae"][1])
            common = {"config": str(config), **dtype_kwarg(dtype), "local_files_only": True}
            quantized = {}
            if current.suffix.lower() in GGUF_SUFFIXES:  # dequantized layer by layer in compute dtype
                quantized["quantization_config"] = diffusers.GGUFQuantizationConfig(compute_dtype=dtype)
            components = {row.denoiser: denoiser_cls.from_single_file(str(current), subfolder=row.denoiser,
                                                                      **quantized, **common)}
            current = parts.vae
            components["vae"] = vae_cls.from_single_file(str(current), subfolder="vae", **common)
            for component, path in parts.text_encoders:
                current = path
                components[component] = _text_encoder(config, component, path, dtype)
            current = config
            cls = getattr(diffusers, row.inpaint_model if parts.inpaint else row.img2img)
            first = cls.from_pretrained(str(config), **components, **row.load_kwargs, **dtype_kwarg(dtype),
                                        local_files_only=True)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(errors.MODEL_LOAD_FAILED, f"could not load {current.name} of {source.spec.id!r}: "
                              f"{exc}", "model") from exc
    if parts.inpaint:
        return None, first
    # the same components (not from_pipe: it casts them, which a quantized transformer refuses)
    return first, getattr(diffusers, row.inpaint)(**first.components)

