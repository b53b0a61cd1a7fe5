"""Model registry: finds diffusers folders and single-file checkpoints in the models directories.

Point it at ComfyUI's ``models/checkpoints``, A1111's ``models/Stable-diffusion`` or any folder tree.
Architecture is read from the safetensors header (key names and shapes), never from the weights.
Ids are the path relative to the models directory, without extension, ``/``-separated; clients send
ids only, so an id is a plain dictionary key and never becomes a path.

A single-file checkpoint ``X.safetensors`` may have a diffusers config folder ``X.config/`` beside it
(``model_index.json`` and component configs, no weights); it overrides the shipped configs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from .checkpoint_keys import (
    NotACheckpoint,
    detect_single_file,
    read_pickle_shapes,
    read_safetensors_header,
    scheduler_hints,
)
from .families import FAMILIES, folder_candidates, vae_latent_channels
from .families import family as family_row
from .gen_configs import CONFIGS_DIR
from .interface import EngineError, ModelSpec
from .model_source import ModelSource
from .split_layout import GGUF_SUFFIXES, SplitError, SplitParts, pair_parts, read_gguf_shapes

log = logging.getLogger(__name__)

MAX_DEPTH = 6  # directory levels below a models dir that are searched
SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt")
CONFIG_OVERRIDE_SUFFIX = ".config"

@dataclass(frozen=True)
class SkippedFile:
    """Something the scan found but does not offer, with the reason (path relative to its models dir)."""

    path: str
    reason: str
    refused: bool = False  # a pickle file refused for safety (loadable with allow_pickle)


def config_override_dir(checkpoint: Path) -> Path:
    """Where a user-provided diffusers config folder for a single-file checkpoint lives."""
    return checkpoint.with_name(checkpoint.stem + CONFIG_OVERRIDE_SUFFIX)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _resolution_from_configs(folder: Path, denoiser: str = "unet") -> int | None:
    """Native side in pixels from a diffusers folder's denoiser sample_size and VAE downscale."""
    try:
        config = _read_json(folder / denoiser / "config.json")
        vae_path = folder / "vae" / "config.json"
        levels = len(_read_json(vae_path).get("block_out_channels", [0] * 4)) if vae_path.is_file() else 4
        sample = config.get("sample_size")
        return int(sample) * 2 ** (levels - 1) if isinstance(sample, int) else None
    except (OSError, ValueError):
        return None


def detect_diffusers_folder(folder: Path) -> tuple[str, bool, int | None]:
    """(family, inpaint, resolution or None) from model_index.json and the denoiser's and VAE's configs."""
    class_name = str(_read_json(folder / "model_index.json").get("_class_name", ""))
    candidates = folder_candidates(class_name)
    if not candidates:
        known = ", ".join(dict.fromkeys(row.label for row in FAMILIES.values() if "builtin" not in row.layouts))
        raise NotACheckpoint(f"pipeline {class_name or '?'} is not supported (families: {known})")
    denoiser = candidates[0].denoiser
    if not (folder / denoiser / "config.json").is_file():
        raise NotACheckpoint(f"{candidates[0].label} diffusers folder ({class_name}) without {denoiser}/config.json")
    config = _read_json(folder / denoiser / "config.json")
    width = config.get("cross_attention_dim")
    matching = [row for row in candidates if row.text_width is None or row.text_width == width]
    if len(matching) != 1:
        raise NotACheckpoint(f"unrecognised {denoiser} (cross_attention_dim {width}, pipeline {class_name})")
    row = matching[0]
    vae_path = folder / "vae" / "config.json"
    vae = _read_json(vae_path) if vae_path.is_file() else {}
    plain, inpaint = row.denoiser_inputs(vae_latent_channels(vae, row))
    in_channels = config.get("in_channels")
    if in_channels not in (plain, inpaint):
        raise NotACheckpoint(f"{row.label} {denoiser} with {in_channels} input channels ({class_name}) is not "
                             f"supported (expected {plain}, or {inpaint} for an inpainting model)")
    return row.name, in_channels == inpaint, _resolution_from_configs(folder, denoiser)


def _weight_formats(folder: Path, denoiser: str = "unet") -> tuple[bool, bool]:
    """(denoiser weights present, some component needs pickle ``.bin`` weights) of a diffusers folder."""
    has_unet, needs_pickle = False, False
    for sub in folder.iterdir():
        if not sub.is_dir():
            continue
        names = [p.name for p in sub.iterdir() if p.suffix in (".safetensors", ".bin")]
        if sub.name == denoiser:
            has_unet = bool(names)
        if names and not any(n.endswith(".safetensors") for n in names):
            needs_pickle = True
    return has_unet, needs_pickle


