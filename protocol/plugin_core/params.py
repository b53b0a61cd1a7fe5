"""Generation values checked against the vocabulary's ranges and the server's ``welcome.limits``, and what a
plugin may offer: the kinds, samplers and preview encodings both peers advertised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import vocabulary
from ..vocabulary import Range

PLUGIN_KINDS = ("img2img", "inpaint")  # what the host adapters can capture and place today


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


def client_features(preview_encodings: Iterable[str] = (), resume: bool = False, live: bool = False
                    ) -> tuple[str, ...]:
    """What a plugin advertises in ``hello``: the kinds it implements, every sampler, the preview encodings
    its host can show beyond the core ones (e.g. ``("jpeg",)`` where Qt decodes JPEG), ``resume`` +
    ``resume_key`` when it re-attaches its jobs after a dropped connection (``jobs.Tracker.kept``), and
    ``live`` when it has a live mode (``live.LiveSession``)."""
    flags = (RESUME_FLAGS if resume else ()) + (("live",) if live else ())
    return vocabulary.features(kinds=PLUGIN_KINDS, roles=(), samplers=None, encodings=tuple(preview_encodings),
                               flags=flags)


@dataclass(frozen=True)
class Offer:
    """What the UI may offer on a connection: rows whose feature is core or advertised by both peers."""

    kinds: tuple[str, ...]
    samplers: tuple[str, ...]
    preview_encodings: tuple[str, ...]
    resume: bool = False  # submit with keep_result and resume after a dropped connection
    live: bool = False  # live painting streams (``live.LiveSession``)

    def preview_encoding(self, preferred: Iterable[str]) -> str:
        """The first of ``preferred`` on offer, else lossless ``png`` (core)."""
        return next((e for e in preferred if e in self.preview_encodings), "png")


def offer(common: Iterable[str] | None, client: Iterable[str] | None = None) -> Offer:
    """The ``Offer`` for ``common`` features (``welcome.features``; None: not connected, offer nothing
    optional); ``client``: what this plugin advertised, when it is narrower than the welcome."""
    names = set(common or ())
    if client is not None:
        names &= set(client)

    def usable(table: dict) -> tuple[str, ...]:
        return tuple(n for n, row in table.items() if row.feature is None or row.feature in names)

    kinds = tuple(k for k in PLUGIN_KINDS if common is None or vocabulary.KINDS[k].feature in names)
    resume = names.issuperset(RESUME_FLAGS)  # a server without resume keys answers every resume unknown_job
    return Offer(kinds, usable(vocabulary.SAMPLERS), usable(vocabulary.ENCODINGS), resume, "live" in names)


def kind_problem(kinds: tuple[str, ...], kind: str) -> str | None:
    if kind not in kinds:
        offered = ", ".join(kinds) or "no job kind this plugin knows"
        return f"This server does not offer {kind} (it offers {offered}): update the server or pick another mode."
    return None
