"""Scenarios run inside Krita. Each is a generator: it drives the plugin, then yields
``(predicate, timeout_s, what)`` to wait without blocking Qt's event loop. What it sees goes into ``record``;
the pytest side checks the record and the saved .kra/.png files.

Pure Python only (Krita's interpreter has no numpy).
"""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import time

from krita import InfoObject, Krita, Selection

from .qt import QPoint

PREVIEW = "Underpaint preview"
STROKE = bytes((0, 0, 255, 255)) * 64  # an opaque red 8x8 dab, 8-bit BGRA


def pattern(depth: str, width: int, height: int, seed: int = 0) -> bytes:
    """A deterministic opaque colour pattern in Krita's pixel layout for ``depth``."""
    out = bytearray()
    for y in range(height):
        for x in range(width):
            b, g, r = (x * 7 + seed) % 256, (y * 5 + seed) % 256, ((x + y) * 3) % 256
            if depth == "U8":
                out += bytes((b, g, r, 255))
            elif depth == "U16":
                out += struct.pack("<4H", b * 257, g * 257, r * 257, 65535)
            elif depth == "F16":
                out += struct.pack("<4e", r / 255, g / 255, b / 255, 1.0)
            else:
                out += struct.pack("<4f", r / 255, g / 255, b / 255, 1.0)
    return bytes(out)


