"""The docker's controls for resolution, upscale and expand canvas, shown only for what the server offers.

- Resolution (servers with ``tiled``): Fit to model (fast) / Full resolution (tiled) / Auto, whose label says
  what it picks for the active layer at the current strength (``vocabulary.pick_resolution``).
- Upscale (mode "Upscale"): factor, the server's upscaler models or a plain resize, refine, "Upscale canvas".
- Expand canvas (mode "Expand canvas"): pixels to add on each side.
"""

from __future__ import annotations

from typing import Any

from . import qt
from .params import GenerationParams
from .proto import core, vocabulary

SIDE_LABELS = (("left", "Left"), ("top", "Top"), ("right", "Right"), ("bottom", "Bottom"))


def _named(widget: Any, name: str) -> Any:
    widget.setObjectName(f"underpaint_{name}")
    return widget


def _group(rows: list[tuple[str, Any]], name: str) -> Any:
    box = _named(qt.QWidget(), name)
    form = qt.QFormLayout(box)
    form.setContentsMargins(0, 0, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return box


def source_area(doc: Any, source: str) -> tuple[int, int]:
    """(width, height) a job would send from ``doc`` (a Krita Document or None): the active layer's part of the
    canvas, or the canvas for the visible image; a selection is ignored (it only makes the area smaller)."""
    if doc is None:
        return 0, 0
    width, height = doc.width(), doc.height()
    node = doc.activeNode() if source == "layer" else None
    if node is None:
        return width, height
    b = node.bounds()
    return (max(0, min(b.x() + b.width(), width) - max(b.x(), 0)),
            max(0, min(b.y() + b.height(), height) - max(b.y(), 0)))


class CanvasPanel:
    """The widgets; ``add_to(form)`` puts them into the docker's parameter form."""

    def __init__(self) -> None:
        self._tiled = False  # the server offers the resolution choice (else it runs "auto", its one way)
        self.resolution = _named(qt.QComboBox(), "resolution")
        self.resolution.setToolTip("Large layers: fit to the model's size (fast, softer) or refine at the "
                                   "layer's own resolution in overlapping tiles (sharp, slower)")
        self._resolution_row = _group([("Resolution", self.resolution)], "resolution_row")
        self.factor = _named(qt.QComboBox(), "upscale_factor")
        for factor in vocabulary.UPSCALE_FACTORS:
            self.factor.addItem(f"x{factor}", factor)
        self.upscaler = _named(qt.QComboBox(), "upscaler")
        self.refine = _named(qt.QCheckBox("Refine after upscaling (at Strength)"), "refine")
        self.refine.setChecked(True)
        self.grow_canvas = _named(qt.QCheckBox("Upscale canvas (scale the whole image first)"), "grow_canvas")
        self.grow_canvas.setToolTip("Off: the new, larger layer is placed at the scaled position in the canvas as "
                                    "it is. On: the image and all its layers are scaled by the factor first, "
                                    "so the new layer lies exactly over its scaled source.")
        self._upscale = _group([("Factor", self.factor), ("Upscaler", self.upscaler), ("", self.refine),
                                ("", self.grow_canvas)], "upscale_options")
        self.sides = {}
        rows = []
        for side, label in SIDE_LABELS:
            box = _named(qt.QSpinBox(), f"expand_{side}")
            box.setRange(0, core.canvas.MAX_EXPAND)
            box.setSingleStep(64)
            box.setSuffix(" px")
            self.sides[side] = box
            rows.append((f"Add {label.lower()}", box))
        self._expand = _group(rows, "expand_options")
        self._expand.setToolTip("The canvas grows when the result arrives (one undo step); cancelling leaves it "
                                "as it is")
        self.set_upscalers([])

    def add_to(self, form: Any) -> None:
        for widget in (self._resolution_row, self._upscale, self._expand):
            form.addRow(widget)

    # ---------------------------------------------------------------- server offer, mode
    def set_upscalers(self, upscalers: list | tuple) -> None:
        choices = core.canvas.upscaler_choices(upscalers)
        if [self.upscaler.itemData(i) for i in range(self.upscaler.count())] == [v for _, v in choices]:
            return
        selected = self.upscaler.currentData()
        self.upscaler.clear()
        for text, value in choices:
            self.upscaler.addItem(text, value)
        self.upscaler.setCurrentIndex(max(self.upscaler.findData(selected), 0))

    def update(self, mode: str, tiled: bool, area: tuple[int, int], model_side: int, strength: float) -> None:
        """Show the controls of ``mode``; Auto's label for an ``area`` (width, height) of the source."""
        self._upscale.setVisible(mode == core.canvas.UPSCALE)
        self._expand.setVisible(mode == core.canvas.EXPAND)
        self._tiled = tiled
        refinable = mode not in vocabulary.KINDS or vocabulary.KINDS[mode].refinable  # "auto" is
        self._resolution_row.setVisible(tiled and refinable)
        choices = core.canvas.resolution_choices(area[0], area[1], model_side, strength)
        selected = self.resolution.currentData() or "auto"
        if [self.resolution.itemText(i) for i in range(self.resolution.count())] != [t for t, _ in choices]:
            self.resolution.clear()
            for text, value in choices:
                self.resolution.addItem(text, value)
            self.resolution.setCurrentIndex(max(self.resolution.findData(selected), 0))

    # ---------------------------------------------------------------- parameters
    def values(self) -> dict[str, Any]:
        resolution = (self.resolution.currentData() or "auto") if self._tiled else "auto"
        return {"resolution": resolution, "upscale_factor": self.factor.currentData(),
                "upscaler": self.upscaler.currentData(), "refine": self.refine.isChecked(),
                "grow_canvas": self.grow_canvas.isChecked(),
                "expand": tuple(self.sides[side].value() for side, _ in SIDE_LABELS)}

    def set_values(self, params: GenerationParams) -> None:
        for combo, value in ((self.resolution, params.resolution), (self.factor, params.upscale_factor),
                             (self.upscaler, params.upscaler)):
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)
        self.refine.setChecked(params.refine)
        self.grow_canvas.setChecked(params.grow_canvas)
        for (side, _), value in zip(SIDE_LABELS, params.expand, strict=True):
            self.sides[side].setValue(value)
