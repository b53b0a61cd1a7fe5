"""Generation values checked against the vocabulary's ranges and the server's ``welcome.limits``, and what a
plugin may offer: the kinds, samplers and preview encodings both peers advertised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import vocabulary
from ..vocabulary import Range

# Every kind of the vocabulary: the host adapters capture and place each (a new kind: a row, a handler, widgets).
PLUGIN_KINDS = tuple(vocabulary.KINDS)
# offered only once a server advertised them (they have their own UI)
CANVAS_KINDS = tuple(name for name, kind in vocabulary.KINDS.items() if kind.changes_canvas)
REFINE_KINDS = tuple(name for name, kind in vocabulary.KINDS.items() if kind.refinable)  # submit.resolution


class ParamsError(ValueError):
    """A value out of range or of the wrong type; the message names it as the host labels it."""


def number(name: str, value: Any, bounds: Range | tuple[float, float], integer: bool = False) -> Any:
    """``value`` as an int (``integer``) or float inside ``bounds`` (a vocabulary ``Range`` or (lo, hi))."""
    lo, hi = (bounds.lo, bounds.hi) if isinstance(bounds, Range) else bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(f"{name} must be a number (got {value!r})")
    if integer and not isinstance(value, int):
        if value != value or not float(value).is_integer():
            raise ParamsError(f"{name} must be a whole number (got {value!r})")
        value = int(value)
    if not lo <= value <= hi:  # also refuses NaN
        raise ParamsError(f"{name} must be between {lo:g} and {hi:g} (got {value!r})")
    return int(value) if integer else float(value)


def seed(name: str, value: Any) -> int:
    return number(name, value, (0, vocabulary.MAX_SEED), integer=True)


def limit_problem(limits: Any, steps: int, batch: int, pixels: int = 0,
                  labels: tuple[str, str] = ("Steps", "Images")) -> str | None:
    """Why a job breaks the server's ``welcome.limits`` (a sentence with the host's labels), or None."""
    steps_label, batch_label = labels
    if steps > limits.max_steps:
        return (f"This server allows at most {limits.max_steps} steps per job, but {steps_label} is {steps}: "
                f"lower {steps_label} and try again.")
    if batch > limits.max_batch:
        return (f"This server makes at most {limits.max_batch} images per job, but {batch_label} is {batch}: "
                f"lower {batch_label} and try again.")
    if pixels > limits.max_pixels:
        return (f"The area is {pixels:,} pixels but this server accepts at most {limits.max_pixels:,}: "
                "select a smaller area.")
    return None


def model_problem(welcome: Any, model: str | None) -> str | None:
    """A sentence when ``model`` is not one of the server's models (None: the server's default)."""
    if model and model not in {m.id for m in welcome.models}:
        return f"The server has no model {model!r}; pick one from the list."
    return None


RESUME_FLAGS = ("resume", "resume_key")
TILED_FLAG = "tiled"  # submit.resolution: fit to the model or full resolution in tiles


def client_features(preview_encodings: Iterable[str] = (), resume: bool = False, live: bool = False,
                    lora: bool = False) -> tuple[str, ...]:
    """What a plugin advertises in ``hello``: the kinds it implements, every sampler, the preview encodings
    its host can show beyond the core ones (e.g. ``("jpeg",)`` where Qt decodes JPEG), ``tiled`` (it sends
    ``submit.resolution``), ``resume`` + ``resume_key`` when it re-attaches its jobs after a dropped connection
    (``jobs.Tracker.kept``), ``live`` when it has a live mode (``live.LiveSession``) and ``lora`` when its UI
    lets the painter pick LoRAs."""
    flags = (RESUME_FLAGS if resume else ()) + (TILED_FLAG,)
    flags += (("live",) if live else ()) + (("lora",) if lora else ())
    return vocabulary.features(kinds=PLUGIN_KINDS, roles=(), samplers=None, encodings=tuple(preview_encodings),
                               flags=flags)


def loras(text: str, label: str = "LoRAs") -> tuple[tuple[str, float], ...]:
    """``"styles/ink:0.6, hyper-8step"`` -> ``(("styles/ink", 0.6), ("hyper-8step", 1.0))``: comma-separated
    LoRA ids, each with an optional ``:weight``; ParamsError naming the entry that is wrong."""
    out: list[tuple[str, float]] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        name, _, weight_text = part.rpartition(":")
        if not name:
            name, weight_text = part, ""
        try:
            weight = float(weight_text) if weight_text.strip() else vocabulary.LORA_WEIGHT.default
        except ValueError:
            name, weight = part, vocabulary.LORA_WEIGHT.default  # a ':' that is part of the id
        name = name.strip()
        number(f"{label}: the weight of {name!r}", weight, vocabulary.LORA_WEIGHT)
        if name in (n for n, _ in out):
            raise ParamsError(f"{label}: {name!r} is listed twice")
        out.append((name, float(weight)))
    if len(out) > vocabulary.MAX_LORAS:
        raise ParamsError(f"{label}: at most {vocabulary.MAX_LORAS} LoRAs per job (got {len(out)})")
    return tuple(out)


def lora_problem(welcome: Any, chosen: Iterable[tuple[str, float]], model: str | None) -> str | None:
    """A sentence when a chosen LoRA is not on the server or not for the job's model family, else None."""
    offered = {lo.id: lo for lo in getattr(welcome, "loras", ())}
    model_id = model or getattr(getattr(welcome, "defaults", None), "model", None)
    family = next((m.family for m in welcome.models if m.id == model_id), None)
    for name, _ in chosen:
        lora = offered.get(name)
        if lora is None:
            names = ", ".join(list(offered)[:10]) or "none"
            return f"The server has no LoRA {name!r} (it has: {names}); check the LoRAs field."
        if family is not None and lora.family != family:
            return (f"The LoRA {name!r} is for {lora.family} models but {model_id!r} is {family}: remove it or "
                    "pick a matching model.")
    return None


