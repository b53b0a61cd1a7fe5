"""What the painter asked for (prompt, strength, seed ...) and how it is stored in a document.

Host independent. A result layer's parameters live in one JSON document annotation (type ``underpaint``)
keyed by the layer's unique id, so they survive .kra save/load and can be re-applied.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from .proto import core, vocabulary

ANNOTATION_TYPE = "underpaint"
ANNOTATION_DESCRIPTION = "Underpaint generation parameters"
MODES = core.regions.MODES + core.params.CANVAS_KINDS  # "auto" and every job kind
SOURCES = ("layer", "visible")
MAX_SEED = vocabulary.MAX_SEED
ParamsError = core.params.ParamsError  # a generation parameter out of range or of the wrong type


@dataclass(frozen=True)
class GenerationParams:
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None  # None: the server's default
    mode: str = "auto"  # auto: inpaint when there is a selection, img2img otherwise
    source: str = "layer"  # layer: the active layer; visible: the merged visible image
    strength: float = vocabulary.STRENGTH.default
    steps: int = int(vocabulary.STEPS.default)
    guidance: float = vocabulary.GUIDANCE.default
    seed: int | None = None  # None: random
    batch: int = int(vocabulary.BATCH.default)
    sampler: str = "default"  # a sampler of the vocabulary; the docker offers the server's
    loras: str = ""  # as typed: "id:weight, id" (core.params.loras); "" = none
    resolution: str = "auto"  # fit | full | auto (servers with the ``tiled`` feature)
    upscale_factor: int = 2
    upscaler: str | None = None  # a server upscaler id; None: a plain resize
    refine: bool = True  # upscale: refine the upscaled image (at strength) afterwards
    grow_canvas: bool = False  # upscale: scale the whole image by the factor first
    expand: tuple[int, int, int, int] = (0, 0, 0, 0)  # expand canvas: pixels left, top, right, bottom

    def option_values(self) -> dict[str, Any]:
        """The settings of the kinds' own options messages by their field names (``core.request.kind_options``)."""
        return {"factor": self.upscale_factor, "upscaler": self.upscaler, "refine": self.refine}

    def validated(self) -> GenerationParams:
        _choice("mode", self.mode, MODES)
        _choice("resolution", self.resolution, vocabulary.RESOLUTIONS)
        _choice("upscale_factor", self.upscale_factor, vocabulary.UPSCALE_FACTORS)
        if self.upscaler is not None and (not isinstance(self.upscaler, str) or not self.upscaler):
            raise ParamsError("upscaler must be a non-empty upscaler id or None for a plain resize")
        for name in ("refine", "grow_canvas"):
            if not isinstance(getattr(self, name), bool):
                raise ParamsError(f"{name} must be true or false")
        try:
            if not isinstance(self.expand, tuple) or len(self.expand) != 4:
                raise TypeError(f"got {self.expand!r}")
            core.canvas.Expansion(*self.expand)
        except (TypeError, core.canvas.CanvasError) as exc:
            raise ParamsError(f"expand must be 4 pixel counts (left, top, right, bottom): {exc}") from None
        _choice("source", self.source, SOURCES)
        _choice("sampler", self.sampler, tuple(vocabulary.SAMPLERS))
        _number("strength", self.strength, vocabulary.STRENGTH, float)
        _number("steps", self.steps, vocabulary.STEPS, int)
        _number("guidance", self.guidance, vocabulary.GUIDANCE, float)
        _number("batch", self.batch, vocabulary.BATCH, int)
        if self.seed is not None:
            _number("seed", self.seed, (0, MAX_SEED), int)
        for name in ("prompt", "negative_prompt", "loras"):
            if not isinstance(getattr(self, name), str):
                raise ParamsError(f"{name} must be text")
        core.params.loras(self.loras)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ParamsError("model must be a non-empty model id or None for the server default")
        return self

    def resolved_seed(self, rng: random.Random | None = None) -> int:
        """The seed to send: the fixed one, or a fresh random one."""
        if self.seed is not None:
            return self.seed
        return (rng or random.SystemRandom()).randint(0, MAX_SEED)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> GenerationParams:
        """Inverse of ``to_dict``; unknown keys are ignored (newer plugin versions), bad values raise ParamsError."""
        if not isinstance(data, dict):
            raise ParamsError(f"parameters must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("strength", "guidance"):
            if isinstance(values.get(key), int) and not isinstance(values.get(key), bool):
                values[key] = float(values[key])
        if isinstance(values.get("expand"), list):
            values["expand"] = tuple(values["expand"])
        return cls(**values).validated()


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParamsError(f"{name} must be one of {', '.join(map(str, choices))} (got {value!r})")


def _number(name: str, value: object, bounds: Any, kind: type) -> None:
    if kind is int and isinstance(value, float):  # a stored 20.0 is not a whole number here
        raise ParamsError(f"{name} must be a whole number (got {value!r})")
    core.params.number(name, value, bounds, integer=kind is int)


@dataclass(frozen=True)
class ResultRecord:
    """What produced one result layer: the parameters with the seed that was actually used."""

    params: GenerationParams
    kind: str  # a job kind of the vocabulary
    seed: int
    region: tuple[int, int, int, int]  # x, y, width, height in document pixels
    server_version: str = ""
    created: str = ""  # ISO 8601 time
    source: str = ""  # unique id of the source layer, "" for the visible image (or records of older versions)

    def reuse(self) -> GenerationParams:
        """Parameters that reproduce this result: same everything, the used seed fixed, one image."""
        return dataclasses.replace(self.params, seed=self.seed, batch=1, mode=self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "kind": self.kind, "seed": self.seed, "region": list(self.region),
                "server_version": self.server_version, "created": self.created, "source": self.source}

    @classmethod
    def from_dict(cls, data: Any) -> ResultRecord:
        if not isinstance(data, dict):
            raise ParamsError("a result record must be a JSON object")
        try:
            region = tuple(int(v) for v in data["region"])
            if len(region) != 4:
                raise ValueError
            kind, seed = data["kind"], data["seed"]
        except (KeyError, TypeError, ValueError):
            raise ParamsError("a result record needs kind, seed and a 4-number region") from None
        _choice("kind", kind, core.params.PLUGIN_KINDS)
        _number("seed", seed, (0, MAX_SEED), int)
        return cls(GenerationParams.from_dict(data.get("params")), kind, seed, region,  # type: ignore[arg-type]
                   str(data.get("server_version", "")), str(data.get("created", "")), str(data.get("source", "")))


def decode_annotation(data: bytes | None) -> dict[str, ResultRecord]:
    """Layer id -> record from the document annotation; empty when absent. Raises ParamsError if corrupt."""
    if not data:
        return {}
    try:
        doc = core.naming.decode_record(data, "Underpaint annotation")
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    if not isinstance(doc.get("layers"), dict):
        raise ParamsError("the Underpaint annotation has no 'layers' object")
    return {str(k): ResultRecord.from_dict(v) for k, v in doc["layers"].items()}


def encode_annotation(records: dict[str, ResultRecord]) -> bytes:
    return core.naming.encode_record({"layers": {k: r.to_dict() for k, r in sorted(records.items())}})