def _sd2_guess(stem: str) -> tuple[int, str]:
    """SD 2.x 768-v and 512 base share a layout: guess from the name, say how to override."""
    name = stem.lower()
    base = ("512" in name or "base" in name) and "768" not in name
    kind = "512 base (epsilon)" if base else "768-v (v-prediction)"
    note = f"SD 2.x assumed {kind} from the file name; add a '{stem}.config' folder to override"
    return (512 if base else 768), note


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return read_safetensors_header(path)[0]


def _override(path: Path) -> Path | None:
    override = config_override_dir(path)
    return override if override.is_dir() else None


def _split_source(parts: SplitParts, model_id: str) -> ModelSource:
    """A model of split files: its spec names the paired files in the note; the loader pairs them again."""
    row = family_row(parts.family)
    files = " + ".join(p.name for p in (parts.transformer, *(f for _, f in parts.text_encoders), parts.vae))
    note = f"{row.label} split files ({parts.config}): {files}" + (" (inpainting)" if parts.inpaint else "")
    spec = ModelSpec(id=model_id, name=parts.transformer.stem, family=row.name, inpaint=parts.inpaint,
                     resolution=row.resolution, source="split", note=note)
    return ModelSource(spec, parts.transformer)


class ModelRegistry:
    """The models the server offers. ``scan()`` runs on construction and can be re-run."""

    def __init__(
        self,
        models_dirs: list[Path],
        allow_pickle: bool = False,
        include_demo: bool = True,
        *,
        demo_cache_dir: Path | None = None,
    ) -> None:
        self.models_dirs = [Path(d).expanduser() for d in models_dirs]
        self.allow_pickle = allow_pickle
        self.include_demo = include_demo
        self.demo_cache_dir = demo_cache_dir
        self._sources: dict[str, ModelSource] = {}
        self._skipped: list[SkippedFile] = []
        self.scan()

    def scan(self) -> list[ModelSpec]:
        sources: dict[str, ModelSource] = {}
        skipped: list[SkippedFile] = []
        demo = None
        if self.include_demo:
            from .demo_model import demo_source

            demo = demo_source(self.demo_cache_dir)
        reserved = {demo.spec.id} if demo else set()
        for root in self.models_dirs:
            if not root.exists():
                log.warning("models directory %s does not exist", root)
                continue
            for found in self._scan_root(root, skipped):
                model_id = self._unique_id(found.spec.id, sources.keys() | reserved)
                if found.spec.id != model_id:
                    found = ModelSource(replace(found.spec, id=model_id), found.path)
                sources[model_id] = found
        if demo:
            sources[demo.spec.id] = demo
        self._sources, self._skipped = sources, skipped
        log.info("model registry: %d model(s), %d file(s) skipped", len(sources), len(skipped))
        return self.specs()

    def specs(self) -> list[ModelSpec]:
        return [source.spec for source in self._sources.values()]

    def skipped(self) -> list[SkippedFile]:
        return list(self._skipped)

    def get(self, model_id: str) -> ModelSpec:
        return self.source(model_id).spec

    def source(self, model_id: str) -> ModelSource:
        """The model and where it lives; EngineError(unknown_model) for an id the registry does not offer."""
        source = self._sources.get(model_id) if isinstance(model_id, str) else None
        if source is None:
            ids = list(self._sources)
            available = ", ".join(ids[:20]) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
            shown = str(model_id)[:120]
            raise EngineError(
                errors.UNKNOWN_MODEL, f"unknown model {shown!r}; available: {available or 'none'}", field="model"
            )
        return source

    def default_id(self) -> str:
        for source in self._sources.values():
            if source.spec.source != "builtin":
                return source.spec.id
        if self._sources:
            return next(iter(self._sources))
        dirs = ", ".join(str(d) for d in self.models_dirs) or "no models directory given"
        raise EngineError(errors.UNKNOWN_MODEL, f"no models available (searched: {dirs})", field="model")

    @staticmethod
    def _unique_id(wanted: str, taken: set[str]) -> str:
        if wanted not in taken:
            return wanted
        n = 2
        while f"{wanted}~{n}" in taken:
            n += 1
        log.warning("duplicate model id %r: the later one is listed as %r", wanted, f"{wanted}~{n}")
        return f"{wanted}~{n}"

    def _scan_root(self, root: Path, skipped: list[SkippedFile]) -> Iterator[ModelSource]:
        if root.is_file():
            yield from self._probe_file(root, root.stem, skipped)
        elif (root / "model_index.json").is_file():
            yield from self._probe_folder(root, root.name, skipped)
        else:
            yield from self._walk(root, root, 0, {os.path.realpath(root)}, skipped)

    def _walk(
        self, root: Path, folder: Path, depth: int, seen: set[str], skipped: list[SkippedFile]
    ) -> Iterator[ModelSource]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name.lower())
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            return
        names = {e.name for e in entries}
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                real = os.path.realpath(path)
                override_of = entry.name.removesuffix(CONFIG_OVERRIDE_SUFFIX)
                if real in seen or (entry.name != override_of and f"{override_of}.safetensors" in names):
                    continue
                if (path / "model_index.json").is_file():
                    yield from self._probe_folder(path, rel, skipped)
                elif depth < MAX_DEPTH:
                    yield from self._walk(root, path, depth + 1, seen | {real}, skipped)
            else:
                stem = rel[: -len(path.suffix)] if path.suffix else rel
                yield from self._probe_file(path, stem, skipped)

    def _probe_file(self, path: Path, model_id: str, skipped: list[SkippedFile]) -> Iterator[ModelSource]:
        suffix = path.suffix.lower()
        rel = model_id + path.suffix
        if suffix in PICKLE_SUFFIXES and not self.allow_pickle:
            log.warning("refusing pickle checkpoint %s (convert to safetensors or allow pickle)", path)
            skipped.append(SkippedFile(rel, "pickle checkpoint refused (allow_pickle is off)", refused=True))
            return
        if suffix not in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES + GGUF_SUFFIXES:
            return
        try:
            pickled, gguf = suffix in PICKLE_SUFFIXES, suffix in GGUF_SUFFIXES
            shapes = read_pickle_shapes(path) if pickled else read_gguf_shapes(path) if gguf else \
                read_safetensors_header(path)[0]
            parts = None if pickled else pair_parts(path, shapes, CONFIGS_DIR, _shapes, _override(path))
            if parts is not None:
                yield _split_source(parts, model_id)
                return
            if gguf:
                raise NotACheckpoint("a GGUF file without a transformer of a known family (GGUF loads for split "
                                     "layouts only)")
            family, inpaint = detect_single_file(shapes)
        except (NotACheckpoint, SplitError) as exc:
            log.info("skipping %s: %s", path, exc)
            skipped.append(SkippedFile(rel, str(exc)))
            return
        except Exception as exc:  # corrupt, truncated, unreadable: never fail the scan
            log.warning("skipping unreadable or corrupt model file %s: %s", path, exc)
            skipped.append(SkippedFile(rel, f"unreadable or corrupt: {exc}"))
            return
        row = family_row(family)
        resolution, note = row.resolution, f"{row.label} single-file checkpoint"
        if row.size_from_name:
            resolution, note = (row.inpaint_resolution or resolution, note) if inpaint else _sd2_guess(path.stem)
        override = config_override_dir(path)
        if override.is_dir():
            resolution = _resolution_from_configs(override) or resolution
            note = f"{row.label} single-file checkpoint with config folder {override.name}"
        if inpaint:
            note += " (inpainting)"
        hints = scheduler_hints(shapes)
        if hints.get("prediction_type") == "v_prediction":
            note += " (v-prediction, zero terminal SNR)" if hints.get("rescale_betas_zero_snr") else " (v-prediction)"
        name = path.stem
        spec = ModelSpec(id=model_id, name=name, family=family, inpaint=inpaint, resolution=resolution,
                         source="single_file", note=note)
        yield ModelSource(spec, path)

    def _probe_folder(self, folder: Path, model_id: str, skipped: list[SkippedFile]) -> Iterator[ModelSource]:
        try:
            family, inpaint, resolution = detect_diffusers_folder(folder)
            denoiser = family_row(family).denoiser
            has_unet, needs_pickle = _weight_formats(folder, denoiser)
            if not has_unet:
                raise NotACheckpoint(f"diffusers folder without {denoiser} weights")
        except NotACheckpoint as exc:
            log.info("skipping diffusers folder %s: %s", folder, exc)
            skipped.append(SkippedFile(model_id, str(exc)))
            return
        except Exception as exc:
            log.warning("skipping unreadable diffusers folder %s: %s", folder, exc)
            skipped.append(SkippedFile(model_id, f"unreadable or corrupt: {exc}"))
            return
        if needs_pickle and not self.allow_pickle:
            log.warning("refusing diffusers folder %s: pickle .bin weights; enable allow_pickle", folder)
            skipped.append(SkippedFile(model_id, "pickle .bin weights (allow_pickle is off)", refused=True))
            return
        row = family_row(family)
        note = f"{row.label} diffusers folder" + (" (inpainting)" if inpaint else "")
        res = resolution or (inpaint and row.inpaint_resolution) or row.resolution
        spec = ModelSpec(id=model_id, name=folder.name, family=family, inpaint=inpaint, resolution=res,
                         source="diffusers", note=note)
        yield ModelSource(spec, folder)