class Context:
    def __init__(self, config: dict, record: dict) -> None:
        import underpaint_krita  # the real plugin, loaded by Krita

        self.config, self.record = config, record
        self.ext = underpaint_krita.EXTENSION
        self.controller = self.ext.controller
        self.docker = self.ext.docker()
        self.docs: list = []
        record.update(statuses=[], preview_max=0, preview_seen=False, docker=self.docker is not None)
        self.controller.listeners.append(self.on_status)

    # ---------------------------------------------------------------- observation
    def log(self, *parts) -> None:
        self.record["log"].append(" ".join(str(p) for p in parts))

    def on_status(self, status) -> None:
        self.observe()  # also between ticks: every progress step
        entry = [status.message, status.error, status.jobs, status.connection]
        if not self.record["statuses"] or self.record["statuses"][-1] != entry:
            self.record["statuses"].append(entry)

    def observe(self) -> None:
        for doc in self.docs:
            try:
                count = sum(1 for n in doc.rootNode().childNodes() if n.name() == PREVIEW)
            except RuntimeError:
                continue
            self.record["preview_max"] = max(self.record["preview_max"], count)
            self.record["preview_seen"] = self.record["preview_seen"] or count > 0

    def layers(self, doc) -> list[dict]:
        """Top-level layers, top of the stack first."""
        out = []
        for node in reversed(doc.rootNode().childNodes()):
            b = node.bounds()
            out.append({"name": node.name(), "type": node.type(), "id": node.uniqueId().toString(),
                        "bounds": [b.x(), b.y(), b.width(), b.height()]})
        return out

    # ---------------------------------------------------------------- document helpers
    def new_doc(self, name: str, width: int, height: int, depth: str = "U8"):
        app = Krita.instance()
        doc = app.createDocument(width, height, name, "RGBA", depth, "", 72.0)
        doc.setBatchmode(True)
        app.activeWindow().addView(doc)
        self.docs.append(doc)
        return doc

    def add_layer(self, doc, name: str, width: int, height: int, x: int = 0, y: int = 0, seed: int = 0):
        node = doc.createNode(name, "paintlayer")
        node.setPixelData(pattern(doc.colorDepth(), width, height, seed), x, y, width, height)
        doc.rootNode().addChildNode(node, None)
        doc.setActiveNode(node)
        doc.refreshProjection()
        return node

    def select(self, doc, x: int, y: int, w: int, h: int, feather: int = 0) -> None:
        sel = Selection()
        sel.select(x, y, w, h, 255)
        if feather:
            sel.feather(feather)
        doc.setSelection(sel)

    def save(self, doc, stem: str) -> None:
        out = self.config["out"]
        kra, png = os.path.join(out, stem + ".kra"), os.path.join(out, stem + ".png")
        doc.waitForDone()
        self.record["saved_kra"] = bool(doc.saveAs(kra))
        self.record["saved_png"] = bool(doc.exportImage(png, InfoObject()))
        self.record["kra"], self.record["png"] = kra, png

    # ---------------------------------------------------------------- plugin helpers
    def set_params(self, prompt: str = "", negative: str = "", mode: str = "auto", source: str = "layer",
                   strength: float = 0.5, steps: int = 4, seed: int | None = None, batch: int = 1) -> None:
        d = self.docker
        d.prompt.setPlainText(prompt)
        d.negative.setPlainText(negative)
        d.mode.setCurrentIndex(d.mode.findData(mode))
        d.source.setCurrentIndex(d.source.findData(source))
        d.strength.setValue(strength)
        d.steps.setValue(steps)
        d.batch.setValue(batch)
        d.seed_random.setChecked(seed is None)
        if seed is not None:
            d.seed.setText(str(seed))

    def apply_settings(self, **values) -> None:
        d = self.docker
        widgets = {"server_url": d.server_url, "token": d.token}
        for key, value in values.items():
            if key in widgets:
                widgets[key].setText(value)
            elif key == "preview":
                d.preview.setChecked(value)
            elif key == "transfer":
                d.transfer.setCurrentIndex(d.transfer.findData(value))
            else:
                getattr(d, {"context_padding": "padding"}.get(key, key)).setValue(value)
        d.findChild(type(d.generate_button), "underpaint_apply_settings").click()

    def preview_layer(self, doc):
        return next((n for n in doc.rootNode().childNodes() if n.name() == PREVIEW), None)

    def preview_shown(self, doc, seconds: float = 120):
        return (lambda: self.preview_layer(doc) is not None), seconds, "the preview layer"

    def paint(self, doc, x: int, y: int) -> str:
        """What a brush stroke does: pixels into the document's active layer. Returns that layer's name."""
        node = doc.activeNode()
        node.setPixelData(STROKE, x, y, 8, 8)
        doc.refreshProjection()
        return node.name()

    @staticmethod
    def node(doc, node_id: str):
        def walk(node):
            for child in node.childNodes():
                yield child
                yield from walk(child)

        return next((n for n in walk(doc.rootNode()) if n.uniqueId().toString() == node_id), None)

    @staticmethod
    def geometry(widget) -> dict:
        """Where ``widget`` is on the screen (global coordinates) and whether any of it is drawn."""
        at = widget.mapToGlobal(QPoint(0, 0))
        return {"rect": [at.x(), at.y(), widget.width(), widget.height()], "visible": widget.isVisible(),
                "drawn": not widget.visibleRegion().isEmpty()}

    def jobs_of(self, doc) -> list:
        tracked = [t for t in self.ext.documents if t.doc == doc]
        return self.controller.document_jobs(tracked[0].key) if tracked else []

    def busy(self, doc) -> bool:
        return bool(self.jobs_of(doc))

    def running_step(self) -> int:
        job = self.controller.session.running()
        return job.track.step if job is not None else -1

    def idle(self, doc, seconds: float = 180):
        """No job of ``doc`` left and no preview layer in it (Krita may apply a preview's insertion, and so its
        removal, after the job has ended)."""
        return (lambda: not self.busy(doc) and self.preview_layer(doc) is None), seconds, \
            "the job to finish and its preview layer to go"

    def sleep(self, seconds: float):
        end = time.monotonic() + seconds
        return (lambda: time.monotonic() >= end), seconds + 5, f"{seconds} s"

    def settle(self):
        """Let the plugin's deferred work after a result (putting the painter's layer back) run before the
        scenario saves or closes the document (saving runs Qt's event loop inside it)."""
        return self.sleep(0.5)

    def finish_record(self, doc) -> None:
        self.record["layers"] = self.layers(doc)
        self.record["status"] = self.docker.status.text()
        self.record["jobs_left"] = len(self.controller.jobs)
        self.record["jobs_in_flight"] = [{"id": j.id, "state": j.track.state, "doc": j.doc_key,
                                          "cancel_requested": getattr(j.track, "cancel_requested", None)}
                                         for j in self.controller.document_jobs(None)]

    def cleanup(self) -> None:
        if self.on_status in self.controller.listeners:
            self.controller.listeners.remove(self.on_status)
        if not self.config.get("close_documents", True):
            return  # left open until Krita quits: closing one, then creating the next, crashed Krita 5.2 and 5.3
        for doc in self.docs:
            try:
                doc.setBatchmode(True)
                doc.setModified(False)
                doc.close()
            except RuntimeError:
                pass


# ==================================================================== scenarios
def broken_socket_write() -> str:
    """What a write to a socket whose peer has gone does in this Krita (with the plug-in loaded): it must raise,
    not kill Krita with SIGPIPE (the plug-in's client writes to servers that restart)."""
    import socket

    mine, theirs = socket.socketpair()
    theirs.close()
    try:
        mine.sendall(b"x" * 65536)
        mine.sendall(b"x")
        return "no error"
    except BrokenPipeError:
        return "BrokenPipeError"
    finally:
        mine.close()


