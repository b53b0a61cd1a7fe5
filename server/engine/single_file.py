"""Offline loading of single-file (original layout) SD 1.x / 2.x / SDXL checkpoints.

diffusers' ``from_single_file`` needs a diffusers config folder for the architecture; we ship them in
``server/data/configs/`` (see gen_configs.py) and never touch the network. The CLIP vocabulary is
shipped once in ``server/data/clip_tokenizer/`` and copied into a temporary config folder per load.

Override: files in a ``<stem>.config/`` folder beside ``<stem>.safetensors`` replace the shipped ones
with the same relative path, e.g. ``scheduler/scheduler_config.json`` with ``"prediction_type":
"epsilon"`` for an SD 2.x 512 model, or a complete diffusers config folder for another architecture.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from .checkpoint_keys import read_safetensors_header, scheduler_hints
from .families import FAMILIES, family
from .gen_configs import CLIP_TOKENIZER_DIR, CONFIGS_DIR
from .interface import EngineError, ModelSpec
from .model_source import ModelSource
from .pipelines import Pipelines, dtype_kwarg, is_out_of_memory, pipeline_nbytes
from .registry import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES, config_override_dir

TOKENIZER_FILES = ("vocab.json", "merges.txt")
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"


def config_name(spec: ModelSpec) -> str:
    """Shipped config folder for a spec: sd1, sd1-inpaint, sd2, sd2-base, sd2-inpaint, sdxl, sdxl-inpaint."""
    row = FAMILIES.get(spec.family)
    plain, inpaint = row.configs if row else ("", "")
    if not plain:
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: no single-file config for family {spec.family!r}")
    if spec.inpaint:
        return inpaint
    base = f"{plain}-base"  # a 512 variant of a family whose native side is larger (SD 2.x base)
    if spec.resolution < row.resolution and (CONFIGS_DIR / base).is_dir():
        return base
    return plain


def config_override(source: ModelSource) -> Path | None:
    """The user's ``<stem>.config/`` folder beside the checkpoint, if there is one."""
    if source.path is None:
        return None
    override = config_override_dir(Path(source.path))
    return override if override.is_dir() else None


def prepare_config(source: ModelSource, dest: Path) -> Path:
    """Build the config folder for ``spec`` at ``dest``: the shipped one, then the override's files on top.

    Tokenizer folders without a vocabulary (no tokenizer.json, no vocab.json) get the shipped CLIP one.
    """
    shutil.copytree(CONFIGS_DIR / config_name(source.spec), dest)
    override = config_override(source)
    if override is not None:
        shutil.copytree(override, dest, dirs_exist_ok=True)
    path = Path(source.path) if source.path is not None else None
    if (override is None or not (override / SCHEDULER_CONFIG).is_file()) and path is not None \
            and path.suffix.lower() in SAFETENSORS_SUFFIXES and path.is_file():
        hints = scheduler_hints(read_safetensors_header(path)[0])
        if hints:  # the checkpoint's own markers (v-prediction, zero terminal SNR) over the shipped scheduler
            config = json.loads((dest / SCHEDULER_CONFIG).read_text(encoding="utf-8"))
            (dest / SCHEDULER_CONFIG).write_text(json.dumps({**config, **hints}, indent=2), encoding="utf-8")
    for tok_dir in dest.glob("tokenizer*"):
        if tok_dir.is_dir() and not any((tok_dir / n).is_file() for n in ("tokenizer.json", "vocab.json")):
            for name in TOKENIZER_FILES:
                shutil.copyfile(CLIP_TOKENIZER_DIR / name, tok_dir / name)
    return dest


def _pipeline_classes(name: str) -> tuple[Any, Any, Any]:
    """(img2img, inpaint, dedicated-inpaint-model) pipeline classes of a family."""
    import diffusers

    row = family(name)
    return getattr(diffusers, row.img2img), getattr(diffusers, row.inpaint), getattr(diffusers, row.inpaint_model)


def _check_file(source: ModelSource) -> Path:
    spec = source.spec
    if source.path is None or not Path(source.path).is_file():
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: checkpoint file is missing", field="model")
    path = Path(source.path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES:
        raise EngineError(errors.MODEL_LOAD_FAILED, f"{spec.id}: not a checkpoint file ({path.suffix})", field="model")
    return path


def load_single_file(source: ModelSource, device: str, dtype: Any) -> Pipelines:
    """Img2img and inpaint pipelines (sharing components) of a single-file checkpoint, offline.

    A 9-channel inpainting checkpoint gets ``img2img=None`` (see loader.py). Pickle checkpoints are
    only listed by the registry when allow_pickle is on; diffusers then loads them ``weights_only``.
    """
    spec = source.spec
    path = _check_file(source)
    img2img_cls, inpaint_cls, inpaint_model_cls = _pipeline_classes(spec.family)
    kwargs: dict[str, Any] = {**dtype_kwarg(dtype), "local_files_only": True}
    kwargs.update({k: v for k, v in family(spec.family).load_kwargs.items() if k == "add_watermarker"})
    with tempfile.TemporaryDirectory(prefix="underpaint-config-") as tmp:
        config = prepare_config(source, Path(tmp) / "config")
        try:
            first = (inpaint_model_cls if spec.inpaint else img2img_cls).from_single_file(
                str(path), config=str(config), **kwargs
            )
        except EngineError:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            raise EngineError(
                errors.MODEL_LOAD_FAILED, f"could not load checkpoint {spec.id!r}: {exc}", field="model"
            ) from exc
    if str(device) != "cpu":  # loaded on the CPU; moving there again only logs warnings
        first.to(device)
    if spec.inpaint:
        img2img, inpaint = None, first
    else:
        img2img, inpaint = first, inpaint_cls.from_pipe(first, **dtype_kwarg(dtype))
    return Pipelines(spec=spec, img2img=img2img, inpaint=inpaint, nbytes=pipeline_nbytes(inpaint))

