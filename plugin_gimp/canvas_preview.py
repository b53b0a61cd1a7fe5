"""The temporary preview layer: previews shown in the image, above the source, while a job runs.

The layer is added and removed with the image's undo frozen (GIMP's documented way for in-place previews),
so it never becomes an undo step: a finished job leaves one undo step (its result layers), a cancelled or
failed one leaves the image and its undo history as they were. GIMP still sets the image's "modified" mark,
even with undo frozen; it is never cleared here, as that could hide the painter's own unsaved work. Only
pixels are written in between, which records no undo either; the painter keeps painting and undoing
normally meanwhile. Inserting a layer selects it in GIMP: the painter's selected layers are put back right
after. Main thread only.

If GIMP kills the plug-in mid-job (its progress Cancel, a crash) nothing here can run: the layer stays. It
carries a parasite with the owning process id, and the next Underpaint run on that image removes preview
layers whose process is gone (``remove_stale``).
"""

from __future__ import annotations

import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from . import pixels as px  # noqa: E402
from ._protocol import core  # noqa: E402
from .trace import log  # noqa: E402

Plan = core.regions.Plan

PREVIEW_PARASITE = "underpaint-preview"  # not persistent: never saved in .xcf files
LAYER_NAME = "Underpaint preview (temporary)"


def _frozen(image: Gimp.Image, action) -> None:
    """Run ``action`` with the undo frozen and the painter's selected layers kept."""
    selected = list(image.get_selected_layers())
    image.undo_freeze()
    try:
        action()
    finally:
        if all(layer.is_valid() for layer in selected):
            image.set_selected_layers(selected)
        image.undo_thaw()


def insert_temporary(image: Gimp.Image, source: Gimp.Layer, name: str, rect, gray: bool) -> Gimp.Layer:
    """A temporary layer of ours directly above ``source`` at ``rect`` (undo frozen, the painter's selected layers
    kept), marked with this process so that ``remove_stale`` can take it out if we die."""
    layers: list[Gimp.Layer] = []

    def insert() -> None:
        kind = Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE
        layer = Gimp.Layer.new(image, name, rect.width, rect.height, kind, 100.0, Gimp.LayerMode.NORMAL)
        layer.attach_parasite(Gimp.Parasite.new(PREVIEW_PARASITE, 0, str(os.getpid()).encode("ascii")))
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        layer.set_offsets(rect.x, rect.y)
        layers.append(layer)

    _frozen(image, insert)
    return layers[0]


def remove_temporary(image: Gimp.Image, layer: Gimp.Layer | None) -> int | None:
    """Take a temporary layer out (undo frozen); the id it had, or None when there was nothing to remove."""
    if layer is None or not layer.is_valid() or not image.is_valid():
        return None
    layer_id = layer.get_id()
    _frozen(image, lambda: image.remove_layer(layer))
    Gimp.displays_flush()
    return layer_id


def _all_layers(layers) -> list:
    out = []
    for layer in layers:
        out.append(layer)
        if layer.is_group():
            out.extend(_all_layers(layer.get_children()))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale(image: Gimp.Image) -> int:
    """Remove preview layers left by Underpaint processes that no longer run; returns how many."""
    stale = []
    for layer in _all_layers(image.get_layers()):
        parasite = layer.get_parasite(PREVIEW_PARASITE)
        if parasite is None:
            continue
        try:
            pid = int(bytes(parasite.get_data()).decode("ascii"))
        except ValueError:
            pid = 0
        if pid != os.getpid() and not _alive(pid):
            stale.append(layer)
    if stale:
        _frozen(image, lambda: [image.remove_layer(layer) for layer in stale])
        log("stale_previews_removed", count=len(stale))
    Gimp.displays_flush()
    return len(stale)


class CanvasPreview:
    """Shows each preview frame in a temporary layer directly above ``source`` over ``plan.region``."""

    def __init__(self, image: Gimp.Image, source: Gimp.Layer, plan: Plan, gray: bool) -> None:
        self.image, self.source, self.plan, self.gray = image, source, plan, gray
        self.layer: Gimp.Layer | None = None
        self.shown = 0
        self.gone = False  # the painter deleted the layer or closed the image: show no more

    def show(self, rgb: bytes, has_alpha: bool, width: int, height: int) -> None:
        if self.gone:
            return
        if not self.image.is_valid() or not self.source.is_valid() or (
                self.layer is not None and not self.layer.is_valid()):
            self.gone, self.layer = True, None
            return
        if self.layer is None:
            self._insert()
        r = self.plan.region
        bpp = 4 if has_alpha else 3
        data = px.upscale_nearest(rgb, width, height, bpp, r.width, r.height)
        buffer = self.layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, r.width, r.height), "R'G'B'A u8" if has_alpha else "R'G'B' u8", data)
        buffer.flush()
        self.layer.update(0, 0, r.width, r.height)
        Gimp.displays_flush()
        self.shown += 1
        log("canvas_preview", layer=self.layer.get_id(), width=width, height=height,
            selected=[layer.get_id() for layer in self.image.get_selected_layers()],
            layers=len(self.image.get_layers()))

    def _insert(self) -> None:
        layer = insert_temporary(self.image, self.source, LAYER_NAME, self.plan.region, self.gray)
        if self.plan.masked:  # show the preview where the result will show: inside the selection
            _frozen(self.image, lambda: layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION)))
        self.layer = layer
        log("preview_layer_added", layer=layer.get_id())

    def remove(self) -> None:
        """Take the preview layer out (every exit path of a job calls this); safe to call twice."""
        layer, self.layer = self.layer, None
        layer_id = remove_temporary(self.image, layer)
        if layer_id is not None:
            log("preview_layer_removed", layer=layer_id)