def img2img(ctx: Context):
    """Offset layer smaller than the canvas; result above it, one undo step."""
    ctx.record["broken_socket_write"] = broken_socket_write()
    doc = ctx.new_doc("img2img", 160, 128, "U8")
    ctx.add_layer(doc, "source", 72, 56, 40, 32)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="a red fox in the snow", steps=8, strength=0.75, seed=1234)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.save(doc, "img2img")
    undo = Krita.instance().action("edit_undo")
    undo.trigger()
    yield ctx.sleep(0.5)
    ctx.record["after_undo"] = ctx.layers(doc)
    undo.trigger()  # the step before the result is the painter's own (adding "source"): no preview ghosts
    yield ctx.sleep(0.5)
    ctx.record["after_undo2"] = ctx.layers(doc)


def reuse(ctx: Context):
    """Parameters survive .kra save/load and come back into the docker."""
    path = os.path.join(ctx.config["out"], "img2img.kra")
    app = Krita.instance()
    doc = app.openDocument(path)
    doc.setBatchmode(True)
    app.activeWindow().addView(doc)
    ctx.docs.append(doc)
    yield ctx.sleep(0.5)  # the view is up before its active layer changes (Krita 5.2 asserts otherwise)
    result = next(n for n in doc.rootNode().childNodes() if "seed 1234" in n.name())
    doc.setActiveNode(result)
    yield ctx.sleep(0.5)
    ctx.set_params(prompt="something else", steps=3, strength=0.2)
    app.action("underpaint_reuse_parameters").trigger()
    d = ctx.docker
    ctx.record["reused"] = {"prompt": d.prompt.toPlainText(), "seed": d.seed.text(),
                            "random": d.seed_random.isChecked(), "steps": d.steps.value(),
                            "strength": round(d.strength.value(), 2), "mode": d.mode.currentData()}
    ctx.finish_record(doc)


def inpaint(ctx: Context):
    """Feathered selection on a full-canvas layer: only the selection changes."""
    doc = ctx.new_doc("inpaint", 160, 128, "U8")
    ctx.add_layer(doc, "source", 160, 128)
    ctx.select(doc, 56, 40, 48, 40, feather=3)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="a wooden door", steps=6, strength=1.0, seed=77)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.save(doc, "inpaint")


def float_big_layer(ctx: Context):
    """32-bit float document, layer larger than the canvas: the canvas part is sent, result in float."""
    doc = ctx.new_doc("float", 96, 64, "F32")
    ctx.add_layer(doc, "big", 128, 96, -16, -16)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="float", steps=4, strength=0.6, seed=5)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.save(doc, "float")


def batch_visible_u16(ctx: Context):
    """16-bit document, visible image as source, two images: two layers on top with their own seeds."""
    doc = ctx.new_doc("batch16", 96, 64, "U16")
    ctx.add_layer(doc, "paint", 48, 32, 8, 8)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="two of them", steps=4, strength=0.6, seed=900, batch=2, source="visible")
    ctx.docker.generate_button.click()
    yield ctx.idle(doc)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.save(doc, "batch16")
    ctx.set_params(source="layer")


def cancel(ctx: Context):
    """Cancel mid-job: no result layer, no preview layer left (half-float document: f16 previews)."""
    doc = ctx.new_doc("cancel", 128, 96, "F16")
    ctx.add_layer(doc, "source", 128, 96)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="never finished", steps=150, strength=1.0, seed=3)
    ctx.docker.generate_button.click()
    yield (lambda: ctx.running_step() >= 2), 120, "the job to run two steps"
    ctx.record["step_at_cancel"] = ctx.running_step()
    ctx.docker.cancel_button.click()
    yield ctx.idle(doc, 60)
    yield ctx.sleep(0.5)
    ctx.finish_record(doc)
    ctx.save(doc, "cancel")


def close_document(ctx: Context):
    """Closing a document with a job in flight cancels it; nothing is left behind."""
    doc = ctx.new_doc("closing", 128, 96, "U8")
    ctx.add_layer(doc, "source", 128, 96)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="closed early", steps=150, strength=1.0, seed=4)
    ctx.docker.generate_button.click()
    yield (lambda: ctx.running_step() >= 1), 120, "the job to start"
    ctx.record["tracked_before"] = len(ctx.ext.documents)
    ctx.docs.remove(doc)
    doc.setModified(False)
    doc.close()
    yield (lambda: len(ctx.controller.jobs) == 0), 10, "the closed document's jobs to go"
    yield ctx.sleep(1.0)
    ctx.record["jobs_left"] = len(ctx.controller.jobs)
    ctx.record["tracked_docs"] = len(ctx.ext.documents)
    ctx.record["status"] = ctx.docker.status.text()


