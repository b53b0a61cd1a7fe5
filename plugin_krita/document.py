"""The Krita side of one document: read pixels and selection, preview layer, result layers, parameters.

GUI thread only. Implements ``controller.HostDocument``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from . import canvas_jobs, qt, undo_chain
from .jobs import Capture, Job, UserError
from .params import (
    ANNOTATION_DESCRIPTION,
    ANNOTATION_TYPE,
    GenerationParams,
    ParamsError,
    ResultRecord,
    decode_annotation,
    encode_annotation,
)
from .pixels import BYTES_PER_PIXEL, check_size, from_bgra8, pixel_format
from .proto import core, frames, geometry, vocabulary
from .results import ResultImage
from .settings import Settings

Rect = geometry.Rect
# when to check that Krita has not made our new layer the active one (Krita 6 does it late, >300 ms under load)
GUARD_INTERVAL_MS = 100
RESTORE_ACTIVE_MS = (0, 30, 100, 300, 600, 1000, 1500, 2500)
# a preview Krita had not inserted yet when its job ended is looked for every GUARD_INTERVAL_MS until then
# (Krita 6 applies an insertion late, seen > 1.5 s under load)
LATE_REMOVAL_S = 30.0
_NOT_LAYERS = ("selectionmask", "transparencymask", "filtermask", "transformmask", "colorizemask")


def krita() -> Any:
    from krita import Krita  # only importable inside Krita

    return Krita.instance()


def rect_of(qrect: Any) -> Rect:
    return Rect(qrect.x(), qrect.y(), max(0, qrect.width()), max(0, qrect.height()))


def walk(node: Any):
    """Every node below ``node``, depth first."""
    for child in node.childNodes():
        yield child
        yield from walk(child)


class KritaDocument:
    def __init__(self, key: int, doc: Any) -> None:
        self.key = key
        self.doc = doc
        self._previews: dict[str, Any] = {}  # job id -> preview node
        # id of a layer of ours -> (the painter's active layer when it was added, until when to guard it):
        # a preview is guarded while it exists, a result layer only until Krita has settled
        self._guards: dict[str, tuple[str, float]] = {}
        self._guard_timer: Any = None  # repeats while this document shows previews or has late ones to remove
        self._late: list[tuple[Any, float]] = []  # (ended job's preview node not in the document yet, give up at)

    @property
    def name(self) -> str:
        return self.doc.name() or self.doc.fileName() or "Untitled"

    def is_open(self) -> bool:
        return any(d == self.doc for d in krita().documents())

    # ---------------------------------------------------------------- reading
    def selection(self, canvas: Rect) -> tuple[Rect | None, Any]:
        """Bounds of the selected pixels (grey levels >= 1) on the canvas, and the Selection itself."""
        sel = self.doc.selection()
        if sel is None:
            return None, None
        rough = Rect(sel.x(), sel.y(), max(0, sel.width()), max(0, sel.height())).intersect(canvas)
        if rough.is_empty:
            return None, None
        mask = qt.to_bytes(sel.pixelData(rough.x, rough.y, rough.width, rough.height))
        box = geometry.bounding_box(mask, rough.width, rough.height)
        return (box.translate(rough.x, rough.y) if box else None), sel

    def node_by_id(self, node_id: str) -> Any:
        if not node_id:
            return None
        return next((n for n in walk(self.doc.rootNode()) if n.uniqueId().toString() == node_id), None)

    def capture(self, params: GenerationParams, settings: Settings) -> Capture:
        fmt = pixel_format(self.doc.colorModel(), self.doc.colorDepth())
        self.doc.waitForDone()
        if params.mode in canvas_jobs.CANVAS_KINDS:
            return canvas_jobs.capture(self, params, fmt)
        canvas = Rect(0, 0, self.doc.width(), self.doc.height())
        sel_rect, sel = self.selection(canvas)
        node, bounds = None, None
        if params.source == "layer":
            node = self.doc.activeNode()
            if node is None:
                raise UserError("There is no active layer: select the layer to work on.")
            if node.type() in _NOT_LAYERS:
                raise UserError(f"'{node.name()}' is a mask: select a layer as the source.")
            bounds = rect_of(node.bounds())
        padding = max(settings.context_padding, max(settings.grow, 0) + settings.feather)
        has_selection = sel_rect is not None and not sel_rect.is_empty
        try:
            kind = core.regions.choose_kind(params.mode, has_selection)
            plan = core.regions.plan_region(kind, canvas, sel_rect, padding, source=bounds, bounds_name="canvas")
        except core.regions.RegionError as exc:
            raise UserError(str(exc)) from None
        r = plan.region
        if node is not None:
            pixels = qt.to_bytes(node.projectionPixelData(r.x, r.y, r.width, r.height))
        else:
            pixels = qt.to_bytes(self.doc.pixelData(r.x, r.y, r.width, r.height))
        check_size(fmt, pixels, r.width, r.height, "the layer's pixel data")
        mask = None
        if vocabulary.KINDS[plan.kind].needs_selection:
            mask = qt.to_bytes(sel.pixelData(r.x, r.y, r.width, r.height))
            if len(mask) != r.width * r.height:
                raise UserError("Could not read the selection mask.")
        source_id = node.uniqueId().toString() if node is not None else ""
        source_name = node.name() if node is not None else "Visible image"
        return Capture(plan, fmt, pixels, mask, source_id, source_name)

    # ---------------------------------------------------------------- layers
    def _anchor(self, source_id: str) -> Any:
        """The node a new result (or preview) of ``source_id`` goes directly above: the topmost earlier result
        of the same source in its group, else the source itself (None: the visible image, top of the stack)."""
        source = self.node_by_id(source_id)
        if source is None:
            return None
        try:
            records = self.records()
        except ParamsError:  # a damaged annotation: stack directly above the source
            records = {}
        anchor, above_source = source, False
        for sibling in source.parentNode().childNodes():  # bottom to top
            node_id = sibling.uniqueId().toString()
            if node_id == source_id:
                above_source = True
            elif above_source and node_id in records and records[node_id].source == source_id:
                anchor = sibling
        return anchor

    def _insert(self, node: Any, above: Any) -> None:
        """Insert ``node`` directly above ``above`` (in its group), or on top of the stack without it.

        Krita makes an inserted node the active layer; the painter's active layer is put back, so their next
        stroke never lands on a layer of ours.
        """
        active = self.doc.activeNode()
        if above is None:
            self.doc.rootNode().addChildNode(node, None)
        else:
            above.parentNode().addChildNode(node, above)
        if active is not None and self._in_front():  # not at once: Krita has not shown the new layer yet
            self._keep_active(active.uniqueId().toString(), node.uniqueId().toString())

    def _in_front(self) -> bool:
        """Whether this is the document of the active view: ``Document.setActiveNode`` acts on that view only
        (given another document's node, Krita asserts and may crash)."""
        return self.is_open() and krita().activeDocument() == self.doc

    def _keep_active(self, painter_id: str, ours_id: str) -> None:
        """Krita activates an inserted layer again a moment later (from its layer model's signals): whenever our
        layer is the active one then, the painter's layer is made active again. A layer the painter picks
        in between is left alone. Checked on timers after the insertion and again at every preview update
        (Krita can be late under load)."""
        preview = any(n.uniqueId().toString() == ours_id for n in self._previews.values())
        self._guards[ours_id] = (painter_id, math.inf if preview else time.monotonic() + RESTORE_ACTIVE_MS[-1] / 1e3)
        for delay_ms in RESTORE_ACTIVE_MS:
            qt.QTimer.singleShot(delay_ms, self._restore_painter)

    def _watch_previews(self) -> None:
        """While a preview layer exists, check every GUARD_INTERVAL_MS that it has not become the active layer
        (Krita may activate it late, under load more than a second after the insertion); while an ended job's
        preview is not in the document yet, look for it to remove it."""
        if self._guard_timer is None:
            self._guard_timer = qt.QTimer()
            self._guard_timer.setInterval(GUARD_INTERVAL_MS)
            self._guard_timer.timeout.connect(self._guard_tick)
        if not self._guard_timer.isActive():
            self._guard_timer.start()

    def _guard_tick(self) -> None:
        if self._late:
            now = time.monotonic() if self.is_open() else math.inf
            self._late = [(n, until) for n, until in self._late if until > now and not self._remove_node(n)]
        if not self._previews and not self._late:
            self._guard_timer.stop()
            return
        self._restore_painter()

    def _restore_painter(self) -> None:
        """If a layer of ours is the active one, make the painter's layer active again."""
        try:
            if not self._guards or not self._in_front():
                return
            now = time.monotonic()
            self._guards = {k: v for k, v in self._guards.items() if v[1] >= now}
            current = self.doc.activeNode()
            guard = self._guards.get(current.uniqueId().toString()) if current is not None else None
            painter = self.node_by_id(guard[0]) if guard else None
            if painter is not None:
                self.doc.setActiveNode(painter)
        except RuntimeError:  # the document was closed
            pass

    def show_preview(self, job: Job, frame: frames.Frame) -> None:
        region = job.preview_rect or job.capture.region
        bgra = qt.decode_image_bgra(frame.payload, region.width, region.height)
        if bgra is None:
            raise ValueError(f"cannot decode a {frame.encoding} preview")
        data = from_bgra8(job.capture.pixel_format, bgra)
        node = self._previews.get(job.id)
        if node is None:
            node = self.doc.createNode(core.naming.PREVIEW_LAYER_NAME, "paintlayer")
            node.setPixelData(data, region.x, region.y, region.width, region.height)
            node.setLocked(True)  # nobody paints on a layer that goes away
            self._previews[job.id] = node  # first: _insert guards it as a preview
            self._insert(node, self._anchor(job.capture.source_id))
            self._watch_previews()
        else:
            node.setPixelData(data, region.x, region.y, region.width, region.height)
            self._restore_painter()
        self.doc.refreshProjection()

    def clear_preview(self, job: Job) -> None:
        self._discard(self._previews.pop(job.id, None))

    def _discard(self, node: Any) -> None:
        """Take a temporary layer (preview, live) out now, or once Krita has applied its insertion."""
        if node is None:
            return
        self._guards.pop(node.uniqueId().toString(), None)
        if not self._remove_node(node) and self.is_open():  # Krita has not applied the insertion yet
            self._late.append((node, time.monotonic() + LATE_REMOVAL_S))
            self._watch_previews()

    def _remove_node(self, node: Any) -> bool:
        """Take ``node`` out of the document if it is in it (never waits: no nested event loop)."""
        try:
            if not self.is_open() or self.node_by_id(node.uniqueId().toString()) is None:
                return False
            node.remove()
            self.doc.refreshProjection()
            return True
        except RuntimeError:  # the document went away meanwhile
            return False

    def show_layer(self, key: str, name: str, source_id: str, data: bytes, rect: Rect) -> None:
        """Pixels (document format) into the temporary layer ``key`` (the live layer): locked, guarded like a
        preview, made directly above ``source_id`` (and its results) on first use; never an undo step."""
        node = self._previews.get(key)
        if node is not None and self.node_by_id(node.uniqueId().toString()) is None:  # the painter deleted it
            self._previews.pop(key, None)
            self._guards.pop(node.uniqueId().toString(), None)
            node = None
        if node is None:
            node = self.doc.createNode(name, "paintlayer")
            node.setPixelData(data, rect.x, rect.y, rect.width, rect.height)
            node.setLocked(True)
            self._previews[key] = node
            self._insert(node, self._anchor(source_id))
            self._watch_previews()
        else:
            node.setPixelData(data, rect.x, rect.y, rect.width, rect.height)
            self._restore_painter()
        self.doc.refreshProjection()

    def remove_layer(self, key: str) -> None:
        """Take the temporary layer ``key`` out (safe when it is gone already)."""
        self._discard(self._previews.pop(key, None))

    def _take_preview(self, job: Job) -> Any:
        """The job's preview layer, emptied, to become its first result layer (or None)."""
        node = self._previews.pop(job.id, None)
        if node is not None:
            self._guards.pop(node.uniqueId().toString(), None)  # a result now: the painter may pick it
        if node is None or self.node_by_id(node.uniqueId().toString()) is None:
            return None
        r = job.preview_rect or job.capture.region
        node.setPixelData(bytes(BYTES_PER_PIXEL[job.capture.pixel_format] * r.area), r.x, r.y, r.width, r.height)
        return node

    def add_results(self, job: Job, images: list[ResultImage]) -> list[str]:
        """One paint layer per image, stacked above the source and its earlier results; parameters recorded.

        The first image takes over the preview layer when there is one (pixels rewritten, renamed), so the
        undo history holds exactly one step per result layer: the layer's creation.
        """
        canvas_job = job.capture.kind in canvas_jobs.CANVAS_KINDS
        if canvas_job:  # its layer is made now, after the canvas grew; previews never showed in the document
            self.clear_preview(job)
            size_before = (self.doc.width(), self.doc.height())
            dx, dy = canvas_jobs.grow_canvas(self.doc, job.capture, job.params)
        above = self._anchor(job.capture.source_id)
        records = self.records(prune=True)
        reused = None if canvas_job else self._take_preview(job)
        names, ids = [], []
        for image in images:
            r = image.rect.translate(dx, dy) if canvas_job else image.rect
            if reused is not None:
                node, reused = reused, None
                node.setPixelData(image.pixels, r.x, r.y, r.width, r.height)
                node.setName(image.name)
                node.setLocked(False)
            else:
                node = self.doc.createNode(image.name, "paintlayer")
                node.setPixelData(image.pixels, r.x, r.y, r.width, r.height)
                self._insert(node, above)  # the layer arrives complete: one undo step
            records[node.uniqueId().toString()] = image.record
            names.append(image.name)
            ids.append(node.uniqueId().toString())
            above = node
        self.doc.setAnnotation(ANNOTATION_TYPE, ANNOTATION_DESCRIPTION, qt.QByteArray(encode_annotation(records)))
        self.doc.refreshProjection()
        if canvas_job:  # the growth and the layers: one undo step for the painter
            undo_chain.shared(krita()).arm(self.doc, ids, size_before)
        return names

    # ---------------------------------------------------------------- parameters
    def records(self, prune: bool = False) -> dict[str, ResultRecord]:
        """Layer id -> parameters stored in this document (``prune``: only layers that still exist)."""
        records = decode_annotation(qt.to_bytes(self.doc.annotation(ANNOTATION_TYPE)))
        if prune and records:
            alive = {n.uniqueId().toString() for n in walk(self.doc.rootNode())}
            records = {k: v for k, v in records.items() if k in alive}
        return records

    def active_record(self) -> ResultRecord:
        node = self.doc.activeNode()
        if node is None:
            raise UserError("Select an Underpaint result layer first.")
        record = self.records().get(node.uniqueId().toString())
        if record is None:
            raise UserError(f"'{node.name()}' has no Underpaint parameters: select a layer Underpaint made.")
        return record
