"""Runs INSIDE gimp-console-3.0 (python-fu-eval): calls the real Underpaint procedures through the PDB.

Builds images, runs each scenario and writes the facts to ``facts.json`` in ``$UNDERPAINT_BATCH_DIR``;
the pytest side (test_gimp_e2e.py) makes the assertions. Scenarios fail independently.
"""

import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Gtk", "3.0")
from gi.repository import Gegl, Gimp, Gio, GLib, GObject, Gtk  # noqa: E402

WORK = os.environ["UNDERPAINT_BATCH_DIR"]
with open(os.path.join(WORK, "data.json")) as _f:
    DATA = json.load(_f)
PDB = Gimp.get_pdb()
IMG2IMG, INPAINT = "plug-in-underpaint-img2img", "plug-in-underpaint-inpaint"
EXPAND, UPSCALE = "plug-in-underpaint-expand", "plug-in-underpaint-upscale"
COMMON = {"prompt": "a red barn at dusk", "steps": 6, "strength": 0.5}


def rect(x, y, w, h):
    return Gegl.Rectangle.new(x, y, w, h)


def read(drawable, babl, x=0, y=0, w=None, h=None):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    return drawable.get_buffer().get(rect(x, y, w, h), 1.0, babl, Gegl.AbyssPolicy.NONE)


def write(drawable, babl, data):
    buf = drawable.get_buffer()
    buf.set(rect(0, 0, drawable.get_width(), drawable.get_height()), babl, data)
    buf.flush()
    drawable.update(0, 0, drawable.get_width(), drawable.get_height())


def pattern(w, h, channels, seed, depth=1):
    """Deterministic, non-uniform pixels; 16-bit samples use both bytes."""
    out = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(channels):
                if c == channels - 1 and channels in (2, 4):
                    v = 255 * (257 if depth == 2 else 1)
                elif depth == 2:
                    v = (x * 977 + y * 331 + c * 12345 + seed * 7) % 65536
                else:
                    v = (x * 9 + y * 5 + c * 60 + seed * 13) % 256
                out += v.to_bytes(depth, "little")
    return bytes(out)


def new_layer(img, name, w, h, kind, x, y, parent=None, position=0, babl=None, channels=4, seed=1, depth=1):
    layer = Gimp.Layer.new(img, name, w, h, kind, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, parent, position)
    layer.set_offsets(x, y)
    if babl:
        write(layer, babl, pattern(w, h, channels, seed, depth))
    return layer


def all_layers(img):
    out = []

    def walk(layers, parent):
        for layer in layers:
            out.append((layer, parent))
            if layer.is_group():
                walk(layer.get_children(), layer)

    walk(img.get_layers(), None)
    return out


def describe(img):
    facts = []
    for layer, parent in all_layers(img):
        _, x, y = layer.get_offsets()
        parasites = {}
        for name in layer.get_parasite_list():
            parasites[name] = bytes(layer.get_parasite(name).get_data()).decode("utf-8", "replace")
        facts.append({"id": layer.get_id(), "name": layer.get_name(), "parent": parent.get_name() if parent else None,
                      "position": img.get_item_position(layer), "x": x, "y": y, "width": layer.get_width(),
                      "height": layer.get_height(), "has_alpha": layer.has_alpha(), "gray": layer.is_gray(),
                      "bpp": layer.get_bpp(), "mask": layer.get_mask() is not None, "parasites": parasites})
    return facts


def call(name, img, drawable, run_mode=Gimp.RunMode.NONINTERACTIVE, **args):
    proc = PDB.lookup_procedure(name)
    config = proc.create_config()
    config.set_property("run-mode", run_mode)
    config.set_property("image", img)
    config.set_core_object_array("drawables", [drawable])
    for key, value in args.items():
        config.set_property(key.replace("_", "-"), value)
    result = proc.run(config)
    message = result.index(1) if result.length() > 1 else None
    return result.index(0).value_nick, message