def server_down(ctx: Context):
    """No server at the URL: a clear error, the document untouched."""
    live = ctx.docker.server_url.text()
    ctx.apply_settings(server_url=ctx.config["dead_url"])
    doc = ctx.new_doc("down", 96, 64, "U8")
    ctx.add_layer(doc, "source", 96, 64)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="nobody home", steps=4, seed=1)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc, 60)
    yield ctx.sleep(0.3)
    ctx.finish_record(doc)
    ctx.record["status_error"] = ctx.controller.error
    ctx.apply_settings(server_url=live)


def docker_ui(ctx: Context):
    """The docker as a painter sees it (shown from Settings > Dockers): where its buttons and messages are on the
    screen, the server's limits as ranges, a bad setting refused on the Settings tab, a screenshot."""
    d = ctx.docker
    d.show()  # what Settings > Dockers > Underpaint does; a toggle would hide a docker tabbed behind another
    d.raise_()
    window = d.window()
    ctx.record["window_minimum"] = [window.minimumSizeHint().width(), window.minimumSizeHint().height()]
    window.setGeometry(window.screen().availableGeometry())  # what a window manager's maximize does
    yield ctx.sleep(0.5)
    screen = d.screen().geometry()
    ctx.record["screen"] = [screen.x(), screen.y(), screen.width(), screen.height()]
    ctx.record["floating"] = d.isFloating()
    frame = window.frameGeometry()
    ctx.record["window"] = [frame.x(), frame.y(), frame.width(), frame.height()]
    ctx.record["on_screen"] = {name: ctx.geometry(widget) for name, widget in (
        ("generate", d.generate_button), ("cancel", d.cancel_button), ("status", d.status),
        ("progress", d.progress), ("prompt", d.prompt), ("live", d.live.toggle), ("live_apply", d.live.apply),
        ("docker", d))}
    ctx.record["limits"] = {"steps": d.steps.maximum(), "batch": d.batch.maximum()}
    tabs = d.widget()
    tabs.setCurrentIndex(1)
    stored = ctx.ext.store.read("server_url", "")
    typed = d.server_url.text()
    d.server_url.setText("ftp://somewhere")
    d.findChild(type(d.generate_button), "underpaint_apply_settings").click()
    yield ctx.sleep(0.3)
    note = d.findChild(type(d.status), "underpaint_settings_status")
    ctx.record["bad_url"] = {"message": note.text() if note is not None else None,
                             "shown": ctx.geometry(note) if note is not None else None,
                             "stored_before": stored, "stored_after": ctx.ext.store.read("server_url", ""),
                             "in_use": ctx.controller.settings.server_url}
    d.server_url.setText(typed)
    tabs.setCurrentIndex(0)
    yield ctx.sleep(0.3)
    ctx.record["connection"] = d.connection.text()
    ctx.record["models"] = [d.model.itemText(i) for i in range(d.model.count())]
    ctx.record["samplers"] = [d.sampler.itemData(i) for i in range(d.sampler.count())]
    ctx.record["modes"] = [d.mode.itemText(i) for i in range(d.mode.count())]
    ctx.record["offered_samplers"] = list(ctx.controller.offer().samplers)
    ctx.record["widgets"] = sorted(w.objectName() for w in d.findChildren(object)
                                   if w.objectName().startswith("underpaint_"))
    path = os.path.join(ctx.config["out"], "docker.png")
    ctx.record["screenshot"] = bool(d.grab().save(path)) and path


