"""LoRA files: found in the user's folders, checked against a model family, applied to one job at a time.

The registry reads only safetensors headers (key names and shapes) to tell a LoRA's family and key layout
(diffusers/peft ``unet.…lora_A``, older diffusers ``…lora.down``, kohya ``lora_unet_…lora_down`` + ``alpha``).
Adapters are injected unfused over peft (diffusers' LoRA loaders) into a model's modules, kept there (the
``LoraSlots`` of each loaded model, least recently used out first) and switched per job by setting each
LoRA layer's active adapters and scale; a job without LoRAs disables them, so its output is bit for bit the
model's own.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from underpaint.protocol import errors

from .checkpoint_keys import read_safetensors_header
from .families import FAMILIES
from .interface import EngineError, LoraSpec, LoraUse
from .registry import MAX_DEPTH, SkippedFile

log = logging.getLogger(__name__)

LORA_SUFFIXES = (".safetensors",)
MAX_RESIDENT = 8  # adapters kept injected per model
KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
DIFFUSERS_PREFIXES = ("unet.", "text_encoder.", "text_encoder_2.")
# cross-attention width (the text embedding a UNet attends to) -> family
CROSS_DIM_FAMILY = {row.text_width: row.name for row in FAMILIES.values() if row.text_width}
TEXT_DIM_FAMILY = {768: "sd1", 1024: "sd2"}
# where ComfyUI and A1111 keep LoRAs, relative to a models folder or to its parent
DEFAULT_SUBFOLDERS = ("loras", "Lora", "lora", "LoRA")


@dataclass(frozen=True)
class LoraSource:
    spec: LoraSpec
    path: Path
    layout: str  # "kohya" | "diffusers"


class NotALora(Exception):
    """A file that is not a LoRA this server can apply; the message says why."""


def _cross_dims() -> dict[int, str]:
    from .demo_model import CROSS_ATTENTION_DIM

    return {**CROSS_DIM_FAMILY, CROSS_ATTENTION_DIM: "demo"}


def detect_lora(shapes: dict[str, tuple[int, ...]]) -> tuple[str, str]:
    """(family, layout) of a LoRA from its tensor names and shapes."""
    keys = list(shapes)
    if not keys:
        raise NotALora("no tensors")
    if any(".hada_" in k or ".lokr_" in k or "oft_" in k for k in keys):
        raise NotALora("LyCORIS (LoHa/LoKr/OFT) weights are not supported, only LoRA")
    if all(k.startswith(KOHYA_PREFIXES) for k in keys):
        layout = "kohya"
        downs = {k: s for k, s in shapes.items() if k.endswith(".lora_down.weight")}
        cross = [s for k, s in downs.items() if "attn2_to_k" in k or "attn2_to_v" in k]
        sdxl = any(k.startswith("lora_te2_") or "_input_blocks_" in k for k in keys)
        text = [s for k, s in downs.items() if k.startswith(("lora_te_", "lora_te1_")) and "_q_proj" in k]
    elif all(k.startswith(DIFFUSERS_PREFIXES) for k in keys) and any("lora" in k for k in keys):
        layout = "diffusers"
        downs = {k: s for k, s in shapes.items() if k.endswith((".lora_A.weight", ".lora.down.weight"))}
        cross = [s for k, s in downs.items() if ".attn2.to_k" in k or ".attn2.to_v" in k]
        sdxl = any(k.startswith("text_encoder_2.") for k in keys)
        text = [s for k, s in downs.items() if k.startswith("text_encoder.") and ".q_proj" in k]
    else:
        raise NotALora("not a LoRA in the diffusers/peft or kohya key layout")
    if not downs:
        raise NotALora(f"no LoRA down/A weights in this {layout} file")
    if cross:
        width = cross[0][-1] if len(cross[0]) == 2 else -1
        family = _cross_dims().get(width)
        if family is None:
            raise NotALora(f"LoRA for a UNet with cross-attention width {width} (not SD 1.x, SD 2.x or SDXL)")
    elif sdxl:
        family = "sdxl"
    elif text and TEXT_DIM_FAMILY.get(text[0][-1]):
        family = TEXT_DIM_FAMILY[text[0][-1]]
    else:
        raise NotALora("cannot tell which model family this LoRA is for")
    return family, layout


def default_lora_dirs(models_dirs: list[Path]) -> list[Path]:
    """ComfyUI ``models/loras`` and A1111 ``models/Lora`` beside or inside the given models folders."""
    found: list[Path] = []
    seen: set[str] = set()
    for base in models_dirs:
        for parent in (base, base.parent):
            for sub in DEFAULT_SUBFOLDERS:
                candidate = parent / sub
                real = os.path.realpath(candidate)
                if candidate.is_dir() and real not in seen:
                    seen.add(real)
                    found.append(candidate)
    return found


class LoraRegistry:
    """The LoRAs the server offers: ids are paths relative to their folder, without extension, ``/``-separated."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = [Path(d).expanduser() for d in dirs]
        self._sources: dict[str, LoraSource] = {}
        self._skipped: list[SkippedFile] = []
        self.scan()

    def scan(self) -> list[LoraSpec]:
        sources: dict[str, LoraSource] = {}
        skipped: list[SkippedFile] = []
        for root in self.dirs:
            files = [root] if root.is_file() else sorted(self._files(root, 0), key=lambda p: p.as_posix().lower())
            for path in files:
                rel = path.name if path == root else path.relative_to(root).as_posix()
                try:
                    shapes, _ = read_safetensors_header(path)
                    family, layout = detect_lora(shapes)
                except (OSError, ValueError, NotALora) as exc:
                    skipped.append(SkippedFile(rel, str(exc)))
                    continue
                lora_id = rel[: -len(path.suffix)]
                if lora_id in sources:
                    n = 2
                    while f"{lora_id}~{n}" in sources:
                        n += 1
                    lora_id = f"{lora_id}~{n}"
                sources[lora_id] = LoraSource(LoraSpec(lora_id, path.stem, family), path, layout)
        self._sources, self._skipped = sources, skipped
        log.info("LoRA registry: %d LoRA(s), %d file(s) skipped", len(sources), len(skipped))
        return self.specs()

    def _files(self, folder: Path, depth: int) -> list[Path]:
        out: list[Path] = []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return out
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir() and depth < MAX_DEPTH:
                out += self._files(path, depth + 1)
            elif path.suffix.lower() in LORA_SUFFIXES:
                out.append(path)
        return out

    def specs(self) -> list[LoraSpec]:
        return [s.spec for s in self._sources.values()]

    def skipped(self) -> list[SkippedFile]:
        return list(self._skipped)

    def source(self, lora_id: str, field: str = "loras") -> LoraSource:
        source = self._sources.get(lora_id)
        if source is None:
            ids = list(self._sources)
            offered = ", ".join(ids[:20]) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
            raise EngineError(errors.UNKNOWN_LORA, f"unknown LoRA {str(lora_id)[:120]!r}; available: "
                              f"{offered or 'none'}", field)
        return source