def digest(data):
    return hashlib.sha256(bytes(data)).hexdigest()


def new_result(before, img):
    ids = {f["id"] for f in before}
    return [f for f in describe(img) if f["id"] not in ids]


def compare_outside(sel, old, new, px_bytes):
    """(pixels outside the selection that changed, pixels inside that changed, pixels outside)."""
    changed_out = changed_in = outside = 0
    for i, s in enumerate(sel):
        same = old[i * px_bytes:(i + 1) * px_bytes] == new[i * px_bytes:(i + 1) * px_bytes]
        if s == 0:
            outside += 1
            changed_out += not same
        elif s == 255:
            changed_in += not same
    return changed_out, changed_in, outside


def flat(img, babl):
    dup = img.duplicate()
    layer = dup.flatten()
    data = read(layer, babl)
    dup.delete()
    return data


def region_facts(img, src, res, babl, bpp, mask_babl):
    """Compare the result layer with the source over the result's region."""
    _, sx, sy = src.get_offsets()
    _, rx, ry = res.get_offsets()
    w, h = res.get_width(), res.get_height()
    src_px = read(src, babl, rx - sx, ry - sy, w, h)
    res_px = read(res, babl)
    sel8 = img.get_selection().get_buffer().get(rect(rx, ry, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    changed_out, changed_in, outside = compare_outside(sel8, src_px, res_px, bpp)
    facts = {"changed_outside": changed_out, "changed_inside": changed_in, "outside": outside,
             "selected": sum(1 for s in sel8 if s == 255), "partial": sum(1 for s in sel8 if 0 < s < 255)}
    mask = res.get_mask()
    if mask is not None:
        sel = img.get_selection().get_buffer().get(rect(rx, ry, w, h), 1.0, mask_babl, Gegl.AbyssPolicy.NONE)
        layer_mask = bytes(read(mask, mask_babl))
        facts["mask_equals_selection"] = layer_mask == bytes(sel)
        facts["mask_equals_support"] = read(mask, "Y u8") == bytes(0 if s == 0 else 255 for s in sel8)
    return facts


def composite_facts(img, res, babl, bpp, flat_before):
    """The visible image: unchanged outside the selection, equal to the result layer where it shows."""
    w, h = img.get_width(), img.get_height()
    sel = img.get_selection().get_buffer().get(rect(0, 0, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    flat_after = flat(img, babl)
    _, rx, ry = res.get_offsets()
    res_px = read(res, babl, -rx, -ry, w, h)
    differs = 0
    for i, s in enumerate(sel):
        if s and flat_after[i * bpp:(i + 1) * bpp] != res_px[i * bpp:(i + 1) * bpp]:
            differs += 1
    return {"flat_changed_outside": compare_outside(sel, flat_before, flat_after, bpp)[0],
            "flat_differs_from_result_in_selection": differs}


def scenario_img2img_rgb8():
    img = Gimp.Image.new(96, 80, Gimp.ImageBaseType.RGB)
    new_layer(img, "background", 96, 80, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3, seed=2)
    group = Gimp.GroupLayer.new(img, "group")
    img.insert_layer(group, None, 0)
    paint = new_layer(img, "paint", 40, 32, Gimp.ImageType.RGB_IMAGE, 20, 12, group, 0, "R'G'B' u8", 3, 3)
    new_layer(img, "top", 10, 10, Gimp.ImageType.RGBA_IMAGE, 0, 0, group, 0)
    before, source_digest = describe(img), digest(read(paint, "R'G'B'A u8"))
    status, message = call(IMG2IMG, img, paint, seed=123, server_url=DATA["url"], **COMMON)
    facts = {"status": status, "message": message, "before": before, "after": describe(img),
             "new": new_result(before, img), "source_unchanged": digest(read(paint, "R'G'B'A u8")) == source_digest}
    xcf = os.path.join(WORK, "img2img.xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(xcf), None)
    loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(xcf))
    facts["reloaded"] = describe(loaded)
    return facts


def scenario_inpaint_rgb8():
    img = Gimp.Image.new(96, 80, Gimp.ImageBaseType.RGB)
    new_layer(img, "background", 96, 80, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3, seed=4)
    paint = new_layer(img, "paint", 64, 56, Gimp.ImageType.RGBA_IMAGE, 10, 8, None, 0, "R'G'B'A u8", 4, 5)
    img.select_ellipse(Gimp.ChannelOps.REPLACE, 30, 25, 30, 24)
    Gimp.Selection.feather(img, 8.0)
    before, flat_before = describe(img), flat(img, "R'G'B'A u8")
    status, message = call(INPAINT, img, paint, seed=5, context=16, server_url=DATA["url"], cfg=5.5,
                           sampler="euler", negative_prompt="blurry", token="t0ken", **COMMON)
    facts = {"status": status, "message": message, "before": before, "after": describe(img),
             "new": new_result(before, img)}
    if status == "success":
        result = [layer for layer, _ in all_layers(img) if layer.get_id() == facts["new"][0]["id"]][0]
        facts.update(region_facts(img, paint, result, "R'G'B'A u8", 4, "Y u8"))
        facts.update(composite_facts(img, result, "R'G'B'A u8", 4, flat_before))
    return facts


def scenario_inpaint_rgb16():
    img = Gimp.Image.new_with_precision(80, 64, Gimp.ImageBaseType.RGB, Gimp.Precision.U16_NON_LINEAR)
    paint = new_layer(img, "paint16", 72, 56, Gimp.ImageType.RGBA_IMAGE, 4, 4, None, 0, "R'G'B'A u16", 4, 6, 2)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 24, 20, 24, 20)
    Gimp.Selection.feather(img, 6.0)
    before, flat_before = describe(img), flat(img, "R'G'B'A u16")
    status, message = call(INPAINT, img, paint, seed=9, context=8, server_url=DATA["url"], model="demo",
                           **COMMON)
    facts = {"status": status, "message": message, "before": before, "after": describe(img),
             "new": new_result(before, img), "precision": img.get_precision().value_nick}
    if status == "success":
        result = [layer for layer, _ in all_layers(img) if layer.get_id() == facts["new"][0]["id"]][0]
        facts.update(region_facts(img, paint, result, "R'G'B'A u16", 8, "Y u16"))
        facts.update(composite_facts(img, result, "R'G'B'A u16", 8, flat_before))
        res16 = read(result, "R'G'B'A u16")
        samples = [int.from_bytes(res16[i:i + 2], "little") for i in range(0, len(res16), 2)]
        facts["not_8bit_expanded"] = sum(1 for v in samples if v % 257)
    return facts


def scenario_img2img_gray_selection():
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.GRAY)
    paint = new_layer(img, "gray", 48, 40, Gimp.ImageType.GRAY_IMAGE, 5, 5, None, 0, "Y' u8", 1, 7)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 20, 16)
    Gimp.Selection.feather(img, 4.0)
    before = describe(img)
    status, message = call(IMG2IMG, img, paint, seed=1, server_url=DATA["url"], **COMMON)
    facts = {"status": status, "message": message, "before": before, "after": describe(img),
             "new": new_result(before, img), "base_type": str(img.get_base_type().value_nick)}
    if status == "success":
        result = [layer for layer, _ in all_layers(img) if layer.get_id() == facts["new"][0]["id"]][0]
        facts.update(region_facts(img, paint, result, "Y'A u8", 2, "Y u8"))
    return facts


def scenario_with_last_vals_window():
    """A display is there: the progress window opens and shows previews; the server comes from settings."""
    with open(os.path.join(Gimp.directory(), "underpaint.json"), "w") as f:
        json.dump({"url": DATA["url"], "token": None}, f)
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 64, 48, Gimp.ImageType.RGBA_IMAGE, 0, 0, babl="R'G'B'A u8")
    before = describe(img)
    status, message = call(IMG2IMG, img, paint, Gimp.RunMode.WITH_LAST_VALS)
    return {"status": status, "message": message, "before": before, "after": describe(img),
            "new": new_result(before, img)}