def strokes(ctx: Context):
    """The painter keeps painting while jobs run: every stroke stays on their own layer (after an img2img result,
    an inpaint and a cancel), the active layer stays theirs, and a later result of the same source lands above
    the earlier ones (visible)."""
    doc = ctx.new_doc("strokes", 128, 96, "U8")
    source_id = ctx.add_layer(doc, "source", 128, 96).uniqueId().toString()
    checks = ctx.record["checks"] = {}

    def job(label: str, x: int, y: int, cancel: bool = False, **params):
        ctx.set_params(**params)
        ctx.docker.generate_button.click()
        yield ctx.preview_shown(doc)
        check = checks[label] = {"preview_locked": ctx.preview_layer(doc).locked()}
        yield ctx.sleep(0.25)  # a painter's next stroke comes a moment after the preview appears, not in the same tick
        check["painted_on"] = ctx.paint(doc, x, y)
        if cancel:
            ctx.docker.cancel_button.click()
        yield ctx.idle(doc, 180)
        yield ctx.sleep(0.3)
        source, active = ctx.node(doc, source_id), doc.activeNode()
        check["on_source"] = bytes(source.pixelData(x, y, 8, 8)) == STROKE
        check["active"] = active.name() if active is not None else None
        check["active_is_source"] = active is not None and active.uniqueId().toString() == source_id
        check["layers"] = [layer["name"] for layer in ctx.layers(doc)]
        check["status"] = ctx.docker.status.text()
        check["elsewhere"] = [n.name() for n in doc.rootNode().childNodes() if n.uniqueId().toString() != source_id
                              and bytes(n.pixelData(x, y, 8, 8))[3::4] != bytes(64)]

    yield ctx.sleep(0.2)
    yield from job("img2img", 4, 4, prompt="keep my strokes", mode="img2img", steps=30, strength=1.0, seed=11)
    ctx.select(doc, 48, 32, 32, 24)
    yield from job("inpaint", 104, 80, prompt="inpaint over it", steps=30, strength=1.0, seed=12)
    sel = doc.selection()
    checks["selection_after"] = [sel.x(), sel.y(), sel.width(), sel.height()] if sel is not None else None
    yield from job("cancel", 4, 84, cancel=True, prompt="never finished", steps=150, strength=1.0, seed=13)
    ctx.finish_record(doc)
    ctx.save(doc, "strokes")


def cancel_one_document(ctx: Context):
    """Cancel in the docker stops the active document's jobs; another document's job goes on."""
    keeps = ctx.new_doc("keeps running", 96, 64, "U8")
    ctx.add_layer(keeps, "source", 96, 64)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="long", steps=150, strength=1.0, seed=21)
    ctx.docker.generate_button.click()
    yield (lambda: ctx.running_step() >= 1), 120, "the first document's job to run"
    stops = ctx.new_doc("cancelled here", 96, 64, "U8")
    ctx.add_layer(stops, "source", 96, 64)
    yield ctx.sleep(0.3)
    ctx.set_params(prompt="stopped", steps=150, strength=1.0, seed=22)
    ctx.docker.generate_button.click()
    yield (lambda: ctx.busy(stops)), 30, "the second job"
    ctx.record["active_document"] = Krita.instance().activeDocument().name()
    ctx.docker.cancel_button.click()
    yield ctx.idle(stops, 60)
    ctx.record["other_cancel_requested"] = any(j.track.cancel_requested for j in ctx.jobs_of(keeps))
    step = ctx.running_step()
    yield (lambda: not ctx.busy(keeps) or ctx.running_step() >= step + 2), 60, "the other job to go on"
    ctx.record["other_still_running"] = ctx.busy(keeps) and ctx.running_step() >= step + 2
    ctx.record["cancelled_layers"] = ctx.layers(stops)
    ctx.record["status"] = ctx.docker.status.text()
    ctx.controller.cancel_all()
    yield ctx.idle(keeps, 60)


# ==================================================================== issue 14: resolution, expand canvas, upscale
def canvas_options(ctx: Context, resolution: str | None = None, factor: int | None = None,
                   expand: tuple[int, int, int, int] | None = None, grow_canvas: bool | None = None,
                   refine: bool | None = None) -> None:
    panel = ctx.docker.canvas
    if resolution is not None:
        panel.resolution.setCurrentIndex(panel.resolution.findData(resolution))
    if factor is not None:
        panel.factor.setCurrentIndex(panel.factor.findData(factor))
    if expand is not None:
        for side, value in zip(("left", "top", "right", "bottom"), expand, strict=True):
            panel.sides[side].setValue(value)
    if grow_canvas is not None:
        panel.grow_canvas.setChecked(grow_canvas)
    if refine is not None:
        panel.refine.setChecked(refine)


def size(doc) -> list[int]:
    return [doc.width(), doc.height()]


def connected(ctx: Context):
    """Connect (the docker's Connect button) and wait: the canvas modes appear once the server offers them."""
    if ctx.controller.connection != "connected":
        ctx.docker.reconnect()  # what its Connect button does
    return (lambda: ctx.controller.connection == "connected"), 60, "the connection"


