"""Scenarios run inside Krita. Each is a generator: it drives the plugin, then yields
``(predicate, timeout_s, what)`` to wait without blocking Qt's event loop. What it sees goes into ``record``;
the pytest side checks the record and the saved .kra/.png files.

Pure Python only (Krita's interpreter has no numpy).
"""

from __future__ import annotations

import os
import struct
import time

from krita import InfoObject, Krita, Selection

PREVIEW = "Underpaint preview"


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
            else:
                getattr(d, {"context_padding": "padding"}.get(key, key)).setValue(value)
        d.findChild(type(d.generate_button), "underpaint_apply_settings").click()

    def busy(self, doc) -> bool:
        tracked = [t for t in self.ext.documents if t.doc == doc]
        return bool(tracked) and bool(self.controller.jobs.for_document(tracked[0].key))

    def running_step(self) -> int:
        job = self.controller.jobs.running()
        return job.step if job is not None else -1

    def idle(self, doc, seconds: float = 180):
        return (lambda: not self.busy(doc)), seconds, "the job to finish"

    def sleep(self, seconds: float):
        end = time.monotonic() + seconds
        return (lambda: time.monotonic() >= end), seconds + 5, f"{seconds} s"

    def finish_record(self, doc) -> None:
        self.record["layers"] = self.layers(doc)
        self.record["status"] = self.docker.status.text()
        self.record["jobs_left"] = len(self.controller.jobs)

    def cleanup(self) -> None:
        if self.on_status in self.controller.listeners:
            self.controller.listeners.remove(self.on_status)
        for doc in self.docs:
            try:
                doc.setBatchmode(True)
                doc.setModified(False)
                doc.close()
            except RuntimeError:
                pass


# ==================================================================== scenarios
def img2img(ctx: Context):
    """Offset layer smaller than the canvas; result above it, one undo step."""
    doc = ctx.new_doc("img2img", 160, 128, "U8")
    ctx.add_layer(doc, "source", 72, 56, 40, 32)
    ctx.record["before"] = ctx.layers(doc)
    yield ctx.sleep(0.2)
    ctx.set_params(prompt="a red fox in the snow", steps=8, strength=0.75, seed=1234)
    ctx.docker.generate_button.click()
    yield ctx.idle(doc)
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
    result = next(n for n in doc.rootNode().childNodes() if "seed 1234" in n.name())
    doc.setActiveNode(result)
    yield ctx.sleep(0.3)
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
    """The docker as a painter sees it: connection line, model list from the server, a screenshot."""
    d = ctx.docker
    d.parentWidget().show() if d.parentWidget() is not None else None
    d.show()
    yield ctx.sleep(0.3)
    ctx.record["connection"] = d.connection.text()
    ctx.record["models"] = [d.model.itemText(i) for i in range(d.model.count())]
    ctx.record["widgets"] = sorted(w.objectName() for w in d.findChildren(object)
                                   if w.objectName().startswith("underpaint_"))
    path = os.path.join(ctx.config["out"], "docker.png")
    ctx.record["screenshot"] = bool(d.grab().save(path)) and path