def plugin_log():
    path = os.path.join(WORK, "plugin-log.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def kill_when_generating(seen_runs, found):
    """Like GIMP's progress Cancel (which kills the plug-in): SIGKILL it once it reports progress."""
    deadline = time.time() + 120
    while time.time() < deadline:
        records = plugin_log()
        starts = [r for r in records if r["event"] == "run_start"]
        if len(starts) > seen_runs:
            pid = starts[-1]["pid"]
            if any(r["event"] == "progress" and r["pid"] == pid and r["fraction"] > 0 for r in records):
                os.kill(pid, signal.SIGKILL)
                found["killed"] = pid
                return
        time.sleep(0.05)


def scenario_cancel_kills_plugin():
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 64, 48, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3)
    before, source_digest = describe(img), digest(read(paint, "R'G'B'A u8"))
    found = {}
    runs = sum(1 for r in plugin_log() if r["event"] == "run_start")
    watcher = threading.Thread(target=kill_when_generating, args=(runs, found), daemon=True)
    watcher.start()
    status, message = call(IMG2IMG, img, paint, server_url=DATA["url"], prompt="slow", steps=60, strength=1.0)
    watcher.join(5)
    return {"status": status, "message": message, "before": before, "after": describe(img),
            "killed": found.get("killed"), "source_unchanged": digest(read(paint, "R'G'B'A u8")) == source_digest}