def adapter_name(source: LoraSource) -> str:
    digest = hashlib.sha1(f"{source.spec.id}\0{source.path}".encode()).hexdigest()[:16]
    return f"lora_{digest}"


def _modules(pipe: Any) -> list[tuple[str, Any]]:
    """(state-dict prefix, module) of the pipeline's LoRA-capable parts."""
    out = [("unet", pipe.unet), ("text_encoder", getattr(pipe, "text_encoder", None))]
    out.append(("text_encoder_2", getattr(pipe, "text_encoder_2", None)))
    return [(prefix, m) for prefix, m in out if m is not None]


def _has(module: Any, name: str) -> bool:
    return name in (getattr(module, "peft_config", None) or {})


def _delete(module: Any, name: str) -> None:
    if not _has(module, name):
        return
    if hasattr(module, "delete_adapters"):  # a diffusers model
        module.delete_adapters(name)
    else:
        from diffusers.utils.peft_utils import delete_adapter_layers

        delete_adapter_layers(module, name)
        module.peft_config.pop(name, None)


def set_active(module: Any, weights: dict[str, float]) -> None:
    """Make exactly ``weights`` (adapter -> scale) active in ``module``'s LoRA layers; none: adapters off."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for layer in module.modules():
        if not isinstance(layer, BaseTunerLayer):
            continue
        names = [n for n in weights if n in getattr(layer, "scaling", {})]
        if names:
            layer.enable_adapters(True)
            layer.set_adapter(names)
            for name in names:
                layer.set_scale(name, weights[name])
        else:
            layer.enable_adapters(False)


@dataclass
class LoraSlots:
    """The adapters injected into one loaded model's modules, and which are active."""

    loads: int = 0  # LoRA files read and injected (a cache hit reads nothing)
    resident: OrderedDict[str, None] = field(default_factory=OrderedDict)
    targets: dict[str, set[str]] = field(default_factory=dict)  # adapter -> the module prefixes it has layers for
    active: dict[int, tuple[tuple[str, float], ...]] = field(default_factory=dict)  # id(module) -> weights set

    def apply(self, pipe: Any, all_pipes: list[Any], family: str, uses: list[tuple[LoraSource, float]]) -> None:
        """Inject what ``uses`` needs into ``pipe`` (once), then activate exactly those at their weights."""
        weights: dict[str, float] = {}
        for n, (source, weight) in enumerate(uses):
            if source.spec.family != family:
                raise EngineError(errors.INCOMPATIBLE_LORA, f"LoRA {source.spec.id!r} is for {source.spec.family} "
                                  f"models; this model is {family}", f"loras[{n}].id")
            name = adapter_name(source)
            self._ensure(pipe, source, name, family, n)
            self.resident[name] = None
            self.resident.move_to_end(name)
            if weight != 0:
                weights[name] = float(weight)
        self._evict(all_pipes, keep={adapter_name(s) for s, _ in uses})
        for _, module in _modules(pipe):
            if not getattr(module, "peft_config", None):
                continue  # never had a LoRA: nothing to switch
            mine = tuple((n, w) for n, w in weights.items() if _has(module, n))
            if self.active.get(id(module)) != mine:
                set_active(module, dict(mine))
                self.active[id(module)] = mine

    def _ensure(self, pipe: Any, source: LoraSource, name: str, family: str, index: int) -> None:
        modules = _modules(pipe)
        known = self.targets.get(name)
        if known is not None and all(_has(m, name) for p, m in modules if p in known):
            return
        where = f"loras[{index}].id"
        try:
            from safetensors.torch import load_file

            raw = load_file(str(source.path))
        except Exception as exc:
            raise EngineError(errors.LORA_LOAD_FAILED, f"cannot read LoRA {source.spec.id!r}: {exc}", where) from None
        try:
            extra = {"unet_config": pipe.unet.config} if FAMILIES[family].lora_unet_config else {}
            state, alphas = type(pipe).lora_state_dict(raw, **extra)
            self.loads += 1
            prefixes = {k.partition(".")[0] for k in state}
            for prefix, module in modules:
                if prefix not in prefixes or _has(module, name):
                    continue
                if prefix == "unet":
                    type(pipe).load_lora_into_unet(state, alphas, unet=module, adapter_name=name)
                else:
                    type(pipe).load_lora_into_text_encoder(state, alphas, text_encoder=module, prefix=prefix,
                                                           adapter_name=name)
                if not _has(module, name):
                    raise ValueError(f"none of its {prefix} layers match this model")
            self.targets[name] = prefixes & {p for p, _ in modules}
            self.active.clear()  # injection may change which adapters are active: switch again
        except EngineError:
            raise
        except Exception as exc:
            for _, module in modules:
                _delete(module, name)
            text = str(exc).splitlines()[0][:400] if str(exc) else type(exc).__name__
            code = errors.INCOMPATIBLE_LORA if _looks_incompatible(text) else errors.LORA_LOAD_FAILED
            raise EngineError(code, f"cannot apply LoRA {source.spec.id!r} to this model: {text}", where) from None

    def _evict(self, all_pipes: list[Any], keep: set[str]) -> None:
        while len(self.resident) > MAX_RESIDENT:
            victim = next((n for n in self.resident if n not in keep), None)
            if victim is None:
                return
            del self.resident[victim]
            self.targets.pop(victim, None)
            for pipe in all_pipes:
                for _, module in _modules(pipe):
                    _delete(module, victim)
            self.active.clear()


def _looks_incompatible(text: str) -> bool:
    lower = text.lower()
    return any(s in lower for s in ("size mismatch", "shape", "match", "not found", "target modules"))


def resolve(registry: LoraRegistry | None, uses: tuple[LoraUse, ...]) -> list[tuple[LoraSource, float]]:
    """The sources of a request's LoRAs; unknown_lora naming the entry for an id the server does not offer."""
    if not uses:
        return []
    if registry is None:
        raise EngineError(errors.UNKNOWN_LORA, "this server has no LoRA folders configured", "loras")
    return [(registry.source(u.id, f"loras[{n}].id"), u.weight) for n, u in enumerate(uses)]


def signature(uses: list[tuple[LoraSource, float]]) -> tuple[tuple[str, float], ...]:
    """What a cached prompt embedding depends on besides the text (text-encoder LoRAs)."""
    return tuple((adapter_name(s), w) for s, w in uses if w != 0)
