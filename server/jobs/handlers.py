"""One handler per job kind: how a job's decoded inputs are cut and masked for the engine.

The registry is keyed by ``vocabulary.KINDS``. A kind is served when it has a handler here; the welcome
advertises exactly those (``Service.welcome``), so a kind the vocabulary declares but this server does not
implement (``outpaint``, ``upscale``) is refused by the connection with ``unsupported`` before any frame
is read. Adding a kind = its vocabulary row + one handler below + the hosts' UI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import Submit
from underpaint.protocol.vocabulary import KINDS

from .. import imaging
from ..engine.interface import PIPELINES


@dataclass(frozen=True)
class Inputs:
    """A job's inputs, decoded: ``image`` is (H, W, 4) RGBA covering ``rect``; aligned single-channel roles
    (``mask``) are (H, W) uint8 over the same rectangle."""

    image: np.ndarray
    rect: Rect
    channels: dict[str, np.ndarray]

    def get(self, role: str) -> np.ndarray | None:
        return self.channels.get(role)


@dataclass(frozen=True)
class Model:
    """What a handler needs to know of the model: its native side and the operator's pixel cap."""

    resolution: int
    max_pixels: int | None


Prepare = Callable[[Inputs, Submit, Model], imaging.Prepared]


@dataclass(frozen=True)
class Handler:
    """A job kind on this server: the engine pipeline it runs (``engine.interface.PIPELINES``; a model offers
    the kind when it runs that pipeline) and how it cuts and masks the inputs for it."""

    pipeline: str
    prepare: Prepare


def img2img(inputs: Inputs, submit: Submit, model: Model) -> imaging.Prepared:
    """The whole image, repainted at ``strength``."""
    return imaging.prepare(inputs.image, inputs.rect, None, "img2img", model.resolution, 0, 0, 0, model.max_pixels)


def inpaint(inputs: Inputs, submit: Submit, model: Model) -> imaging.Prepared:
    """The mask's surroundings (``inpaint.context``), the mask grown and feathered; pasted back by the mask."""
    opts = submit.inpaint
    return imaging.prepare(inputs.image, inputs.rect, inputs.get("mask"), "inpaint", model.resolution,
                           opts.context, opts.grow, opts.feather, model.max_pixels)


HANDLERS: dict[str, Handler] = {
    "img2img": Handler("img2img", img2img),
    "inpaint": Handler("inpaint", inpaint),
}
_unknown = set(HANDLERS) - set(KINDS) or {h.pipeline for h in HANDLERS.values()} - set(PIPELINES)
if _unknown:  # a handler for a kind the protocol does not declare is a bug here, not in a client
    raise ImportError(f"handlers name kinds or pipelines that are not declared: {sorted(_unknown)}")


def kinds_for(pipelines: Iterable[str]) -> tuple[str, ...]:
    """The job kinds a model running these pipelines can serve (``ModelInfo.capabilities``), in vocabulary order."""
    runs = set(pipelines)
    return tuple(kind for kind in KINDS if kind in HANDLERS and HANDLERS[kind].pipeline in runs)