def link_command(command):
    """Tell the test's flaky link (support/link.py) to ``cut`` the connection or ``restart`` its server."""
    import socket

    with socket.create_connection(("127.0.0.1", DATA["link_control"]), timeout=5) as sock:
        sock.sendall(command.encode() + b"\n")
        return sock.makefile().readline().strip()


def on_the_link_when_generating(seen_runs, found, command):
    """Once the new run reports progress, drop its link (``cut``) or restart the server behind it."""
    deadline = time.time() + 120
    while time.time() < deadline:
        records = plugin_log()
        starts = [r for r in records if r["event"] == "run_start"]
        if len(starts) > seen_runs:
            pid = starts[-1]["pid"]
            if any(r["event"] == "progress" and r["pid"] == pid and r["fraction"] > 0 for r in records):
                found["link"] = link_command(command)
                return
        time.sleep(0.05)


def over_the_link(command, seed):
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 64, 48, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3)
    before, source_digest = describe(img), digest(read(paint, "R'G'B'A u8"))
    found = {}
    runs = sum(1 for r in plugin_log() if r["event"] == "run_start")
    watcher = threading.Thread(target=on_the_link_when_generating, args=(runs, found, command), daemon=True)
    watcher.start()
    status, message = call(IMG2IMG, img, paint, server_url=DATA["link_url"], prompt="over a flaky link", steps=12,
                           strength=1.0, seed=seed)
    watcher.join(5)
    return {"status": status, "message": message, "before": before, "after": describe(img),
            "new": new_result(before, img), "link": found.get("link"), "connections": link_command("count"),
            "source_unchanged": digest(read(paint, "R'G'B'A u8")) == source_digest}


def scenario_link_drop():
    """The network drops mid-job (the server keeps running): the result still lands."""
    return over_the_link("cut", 21)


def scenario_server_restart():
    """The server restarts mid-job: one clear sentence, the image untouched."""
    return over_the_link("restart", 22)