def strips(rect: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """The parts of ``outer`` outside ``rect`` as (x, y, w, h) strips: above, below, left, right."""
    x, y, w, h = rect
    ox, oy, ow, oh = outer
    return [s for s in ((ox, oy, ow, y - oy), (ox, y + h, ow, oy + oh - y - h), (ox, y, x - ox, h),
                        (x + w, y, ox + ow - x - w, h)) if s[2] > 0 and s[3] > 0]


def full_resolution(ctx: Context):
    """A 1536x1024 layer refined at full resolution through a selection (inpaint): the region sent is the
    whole layer; outside the selection the result is transparent and the image is the source (checked here:
    saving a document this big opens Krita's progress dialog)."""
    doc = ctx.new_doc("full resolution", 1536, 1024, "U8")
    source = ctx.add_layer(doc, "source", 1536, 1024)
    ctx.select(doc, 16, 16, 1504, 992)
    yield ctx.sleep(0.3)
    yield connected(ctx)
    ctx.set_params(prompt="refine", mode="inpaint", steps=4, strength=0.3, seed=14)
    ctx.docker._sync_canvas()
    panel = ctx.docker.canvas
    ctx.record["resolution_menu"] = [panel.resolution.itemText(i) for i in range(panel.resolution.count())]
    ctx.record["resolution_shown"] = not panel._resolution_row.isHidden()
    canvas_options(ctx, resolution="full")
    ctx.docker.generate_button.click()
    yield ctx.idle(doc, 900)  # tiled at 1536x1024 on a CPU: minutes
    yield ctx.settle()
    ctx.finish_record(doc)
    result = next((n for n in doc.rootNode().childNodes() if n.name() == "refine [inpaint, seed 14]"), None)
    checks = ctx.record["checks"] = {"result": result is not None}
    grown = (11, 11, 1514, 1002)  # the selection and the settings' 4 px feather
    if result is not None:
        doc.waitForDone()
        outside = strips(grown, (0, 0, 1536, 1024))
        checks["outside_transparent"] = all(not bytes(result.pixelData(*s))[3::4].strip(b"\0") for s in outside)
        checks["outside_unchanged"] = all(bytes(doc.pixelData(*s)) == bytes(source.pixelData(*s)) for s in outside)
        checks["source_is_pattern"] = bytes(source.pixelData(0, 0, 1536, 8)) == pattern("U8", 1536, 8)
        core = bytes(result.pixelData(40, 40, 1456, 944))[3::4]
        checks["core_opaque"] = round(core.count(255) / len(core), 3)
        tracked = next((t for t in ctx.ext.documents if t.doc == doc), None)
        records = tracked.records() if tracked is not None else {}
        record = records.get(result.uniqueId().toString())
        checks["region"] = list(record.region) if record else None
        checks["resolution"] = record.params.resolution if record else None
    ctx.set_params(mode="auto")
    canvas_options(ctx, resolution="auto")


def expand_canvas(ctx: Context):
    """Expand by 128 px right and bottom: a cancelled job leaves the canvas alone; a finished one grows it with
    the result layer; undo gives back the size and the layers."""
    doc = ctx.new_doc("expand", 256, 192, "U8")
    ctx.add_layer(doc, "source", 256, 192)
    ctx.record["before"] = ctx.layers(doc)
    ctx.record["size_before"] = size(doc)
    yield ctx.sleep(0.3)
    yield connected(ctx)
    ctx.record["modes"] = [ctx.docker.mode.itemData(i) for i in range(ctx.docker.mode.count())]
    ctx.set_params(prompt="more meadow", mode="outpaint", steps=150, strength=1.0, seed=15)
    canvas_options(ctx, expand=(0, 0, 128, 128))
    ctx.record["expand_shown"] = not ctx.docker.canvas._expand.isHidden()
    ctx.docker.generate_button.click()
    yield (lambda: ctx.running_step() >= 1), 120, "the expand job to run"
    ctx.docker.cancel_button.click()
    yield ctx.idle(doc, 60)
    yield ctx.sleep(0.3)
    ctx.record["size_after_cancel"] = size(doc)
    ctx.record["layers_after_cancel"] = ctx.layers(doc)
    ctx.set_params(prompt="more meadow", mode="outpaint", steps=4, strength=1.0, seed=16)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc, 300)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.record["size_after"] = size(doc)
    ctx.save(doc, "expand")
    for step, action in (("after_undo", "edit_undo"), ("after_redo", "edit_redo"), ("after_undo2", "edit_undo")):
        Krita.instance().action(action).trigger()  # what Ctrl+Z / Ctrl+Shift+Z do: once each
        yield ctx.sleep(2.0)
        ctx.record[step] = {"size": size(doc), "layers": [la["name"] for la in ctx.layers(doc)]}
    ctx.set_params(mode="auto")
    canvas_options(ctx, expand=(0, 0, 0, 0))