@dataclass(frozen=True)
class Offer:
    """What the UI may offer on a connection: rows whose feature is core or advertised by both peers."""

    kinds: tuple[str, ...]
    samplers: tuple[str, ...]
    preview_encodings: tuple[str, ...]
    resume: bool = False  # submit with keep_result and resume after a dropped connection
    live: bool = False  # live painting streams (``live.LiveSession``)
    lora: bool = False  # submit.loras
    tiled: bool = False  # offer the resolution choice (fit to model / full resolution in tiles)

    def preview_encoding(self, preferred: Iterable[str]) -> str:
        """The first of ``preferred`` on offer, else lossless ``png`` (core)."""
        return next((e for e in preferred if e in self.preview_encodings), "png")


def offer(common: Iterable[str] | None, client: Iterable[str] | None = None) -> Offer:
    """The ``Offer`` for ``common`` features (``welcome.features``; None: not connected, offer img2img and
    inpaint, nothing optional); ``client``: what this plugin advertised, when it is narrower than the welcome."""
    names = set(common or ())
    if client is not None:
        names &= set(client)

    def usable(table: dict) -> tuple[str, ...]:
        return tuple(n for n, row in table.items() if row.feature is None or row.feature in names)

    kinds = tuple(k for k in PLUGIN_KINDS if vocabulary.KINDS[k].feature in names
                  or (common is None and k not in CANVAS_KINDS))
    resume = names.issuperset(RESUME_FLAGS)  # a server without resume keys answers every resume unknown_job
    return Offer(kinds, usable(vocabulary.SAMPLERS), usable(vocabulary.ENCODINGS), resume, "live" in names,
                 "lora" in names, TILED_FLAG in names)


def kind_problem(kinds: tuple[str, ...], kind: str) -> str | None:
    if kind not in kinds:
        offered = ", ".join(kinds) or "no job kind this plugin knows"
        return f"This server does not offer {kind} (it offers {offered}): update the server or pick another mode."
    return None