def scenario_dialogs():
    """The real parameter dialog and progress window of the installed plug-in, built on the Xvfb display."""
    plug_in = os.path.join(Gimp.directory(), "plug-ins", "underpaint")
    sys.path[:0] = [os.path.join(plug_in, "vendor"), plug_in]
    from underpaint_gimp import params, ui

    out = {}
    for name, kind in ((IMG2IMG, "img2img"), (INPAINT, "inpaint")):
        proc = PDB.lookup_procedure(name)
        dialog = ui.build_dialog(proc, proc.create_config(), "test", params.arguments_for(kind))
        widgets = {}
        for spec in params.arguments_for(kind):
            widget = dialog.get_widget(spec.name, GObject.TYPE_NONE)
            widgets[spec.name] = type(widget).__name__ if widget is not None else None
        token = dialog.get_widget("token", GObject.TYPE_NONE).get_entry()
        out[kind] = {"widgets": widgets, "title": dialog.get_title(), "token_visible": token.get_visibility()}
        dialog.destroy()
    cancelled = []
    window = ui.ProgressWindow("test", lambda: cancelled.append(True))
    window.status("Step 1/2")
    window.progress(0.5)
    window.preview(bytes(range(48)), False, 4, 4)
    window.dialog.response(Gtk.ResponseType.CANCEL)
    while GLib.MainContext.default().iteration(False):
        pass
    out["window"] = {"previews": window.previews, "cancelled": cancelled, "label": window.label.get_text(),
                     "fraction": window.bar.get_fraction(), "has_pixbuf": window.image.get_pixbuf() is not None}
    window.close()
    return out


def scenario_server_down():
    img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 64, 48, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3)
    before, source_digest = describe(img), digest(read(paint, "R'G'B'A u8"))
    status, message = call(IMG2IMG, img, paint, server_url=DATA["dead_url"], **COMMON)
    return {"status": status, "message": message, "before": before, "after": describe(img),
            "source_unchanged": digest(read(paint, "R'G'B'A u8")) == source_digest}


def scenario_refusals():
    out = {}
    img = Gimp.Image.new(32, 32, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 32, 32, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3)
    out["no_selection"] = call(INPAINT, img, paint, server_url=DATA["dead_url"])
    img.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
    out["indexed"] = call(IMG2IMG, img, img.get_layers()[0], server_url=DATA["dead_url"])
    out["after_indexed"] = describe(img)
    return out


def scenario_headless():
    """No display: a last-values run works without its window, an interactive run says why it cannot."""
    with open(os.path.join(Gimp.directory(), "underpaint.json"), "w") as f:
        json.dump({"url": DATA["dead_url"], "token": None}, f)
    img = Gimp.Image.new(32, 32, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 32, 32, Gimp.ImageType.RGB_IMAGE, 0, 0, babl="R'G'B' u8", channels=3)
    before = describe(img)
    return {"last_vals": call(IMG2IMG, img, paint, Gimp.RunMode.WITH_LAST_VALS),
            "interactive": call(IMG2IMG, img, paint, Gimp.RunMode.INTERACTIVE),
            "before": before, "after": describe(img)}


def fast_pattern(w, h):
    """An opaque R'G'B'A u8 pattern, quick to make at 1536x1024 (rows built with bytes arithmetic)."""
    rows = []
    for y in range(h):
        rows.append(bytes(b for x in range(w) for b in ((x * 9 + y) % 256, (y * 5) % 256, (x + 3 * y) % 256,
                                                          255)))
    return b"".join(rows)


def size(img):
    return [img.get_width(), img.get_height()]


def scenario_full_resolution_inpaint():
    """Issue 14: a 1536x1024 layer refined at full resolution (tiled) through a selection: a 1536x1024 result,
    pixels outside the selection untouched."""
    img = Gimp.Image.new(1536, 1024, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 1536, 1024, Gimp.ImageType.RGBA_IMAGE, 0, 0)
    write(paint, "R'G'B'A u8", fast_pattern(1536, 1024))
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 16, 16, 1504, 992)
    before, flat_before = describe(img), flat(img, "R'G'B'A u8")
    status, message = call(INPAINT, img, paint, seed=14, context=16, server_url=DATA["url"], prompt="refine",
                           steps=4, strength=0.3, resolution="full")
    facts = {"status": status, "message": message, "before": before, "after": describe(img),
             "new": new_result(before, img)}
    if status == "success":
        result = [layer for layer, _ in all_layers(img) if layer.get_id() == facts["new"][0]["id"]][0]
        facts.update(region_facts(img, paint, result, "R'G'B'A u8", 4, "Y u8"))
        facts.update(composite_facts(img, result, "R'G'B'A u8", 4, flat_before))
    return facts