def upscale(ctx: Context):
    """x2 upscale: a layer of twice the size at the scaled offset, the canvas as it was; with "Upscale canvas"
    the image is scaled first."""
    out = ctx.record["runs"] = {}
    for grow in (False, True):
        doc = ctx.new_doc(f"upscale {'grow' if grow else 'keep'}", 96, 64, "U8")
        ctx.add_layer(doc, "source", 96, 64)
        yield ctx.sleep(0.3)
        yield connected(ctx)
        ctx.set_params(prompt="sharper", mode="upscale", steps=4, strength=0.3, seed=17)
        canvas_options(ctx, factor=2, grow_canvas=grow, refine=True)
        ctx.docker.generate_button.click()
        yield ctx.idle(doc, 300)
        yield ctx.settle()
        run = out["grow" if grow else "keep"] = {"size": size(doc), "layers": ctx.layers(doc),
                                                 "status": ctx.docker.status.text()}
        if grow:  # one undo takes the scaling and the layer
            Krita.instance().action("edit_undo").trigger()
            yield ctx.sleep(2.0)
            run["after_undo"] = {"size": size(doc), "layers": [la["name"] for la in ctx.layers(doc)]}
    ctx.set_params(mode="auto")
    canvas_options(ctx, grow_canvas=False)


# ==================================================================== live painting
LIVE = "Underpaint live"


def live_layer(doc):
    return next((n for n in doc.rootNode().childNodes() if n.name() == LIVE), None)


def _live_frame(live) -> int:
    state = live.state
    return state.frame.number if state is not None and state.frame is not None else -1


def _start_live(ctx, name: str, size: int = 128):
    doc = ctx.new_doc(name, size, size, "U8")
    source = ctx.add_layer(doc, "source", size, size)
    yield ctx.sleep(0.3)
    ctx.set_params(prompt="live fox", strength=0.4, steps=4, seed=4242, mode="img2img")
    ctx.docker.live.toggle.click()
    return doc, source


def live(ctx: Context):
    """Live on: a frame lands in a locked live layer above the painter's layer, which stays active; painting
    brings a new frame within a bound; Apply keeps the frame as a result layer; Live off removes the live
    layer and nothing more is sent. The watch's cost per timer tick on the GUI thread is recorded."""
    live = ctx.ext.live
    doc, source = yield from _start_live(ctx, "live")
    source_id = source.uniqueId().toString()
    started = time.monotonic()
    yield (lambda: live_layer(doc) is not None), 120, "the first live frame"
    rec = ctx.record
    rec["first_frame_s"] = round(time.monotonic() - started, 3)
    rec["widgets_locked"] = {"strength": ctx.docker.strength.isEnabled(), "seed": ctx.docker.seed.isEnabled()}
    rec["live_locked"] = live_layer(doc).locked()
    yield ctx.sleep(0.5)
    idle_from = live.stats()
    yield ctx.sleep(2.0)  # nothing painted: idle ticks only
    idle_to = live.stats()
    rec["idle_stats"] = idle_to
    rec["idle_window"] = {"ticks": idle_to["tick_ms"]["idle"]["n"] - idle_from["tick_ms"]["idle"]["n"],
                          "busy_ticks": idle_to["tick_ms"]["busy"]["n"] - idle_from["tick_ms"]["busy"]["n"],
                          "read_bytes": idle_to["read_bytes"] - idle_from["read_bytes"]}
    latencies, painted_on = [], []
    for i in range(3):
        before = _live_frame(live)
        t0 = time.monotonic()
        painted_on.append(ctx.paint(doc, 10 + 40 * i, 60))
        yield (lambda b=before: _live_frame(live) > b), 60, f"a live frame after stroke {i}"
        latencies.append(round(time.monotonic() - t0, 3))
        yield ctx.sleep(0.3)
    rec["stroke_to_frame_s"] = latencies
    rec["painted_on"] = painted_on
    active = doc.activeNode()
    rec["active_is_source"] = active is not None and active.uniqueId().toString() == source_id
    rec["stats"] = live.stats()
    rec["layers_live"] = ctx.layers(doc)
    rec["applied_frame"] = _live_frame(live)
    rec["apply_enabled"] = ctx.docker.live.apply.isEnabled()
    ctx.docker.live.apply.click()
    yield ctx.sleep(0.5)
    rec["layers_applied"] = ctx.layers(doc)
    rec["status_applied"] = ctx.docker.status.text()
    session = live.state.session
    ctx.docker.live.toggle.click()  # off
    yield ctx.sleep(0.5)
    rec["off"] = {"active": live.active, "checked": ctx.docker.live.toggle.isChecked(),
                  "layers": ctx.layers(doc), "status": ctx.docker.status.text(),
                  "session_status": getattr(session, "status", None),
                  "widgets": {"strength": ctx.docker.strength.isEnabled()}}
    sent = _sent(session)
    ctx.paint(doc, 100, 100)
    yield ctx.sleep(2.0)
    rec["sent_at_off"], rec["sent_later"] = sent, _sent(session)
    rec["stats_final"] = live.stats()
    active = doc.activeNode()
    rec["active_final"] = active.name() if active is not None else None
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.save(doc, "live")


