"""Everything that touches the GIMP image: reading pixels and writing the result layer.

The image is changed once per run, in ``insert_results`` (one undo group); previews go into a temporary
layer kept out of the undo history (canvas_preview.py). Main thread only (every call here is a PDB call).
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from . import pixels as px  # noqa: E402
from ._protocol import core  # noqa: E402
from .naming import PARASITE_NAME  # noqa: E402
from .trace import log  # noqa: E402

Plan, Rect = core.regions.Plan, core.regions.Rect

BASE_TYPES = {Gimp.ImageBaseType.RGB: "rgb", Gimp.ImageBaseType.GRAY: "gray",
              Gimp.ImageBaseType.INDEXED: "indexed"}


class ImageGone(RuntimeError):
    """The image or layer was closed or deleted while the job ran."""


def pixel_spec(image: Gimp.Image) -> px.PixelSpec:
    base = BASE_TYPES.get(image.get_base_type(), str(image.get_base_type()))
    return px.choose_spec(base, px.component_of(image.get_precision().value_nick))


def source_layer(drawables: list) -> Gimp.Layer:
    """The one layer to work on: a layer mask stands for its layer; channels are refused."""
    if len(drawables) != 1:
        raise ValueError(f"Select exactly one layer (got {len(drawables)} drawables).")
    drawable = drawables[0]
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if not isinstance(drawable, Gimp.Layer):
        raise ValueError("Underpaint works on layers; select a layer instead of a channel or path.")
    return drawable


def layer_rect(layer: Gimp.Layer) -> Rect:
    _, x, y = layer.get_offsets()
    return Rect(x, y, layer.get_width(), layer.get_height())


def selection_rect(image: Gimp.Image) -> Rect | None:
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return Rect.from_edges(x1, y1, x2, y2) if non_empty else None


def _gegl_rect(rect: Rect) -> Gegl.Rectangle:
    return Gegl.Rectangle.new(rect.x, rect.y, rect.width, rect.height)


def read_layer(layer: Gimp.Layer, plan: Plan, spec: px.PixelSpec) -> bytes:
    """The region's pixels in ``spec`` (little-endian), read from the layer's own grid."""
    data = layer.get_buffer().get(_gegl_rect(plan.local()), 1.0, spec.babl_format, Gegl.AbyssPolicy.NONE)
    px.check_pixels(data, plan.region.width, plan.region.height, spec, "layer pixels")
    return px.to_little_endian(data, spec.bytes_per_sample)


def read_selection(image: Gimp.Image, region: Rect, babl: str = px.MASK_BABL) -> bytes:
    """The selection mask over ``region`` (image coordinates) in ``babl`` (native order)."""
    return image.get_selection().get_buffer().get(_gegl_rect(region), 1.0, babl, Gegl.AbyssPolicy.NONE)


def _layer_type(spec: px.PixelSpec) -> Gimp.ImageType:
    return Gimp.ImageType.GRAYA_IMAGE if spec.gray else Gimp.ImageType.RGBA_IMAGE


def _write(drawable: Gimp.Drawable, width: int, height: int, babl: str, data: bytes) -> None:
    buffer = drawable.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), babl, data)
    buffer.flush()
    drawable.update(0, 0, width, height)


def _new_layer(image: Gimp.Image, name: str, rect: Rect, spec: px.PixelSpec) -> Gimp.Layer:
    layer = Gimp.Layer.new(image, name, rect.width, rect.height, _layer_type(spec), 100.0,
                           Gimp.LayerMode.NORMAL)
    layer.set_offsets(rect.x, rect.y)
    return layer


def _insert_above(image: Gimp.Image, layer: Gimp.Layer, anchor: Gimp.Layer) -> None:
    image.insert_layer(layer, anchor.get_parent(), image.get_item_position(anchor))


def check_alive(image: Gimp.Image, layer: Gimp.Layer) -> None:
    if not image.is_valid():
        raise ImageGone("The image was closed while Underpaint was running; the result was discarded.")
    if not layer.is_valid():
        raise ImageGone("The layer was deleted while Underpaint was running; the result was discarded.")


def insert_results(image: Gimp.Image, source: Gimp.Layer, plan: Plan, spec: px.PixelSpec,
                   results: list[tuple[bytes, str, bytes]], mask: tuple[str, bytes] | None) -> list[Gimp.Layer]:
    """Add each result (pixels, layer name, parasite) as a new layer above ``source``, in one undo group.

    The first result ends up directly above the source, the next ones above it. ``pixels``: little-endian
    pixels of ``plan.region``; ``mask``: (babl format, native pixels) of the layer mask over the region,
    required when the plan is masked. The painter's selected layers stay selected.
    """
    check_alive(image, source)
    region = plan.region
    for data, _, _ in results:
        px.check_pixels(data, region.width, region.height, spec, "result pixels")
    if plan.masked and mask is None:
        raise ValueError("a masked result needs the selection mask")
    selected = list(image.get_selected_layers())
    layers = []
    image.undo_group_start()
    log("undo_group_start")
    try:
        anchor = source
        for data, name, parasite in results:
            layer = _new_layer(image, name, region, spec)
            _write(layer, region.width, region.height, spec.babl_format,
                   px.from_little_endian(data, spec.bytes_per_sample))
            _insert_above(image, layer, anchor)
            log("result_inserted", layer=layer.get_id(), name=name)
            if plan.masked:
                layer_mask = layer.create_mask(Gimp.AddMaskType.BLACK)
                layer.add_mask(layer_mask)
                _write(layer_mask, region.width, region.height, *mask)
                log("mask_added", layer=layer.get_id())
            layer.attach_parasite(Gimp.Parasite.new(PARASITE_NAME, Gimp.PARASITE_PERSISTENT, parasite))
            log("parasite_attached", layer=layer.get_id())
            layers.append(layer)
            anchor = layer
        image.set_selected_layers([layer for layer in selected if layer.is_valid()])
    finally:
        image.undo_group_end()
        log("undo_group_end")
    Gimp.displays_flush()
    return layers


def mask_babl(spec: px.PixelSpec) -> str:
    """Layer masks keep the selection's grey levels at the image's depth."""
    return "Y u16" if spec.bytes_per_sample == 2 else "Y u8"