def scenario_expand_canvas():
    """Expand by 128 px right and bottom: the canvas grows with the result layer (one undo group); a failed
    run (no server) leaves the canvas and the layers as they were."""
    img = Gimp.Image.new(128, 96, Gimp.ImageBaseType.RGB)
    paint = new_layer(img, "paint", 128, 96, Gimp.ImageType.RGBA_IMAGE, 0, 0, babl="R'G'B'A u8", seed=6)
    source = digest(read(paint, "R'G'B'A u8"))
    before, size_before = describe(img), size(img)
    failed = call(EXPAND, img, paint, server_url=DATA["dead_url"], expand_right=128, expand_bottom=128)
    facts = {"failed": list(failed), "after_failed": describe(img), "size_after_failed": size(img),
             "before": before, "size_before": size_before}
    status, message = call(EXPAND, img, paint, seed=8, server_url=DATA["url"], prompt="more meadow", steps=4,
                           strength=1.0, expand_right=128, expand_bottom=128)
    facts.update(status=status, message=message, after=describe(img), new=new_result(before, img),
                 size_after=size(img), source_unchanged=digest(read(paint, "R'G'B'A u8")) == source)
    if status == "success":
        result = [layer for layer, _ in all_layers(img) if layer.get_id() == facts["new"][0]["id"]][0]
        alpha = read(result, "R'G'B'A u8")[3::4]
        width = result.get_width()
        facts["new_area_opaque"] = all(a == 255 for i, a in enumerate(alpha) if i % width >= 136
                                       or i // width >= 104)
        facts["old_area_alpha_max_far_from_seam"] = max(a for i, a in enumerate(alpha)
                                                        if i % width < 64 and i // width < 48)
    return facts


def scenario_upscale():
    """x2 upscale of a 64x48 layer: a 128x96 layer at (0, 0) in the canvas as it was; with "Upscale the whole
    image" the image is scaled first (one undo group)."""
    out = {}
    for grow in (False, True):
        img = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
        paint = new_layer(img, "paint", 64, 48, Gimp.ImageType.RGBA_IMAGE, 0, 0, babl="R'G'B'A u8", seed=9)
        before = describe(img)
        status, message = call(UPSCALE, img, paint, seed=3, server_url=DATA["url"], prompt="sharper", steps=4,
                               strength=0.3, factor="x2", refine=True, grow_canvas=grow)
        out["grow" if grow else "keep"] = {"status": status, "message": message, "before": before,
                                           "after": describe(img), "new": new_result(before, img),
                                           "size": size(img)}
    return out


SCENARIOS = [scenario_img2img_rgb8, scenario_inpaint_rgb8, scenario_inpaint_rgb16,
             scenario_img2img_gray_selection, scenario_with_last_vals_window, scenario_cancel_kills_plugin,
             scenario_server_down, scenario_refusals, scenario_dialogs, scenario_headless,
             scenario_full_resolution_inpaint, scenario_expand_canvas, scenario_upscale, scenario_link_drop,
             scenario_server_restart]
results = {}
for scenario in SCENARIOS:
    name = scenario.__name__.replace("scenario_", "")
    if name not in DATA.get("only", [name]) or (name == "headless" and "only" not in DATA):
        continue
    try:
        results[name] = scenario()
    except Exception:
        results[name] = {"batch_error": traceback.format_exc()}
    with open(os.path.join(WORK, "facts.json"), "w") as _f:
        json.dump(results, _f, indent=1)