def _sent(session) -> object:
    """How many frames the live session has encoded for sending (its delta encoder's frame number)."""
    encoder = getattr(session, "_encoder", None)
    return getattr(encoder, "frame", None)


def live_server_down(ctx: Context):
    """The server goes away while live: live stops with one clear message, no repeats, no live layer left.
    Kills the e2e server: runs last."""
    live = ctx.ext.live
    errors = []
    ctx.controller.listeners.append(lambda status: errors.append(status.message) if status.error else None)
    doc, _ = yield from _start_live(ctx, "live down", 128)
    yield (lambda: live_layer(doc) is not None), 120, "the first live frame"
    os.kill(ctx.config["server_pid"], signal.SIGTERM)
    killed = time.monotonic()
    yield (lambda: not live.active), 30, "live to stop after the server went away"
    ctx.record["stopped_after_s"] = round(time.monotonic() - killed, 3)
    yield ctx.sleep(3.0)
    ctx.paint(doc, 10, 10)
    yield ctx.sleep(1.0)
    ctx.record["errors"] = errors
    ctx.record["checked"] = ctx.docker.live.toggle.isChecked()
    ctx.finish_record(doc)


def _link(ctx: Context, command: str) -> str:
    """Tell the test's flaky link (support/link.py) to ``cut`` the connection or ``restart`` its server."""
    import socket

    with socket.create_connection(("127.0.0.1", ctx.config["link_control"]), timeout=5) as sock:
        sock.sendall(command.encode() + b"\n")
        return sock.makefile().readline().strip()


def _over_the_link(ctx: Context, name: str, command: str, seed: int, transfer: str = "auto"):
    live = ctx.docker.server_url.text()
    ctx.apply_settings(server_url=ctx.config["link_url"], transfer=transfer)
    ctx.record["transfer"] = ctx.controller.settings.transfer
    doc = ctx.new_doc(name, 96, 64, "U8")
    ctx.add_layer(doc, "source", 96, 64, seed=seed)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="over a flaky link", steps=12, strength=1.0, seed=seed)
    ctx.docker.generate_button.click()
    yield (lambda: ctx.running_step() >= 2), 120, "the job to run two steps"
    ctx.record["step_at_drop"] = ctx.running_step()
    ctx.record["link"] = _link(ctx, command)
    yield ctx.idle(doc, 240)
    yield ctx.settle()
    ctx.finish_record(doc)
    ctx.record["status_error"] = ctx.controller.error
    ctx.record["connections"] = _link(ctx, "count")
    ctx.save(doc, name)
    ctx.apply_settings(server_url=live, transfer="auto")


def link_drop(ctx: Context):
    """The network drops mid-job (the server keeps running): the plugin reconnects, resumes, the result lands."""
    yield from _over_the_link(ctx, "linkdrop", "cut", 21)


def server_restart(ctx: Context):
    """The server restarts mid-job: one clear sentence, the document untouched."""
    yield from _over_the_link(ctx, "restart", "restart", 22)


def compressed_transfer(ctx: Context):
    """The same img2img sent raw and compressed (what a remote server gets: PNG tiles by Qt, zlib results):
    the result layers are byte-identical, so the compressed path loses nothing."""
    out = ctx.record["runs"] = {}
    for transfer in ("raw", "compressed"):
        ctx.apply_settings(transfer=transfer)
        doc = ctx.new_doc(f"transfer {transfer}", 200, 136, "U8")
        ctx.add_layer(doc, "source", 200, 136, seed=31)
        yield ctx.sleep(0.2)
        ctx.set_params(prompt="over the wire", steps=4, strength=0.6, seed=31, mode="img2img")
        ctx.docker.generate_button.click()
        yield ctx.idle(doc, 240)
        yield ctx.settle()
        result = next((n for n in doc.rootNode().childNodes() if "seed 31" in n.name()), None)
        out[transfer] = {"setting": ctx.controller.settings.transfer, "status": ctx.docker.status.text(),
                         "error": ctx.controller.error, "layers": ctx.layers(doc),
                         "pixels": hashlib.sha256(bytes(result.pixelData(0, 0, 200, 136))).hexdigest()
                         if result is not None else None}
    ctx.apply_settings(transfer="auto")
